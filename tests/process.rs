//! The `tern` binary as client test harnesses drive it: log lines, pid and ports
//! files, fatal exit on a taken port, signals, lame duck, same-port restart, IPv6.

mod common;

use common::{listen_port, signal, spawn_with_conf, tern, tmpdir, wait_for_line};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn read_info(port: u16, host: &str) -> String {
    let mut s = TcpStream::connect((host, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line).unwrap();
    line
}

fn term(child: &mut Child) -> std::process::ExitStatus {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap()
}

#[test]
fn startup_lines_pid_ports_and_log_files() {
    let dir = tmpdir("proc", "files");
    let log = dir.join("tern.log");
    let pid = dir.join("tern.pid");
    let conf = dir.join("ws.conf");
    std::fs::write(&conf, "websocket { port: -1, no_tls: true }\n").unwrap();
    let mut child = tern()
        .args(["-a", "127.0.0.1", "-p", "-1", "-m", "-1"])
        .args(["--cluster", "nats://127.0.0.1:-1"])
        .arg("-c")
        .arg(&conf)
        .arg("-l")
        .arg(&log)
        .arg("-P")
        .arg(&pid)
        .arg("--ports_file_dir")
        .arg(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // With -l, lines go to the file; poll it like the nats.rs harness does.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("Server is ready") {
        std::thread::sleep(Duration::from_millis(20));
        text = std::fs::read_to_string(&log).unwrap_or_default();
    }
    assert!(
        text.contains("[INF] Listening for client connections on 127.0.0.1:"),
        "{text}"
    );
    let listen = text.find("Listening for client").unwrap();
    assert!(text.find("Server is ready").unwrap() > listen);
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let port = listen_port(&lines);
    assert!(read_info(port, "127.0.0.1").starts_with("INFO {"));

    let pid_text = std::fs::read_to_string(&pid).unwrap();
    assert_eq!(pid_text, child.id().to_string(), "digits only, no newline");
    let ports = dir.join(format!("tern_{}.ports", child.id()));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ports).unwrap()).unwrap();
    assert_eq!(v["nats"][0], format!("nats://127.0.0.1:{port}"));
    assert!(v["monitoring"][0]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    // The route listener too, as nats-server lists it.
    let cluster = v["cluster"][0].as_str().unwrap_or_default();
    assert!(cluster.starts_with("nats://127.0.0.1:"), "{v}");
    assert_ne!(cluster, format!("nats://127.0.0.1:{port}"));
    let ws = v["websocket"][0].as_str().unwrap_or_default();
    assert!(ws.starts_with("ws://127.0.0.1:"), "{v}");

    assert!(term(&mut child).success());
    assert!(!ports.exists(), "ports file removed at exit");
}

