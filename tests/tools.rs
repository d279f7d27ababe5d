//! The client tools of the `tern` binary (`tern pub|sub|req|reply|bench|healthcheck`)
//! against a `tern` server process started here.

mod common;

use common::tern;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    url: String,
    monitor: u16,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    /// With extra server flags (`-c FILE`).
    fn start_with(extra: &[&str]) -> Server {
        let (port, monitor) = (free_port(), free_port());
        let child = tern()
            .args(extra)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string()])
            .stderr(Stdio::null())
            .spawn()
            .expect("start tern");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", monitor)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            monitor,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a tool to completion within `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = tern()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// Starts a long-running tool and waits for `ready` on its stderr (the rest of stderr
/// keeps being drained so the tool never writes into a closed pipe). The caller waits
/// for it through [`finish`].
#[allow(clippy::zombie_processes)]
fn start_until(args: &[&str], ready: &str) -> Child {
    let mut child = tern()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).unwrap_or(0);
        if n == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} exited before {ready:?}");
        }
        if line.contains(ready) {
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            return child;
        }
    }
}

fn finish(child: Child, limit: Duration) -> Output {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("tool {id} did not finish within {limit:?}");
        }
    }
}

const T: Duration = Duration::from_secs(20);

#[test]
fn pub_and_sub() {
    let s = Server::start();
    let sub = start_until(
        &["sub", "t.>", "--count", "3", "--raw", "-s", &s.url],
        "Subscribing on t.>",
    );
    let out = run(
        &["pub", "t.x", "m{{Count}}", "--count", "3", "-s", &s.url],
        T,
    );
    assert!(out.status.success(), "{out:?}");
    let out = finish(sub, T);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "m1\nm2\nm3\n");
}

#[test]
fn sub_default_format_and_wait_timeout() {
    let s = Server::start();
    let sub = start_until(&["sub", "fmt", "--count", "1", "-s", &s.url], "Subscribing");
    assert!(run(&["pub", "fmt", "hello", "-s", &s.url], T)
        .status
        .success());
    let out = finish(sub, T);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[#1] Received on \"fmt\"\nhello\n\n"
    );
    let out = run(
        &[
            "sub", "none", "--count", "1", "--wait", "300ms", "-s", &s.url,
        ],
        T,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 0 of 1"));
}

#[test]
fn request_and_reply() {
    let s = Server::start();
    let rep = start_until(
        &[
            "reply",
            "svc",
            "pong {{Count}}",
            "--count",
            "1",
            "-s",
            &s.url,
        ],
        "Listening on",
    );
    let out = run(&["req", "svc", "ping", "--raw", "-s", &s.url], T);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pong 1\n");
    assert!(finish(rep, T).status.success());
    // Nobody listens: the server's no-responders status, not a timeout.
    let out = run(&["req", "nobody", "x", "-s", &s.url], T);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no responders"),
        "{out:?}"
    );
}

#[test]
fn bench_prints_a_summary() {
    let s = Server::start();
    let out = run(
        &[
            "bench", "b", "--msgs", "5000", "--size", "32", "--pub", "2", "--sub", "2", "-s",
            &s.url,
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "NATS Pub/Sub stats:",
        "Pub stats:",
        "Sub stats:",
        "msgs/sec ~",
    ] {
        assert!(text.contains(want), "{want:?} missing in {text}");
    }
}

#[test]
fn healthcheck_exit_codes() {
    let s = Server::start();
    let url = format!("http://127.0.0.1:{}/healthz", s.monitor);
    let out = run(&["healthcheck", "--url", &url], T);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"status":"ok"}"#
    );
    let bad = format!("http://127.0.0.1:{}/healthz", free_port());
    let out = run(&["healthcheck", "--url", &bad], T);
    assert_eq!(out.status.code(), Some(1));
    let not_found = format!("http://127.0.0.1:{}/nope", s.monitor);
    assert_eq!(
        run(&["healthcheck", "--url", &not_found], T).status.code(),
        Some(1)
    );
}

#[test]
fn bad_usage_and_refused_flags() {
    let out = run(&["pub"], T);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["pub", "x", "--creds", "/nonexistent/a.creds"], T);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading credentials"));
    let out = run(&["pub", "x", "-s", "nats://127.0.0.1:1"], T);
    assert_eq!(out.status.code(), Some(1));
    assert!(run(&["sub", "--help"], T).status.success());
}

/// Operator mode end to end: `--creds` files issued here (operator -> account -> user),
/// `tern sub`/`tern pub` authenticate with the user JWT and the signed nonce; a user
/// denied the subject, and an expired user, are refused.
#[test]
fn creds_in_operator_mode() {
    use serde_json::json;
    use tern::auth::jwt::issue;
    let dir = common::tmpdir("tools", "creds");
    let op = nkeys::KeyPair::new_operator();
    let acc = nkeys::KeyPair::new_account();
    let op_jwt = issue::operator(&op, json!({}));
    let acc_jwt = issue::account(&op, &acc.public_key(), json!({}));
    let conf = dir.join("op.conf");
    std::fs::write(dir.join("op.jwt"), &op_jwt).expect("write jwt");
    std::fs::write(
        &conf,
        format!(
            "operator: \"{}\"\nresolver: MEMORY\nresolver_preload: {{ {}: \"{acc_jwt}\" }}\n",
            dir.join("op.jwt").display(),
            acc.public_key()
        ),
    )
    .expect("write conf");
    let creds = |name: &str, nats: serde_json::Value, extra: serde_json::Value| {
        let u = nkeys::KeyPair::new_user();
        let jwt = issue::user(&acc, &u.public_key(), nats, extra);
        let path = dir.join(name);
        std::fs::write(&path, issue::creds(&jwt, &u.seed().expect("seed"))).expect("creds");
        path.display().to_string()
    };
    let good = creds("good.creds", json!({}), json!({}));
    let denied = creds(
        "denied.creds",
        json!({"pub": {"deny": ["jwt.>"]}}),
        json!({}),
    );
    let expired = creds("expired.creds", json!({}), json!({"exp": 1_000_000_000}));
    let s = Server::start_with(&["-c", &conf.display().to_string()]);

    let sub = start_until(
        &[
            "sub", "jwt.x", "--count", "1", "--raw", "-s", &s.url, "--creds", &good,
        ],
        "Subscribing",
    );
    let out = run(
        &["pub", "jwt.x", "signed", "-s", &s.url, "--creds", &good],
        T,
    );
    assert!(out.status.success(), "{out:?}");
    let out = finish(sub, T);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "signed\n");
    // bench signs each of its connections' nonces.
    let out = run(
        &[
            "bench", "jwt.b", "--msgs", "2000", "--size", "16", "--pub", "1", "--sub", "1", "-s",
            &s.url, "--creds", &good,
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Pub/Sub stats:"),
        "{out:?}"
    );

    // Without credentials, or with an expired user: refused at CONNECT.
    for args in [vec![], vec!["--creds", expired.as_str()]] {
        let mut a = vec!["pub", "jwt.x", "m", "-s", &s.url];
        a.extend(args);
        let out = run(&a, T);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Authorization Violation"),
            "{out:?}"
        );
    }
    // A user denied the subject gets the permission error from `req` (the reply never
    // comes), while its own CONNECT succeeds.
    let out = run(
        &[
            "req",
            "jwt.y",
            "q",
            "-s",
            &s.url,
            "--creds",
            &denied,
            "--timeout",
            "2s",
        ],
        T,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permissions Violation for Publish"),
        "{out:?}"
    );
}
