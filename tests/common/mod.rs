//! Helpers shared by the process-level tests of the `tern` binary (each test file is its
//! own crate and uses the subset it needs).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn tern() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tern"))
}

/// `tern -a 127.0.0.1 -p -1 -c CONF` with stderr piped, for tests that read its log.
pub fn spawn_with_conf(conf: &std::path::Path) -> Child {
    tern()
        .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
        .arg(conf)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tern")
}

/// `tern --signal=<what>=<pid>` (reload, ldm, ...) must succeed.
pub fn signal(child: &Child, what: &str) {
    let st = tern()
        .arg(format!("--signal={what}={}", child.id()))
        .status()
        .expect("run tern --signal");
    assert!(st.success(), "--signal={what} failed");
}

/// A fresh empty directory for one test.
pub fn tmpdir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Streams the child's stderr lines into a channel.
pub fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one contains `needle` (10 s at most); returns all lines read.
pub fn until(rx: &Receiver<String>, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            let done = l.contains(needle);
            lines.push(l);
            if done {
                return lines;
            }
        }
    }
    panic!("no line with {needle:?} in {lines:?}");
}

/// Reads the child's stderr until a line contains `needle`.
pub fn wait_for_line(child: &mut Child, needle: &str) -> Vec<String> {
    until(&stderr_lines(child), needle)
}

/// The client port from the "Listening for client connections on H:P" line (text or
/// JSON log format).
pub fn listen_port(lines: &[String]) -> u16 {
    let l = lines
        .iter()
        .find(|l| l.contains("Listening for client connections on"))
        .expect("listen line");
    // A JSON line ends with the pid: take the port from its message.
    let msg = match serde_json::from_str::<serde_json::Value>(l) {
        Ok(v) => v["msg"].as_str().unwrap_or_default().to_string(),
        Err(_) => l.clone(),
    };
    msg.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("port in the listen line")
}