#[test]
fn taken_port_is_fatal_with_nonzero_exit() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let out = tern()
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[FTL] Error listening on port: 127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn lame_duck_sends_ldm_and_stops_accepting() {
    let dir = tmpdir("proc", "ldm");
    let conf = dir.join("ldm.conf");
    std::fs::write(
        &conf,
        "lame_duck_grace_period: \"200ms\"\nlame_duck_duration: \"30s\"\n\
         websocket { port: -1, no_tls: true }\n",
    )
    .unwrap();
    let mut child = spawn_with_conf(&conf);
    let lines = wait_for_line(&mut child, "Server is ready");
    let port = listen_port(&lines);
    let ws_port: u16 = lines
        .iter()
        .find_map(|l| l.split("Listening for websocket clients on ws://").nth(1))
        .and_then(|rest| rest.trim().rsplit(':').next()?.parse().ok())
        .expect("websocket listen line");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap(); // INFO
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "PONG\r\n");

    signal(&child, "ldm");
    // Skip the connect_info INFO; the next INFO carries ldm.
    let mut saw_ldm = false;
    for _ in 0..5 {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.starts_with("INFO ") && line.contains("\"ldm\":true") {
            saw_ldm = true;
            break;
        }
    }
    assert!(saw_ldm, "INFO with ldm:true");
    // New connections are refused or closed without INFO.
    if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    }
    // The websocket listener closes too (new sockets are refused).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", ws_port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "websocket listener still open in lame duck"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // After the grace period our client is closed and the server exits by itself.
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn restart_on_same_port_and_ipv6() {
    let probe = TcpListener::bind("[::1]:0");
    let host = if probe.is_ok() { "::1" } else { "127.0.0.1" };
    let port = {
        let l = TcpListener::bind((host, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    for _ in 0..2 {
        let mut child = tern()
            .args(["-a", host, "-p", &port.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = wait_for_line(&mut child, "Server is ready");
        assert_eq!(listen_port(&lines), port);
        // Connect so the port has a TIME_WAIT socket when we restart.
        assert!(read_info(port, host).starts_with("INFO "));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn sighup_reload_applies_limits_to_open_connections() {
    let mut t = start_and_connect("reload", "max_payload: 1KB\n");
    assert!(t.info.contains("\"max_payload\":1024"), "{}", t.info);
    let big = vec![b'x'; 200];
    t.s.write_all(b"CONNECT {\"verbose\":false}\r\nPUB a 200\r\n")
        .unwrap();
    t.s.write_all(&big).unwrap();
    t.s.write_all(b"\r\nPING\r\n").unwrap();
    assert_eq!(line(&mut t), "PONG\r\n", "200 bytes fit in 1KB");

    reload_until_info(&t, "max_payload: 100\n", "\"max_payload\":100,");
    t.s.write_all(b"PUB a 200\r\n").unwrap();
    assert_eq!(line(&mut t), "-ERR 'Maximum Payload Violation'\r\n");
    assert!(term(&mut t.child).success());
}

#[test]
fn reload_keeps_auth_required_for_account_users() {
    let accounts = "accounts { A { users [ {user: a, password: a} ] } }\n";
    let mut t = start_and_connect("reload-acc", accounts);
    assert!(t.info.contains("\"auth_required\":true"));
    // A reload that changes something else: INFO must still ask for credentials
    // (the users come from the account, not from an `authorization` block).
    let changed = format!("{accounts}max_payload: 100\n");
    let info = reload_until_info(&t, &changed, "\"max_payload\":100,");
    assert!(info.contains("\"auth_required\":true"), "{info}");
    assert!(term(&mut t.child).success());
}

/// nats-server closes `authorization { user }` clients on every authorization reload;
/// tern keeps a client whose credentials still pass (and re-checks it at once).
#[test]
fn reload_keeps_single_user_clients_whose_credentials_still_pass() {
    let mut t = start_and_connect("reload-single", "authorization { user: s, password: p }\n");
    t.s.write_all(
        b"CONNECT {\"verbose\":false,\"user\":\"s\",\"pass\":\"p\"}\r\nSUB x 1\r\nPING\r\n",
    )
    .unwrap();
    assert_eq!(line(&mut t), "PONG\r\n");

    // An authorization change (the timeout) with the same user and password.
    let changed = "authorization { user: s, password: p, timeout: 3 }\nmax_payload: 100\n";
    reload_until_info(&t, changed, "\"max_payload\":100,");
    t.s.write_all(b"PUB x 2\r\nok\r\nPING\r\n").unwrap();
    let got: String = (0..3).map(|_| line(&mut t)).collect();
    assert_eq!(got, "MSG x 1 2\r\nok\r\nPONG\r\n");

    // A new password closes it: the same re-check, now failing.
    std::fs::write(&t.conf, "authorization { user: s, password: new }\n").unwrap();
    signal(&t.child, "reload");
    assert_eq!(line(&mut t), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(line(&mut t), "", "closed after the error");
    assert!(term(&mut t.child).success());
}

/// A server started on `text` (a fresh conf file) with one raw client past INFO.
struct Started {
    child: Child,
    conf: std::path::PathBuf,
    port: u16,
    s: TcpStream,
    r: BufReader<TcpStream>,
    info: String,
}

fn start_and_connect(name: &str, text: &str) -> Started {
    let dir = tmpdir("proc", name);
    let conf = dir.join("server.conf");
    std::fs::write(&conf, text).unwrap();
    let mut child = spawn_with_conf(&conf);
    let lines = wait_for_line(&mut child, "Server is ready");
    let port = listen_port(&lines);
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut info = String::new();
    r.read_line(&mut info).unwrap();
    Started {
        child,
        conf,
        port,
        s,
        r,
        info,
    }
}

/// Rewrites the conf file, sends reload, and waits until a new connection's INFO
/// contains `marker` (the reload is applied asynchronously).
fn reload_until_info(t: &Started, text: &str, marker: &str) -> String {
    std::fs::write(&t.conf, text).unwrap();
    signal(&t.child, "reload");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = read_info(t.port, "127.0.0.1");
        if info.contains(marker) {
            return info;
        }
        assert!(Instant::now() < deadline, "reload not applied: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one line from the test client.
fn line(t: &mut Started) -> String {
    let mut l = String::new();
    t.r.read_line(&mut l).unwrap();
    l
}
