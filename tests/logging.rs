//! Logging as the `tern` process does it (the logger is process-global, so these run
//! the binary): JSON lines, log file rotation at `logfile_size_limit`, and SIGHUP
//! changing the level while open connections stay up and fixed settings are reported.

mod common;

use common::{listen_port, signal, spawn_with_conf, stderr_lines, tern, tmpdir, until};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Connects, sends CONNECT + PING, and waits for PONG.
fn connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    s.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .unwrap();
    ping_pong(&mut s, &mut r, false);
    (s, r)
}

fn ping_pong(s: &mut TcpStream, r: &mut BufReader<TcpStream>, send: bool) {
    if send {
        s.write_all(b"PING\r\n").unwrap();
    }
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "connection closed");
        if line == "PONG\r\n" {
            return;
        }
    }
}

#[test]
fn json_log_lines_parse() {
    let mut child = tern()
        .args(["-a", "127.0.0.1", "-p", "-1", "--log_json", "-D"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut lines = until(&rx, "Server is ready");
    let (_c, _) = connect(listen_port(&lines));
    lines.extend(until(&rx, "Client connection created"));
    kill(&mut child);
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert!(v["msg"].is_string(), "{l}");
        assert_eq!(v["pid"], child.id(), "{l}");
    }
    let ready = lines
        .iter()
        .find(|l| l.contains("Server is ready"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(ready).unwrap();
    assert_eq!(v["level"], "info");
    assert_eq!(v["msg"], "Server is ready");
    assert!(lines.iter().any(|l| l.contains("\"level\":\"debug\"")));
}

#[test]
fn log_file_rotates_at_size_limit() {
    let dir = tmpdir("log", "rotate");
    let log = dir.join("tern.log");
    let conf = dir.join("tern.conf");
    std::fs::write(
        &conf,
        format!(
            "logfile: \"{}\"\nlogfile_size_limit: 300\ndebug: true\n",
            log.display()
        ),
    )
    .unwrap();
    let mut child = tern()
        .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
        .arg(&conf)
        .spawn()
        .unwrap();
    // Startup alone writes about 600 bytes (less with a short pid and path: CI runs
    // in a fresh container where pids are small), so the limit is well below that.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        let backups: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tern.log."))
            })
            .collect();
        if !backups.is_empty() {
            break backups;
        }
        assert!(Instant::now() < deadline, "no rotated file in {dir:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    kill(&mut child);
    // Named <file>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn, as nats-server names backups.
    let name = rotated[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let suffix = name.strip_prefix("tern.log.").unwrap();
    assert_eq!(suffix.split('.').count(), 7, "{name}");
    assert!(
        suffix.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "{name}"
    );
    let size = std::fs::metadata(&rotated[0]).unwrap().len();
    assert!(size >= 300, "rotated once past the limit ({size} bytes)");
    // Every line of the rotated file is whole.
    let text = std::fs::read_to_string(&rotated[0]).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().all(|l| l.starts_with('[')),
        "{text}"
    );
    assert!(log.exists(), "a new log file was started");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `logfile_max_num: 2` keeps the active file and one backup however often it rotates.
#[test]
fn rotated_log_files_beyond_logfile_max_num_are_removed() {
    let dir = tmpdir("log", "maxnum");
    let log = dir.join("tern.log");
    let conf = dir.join("tern.conf");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &conf,
        format!(
            "logfile: \"{}\"\nlogfile_size_limit: 300\nlogfile_max_num: 2\ndebug: true\n",
            log.display()
        ),
    )
    .unwrap();
    let mut child = tern()
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-c"])
        .arg(&conf)
        .spawn()
        .unwrap();
    let backups = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tern.log."))
            })
            .collect()
    };
    // Each connection logs debug lines; keep connecting until the startup banner (in
    // the first backup) has been rotated out and purged.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = c.write_all(b"CONNECT {}\r\nPING\r\n");
            let mut r = BufReader::new(c);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
        }
        let b = backups();
        let banner_gone = b.len() == 1
            && !std::fs::read_to_string(&b[0])
                .unwrap_or_default()
                .contains("Starting nats-server");
        if banner_gone {
            break;
        }
        assert!(b.len() <= 2, "more than one backup kept: {b:?}");
        assert!(Instant::now() < deadline, "no purge seen in {dir:?}: {b:?}");
    }
    kill(&mut child);
    assert!(backups().len() <= 1, "{:?}", backups());
    assert!(log.exists(), "the active log file stays");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_changes_log_level_keeps_connections_and_reports_fixed_options() {
    let dir = tmpdir("log", "reload-level");
    let conf = dir.join("tern.conf");
    std::fs::write(&conf, "debug: false\n").unwrap();
    let mut child = spawn_with_conf(&conf);
    let rx = stderr_lines(&mut child);
    let lines = until(&rx, "Server is ready");
    let port = listen_port(&lines);
    let (mut s, mut r) = connect(port);
    // At info level a new connection logs nothing; check before the reload.
    let (_c1, _) = connect(port);
    std::thread::sleep(Duration::from_millis(200));
    let before: Vec<String> = rx.try_iter().collect();
    assert!(!before.iter().any(|l| l.contains("[DBG]")), "{before:?}");

    std::fs::write(&conf, "debug: true\nhttp_port: 8222\n").unwrap();
    signal(&child, "reload");
    let lines = until(&rx, "Reloaded server configuration");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[WRN]") && l.contains("\"http_port\" cannot be changed")),
        "{lines:?}"
    );
    // nats-server's line for each applied change.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[INF] Reloaded: debug = true")),
        "{lines:?}"
    );
    // Debug now: a new connection is logged, and the old one still answers.
    let (_c2, _) = connect(port);
    until(&rx, "[DBG]");
    ping_pong(&mut s, &mut r, true);
    kill(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configuration_warnings_are_logged_once_per_start_and_reload() {
    let dir = tmpdir("log", "warn-once");
    let conf = dir.join("tern.conf");
    let users = "authorization { users [ {user: a, password: plain} ] }\n";
    std::fs::write(&conf, users).unwrap();
    let mut child = spawn_with_conf(&conf);
    let rx = stderr_lines(&mut child);
    let warned = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("Plaintext passwords detected"))
            .count()
    };
    let lines = until(&rx, "Server is ready");
    assert_eq!(warned(&lines), 1, "{lines:?}");
    std::fs::write(&conf, format!("{users}debug: true\n")).unwrap();
    signal(&child, "reload");
    let lines = until(&rx, "Reloaded server configuration");
    assert_eq!(warned(&lines), 1, "{lines:?}");
    kill(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
}
