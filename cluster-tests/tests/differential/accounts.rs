//! Accounts against the same conf file on both servers: isolation between accounts,
//! stream exports/imports with a prefix, restricted exports, and the startup errors
//! for imports nats-server refuses. (Service imports use a fresh `_R_.` reply a raw
//! script cannot know; they are compared with real clients in tests/accounts.rs.)

use std::process::Command;

use cluster_tests::diff::{reference_bin, tern_bin, Diff};

const ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a, password: a} ], exports: [ {stream: "a.>"}, {service: "svc.>"}, {stream: "priv.>", accounts: [B]} ] }
  B: { users: [ {user: b, password: b} ], imports: [ {stream: {account: A, subject: "a.>"}, prefix: "fromA"}, {stream: {account: A, subject: "priv.>"}}, {service: {account: A, subject: "svc.echo"}, to: "echo"} ] }
  C: { users: [ {user: c, password: c} ], imports: [ {stream: {account: A, subject: "a.x"}, to: "ax"} ] }
}
"#;

fn login(user: &str) -> String {
    format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{user}\"}}\r\n")
}

#[test]
fn accounts_isolate_subjects() {
    Diff::new("accounts_isolate_subjects")
        .conf(ACCOUNTS)
        .send(login("a"))
        .send("SUB > 1\r\n")
        .sync()
        .on(1)
        .send(login("b"))
        .send("SUB > 1\r\n")
        .sync()
        .on(2)
        .send(login("c"))
        .send("SUB iso.> 1\r\n")
        .sync()
        .on(0)
        .send("PUB iso.a 2\r\nhi\r\n")
        .sync()
        .on(1)
        .send("PUB iso.b 2\r\nho\r\n")
        .sync()
        .on(0)
        .sync()
        .on(2)
        .sync()
        .expect("c0 < MSG iso.a 1 2\r\n")
        .expect("c1 < MSG iso.b 1 2\r\n")
        .expect_not("c0 < MSG iso.b")
        .expect_not("c1 < MSG iso.a")
        .expect_not("c2 < MSG")
        .run();
}

#[test]
fn accounts_stream_import_prefix_and_to() {
    Diff::new("accounts_stream_import_prefix_and_to")
        .conf(ACCOUNTS)
        .send(login("b"))
        .send("SUB fromA.> 1\r\nSUB priv.* 2\r\nSUB a.> 3\r\n")
        .sync()
        .on(1)
        .send(login("c"))
        .send("SUB ax 1\r\nSUB a.> 2\r\n")
        .sync()
        .on(2)
        .send(login("a"))
        .send("PUB a.x 2\r\nm1\r\nPUB priv.p 2\r\nm2\r\nPUB a.y 2\r\nm3\r\n")
        .sync()
        .on(0)
        .sync()
        .on(1)
        .sync()
        .expect("c0 < MSG fromA.a.x 1 2\r\n")
        .expect("c0 < MSG priv.p 2 2\r\n")
        .expect("c0 < MSG fromA.a.y 1 2\r\n")
        .expect("c1 < MSG ax 1 2\r\n")
        .expect_not("MSG a.")
        .expect_count("c1 < MSG", 1)
        .run();
}

#[test]
fn accounts_wide_subscription_gets_imports_mapped() {
    // `>` in the importer covers the import spaces: it sees the exporter's messages
    // under the importer's subjects, and its own publishes stay in its account.
    Diff::new("accounts_wide_subscription_gets_imports_mapped")
        .conf(ACCOUNTS)
        .send(login("b"))
        .send("SUB > 1\r\n")
        .sync()
        .on(1)
        .send(login("a"))
        .send("SUB > 9\r\nPUB a.z 2\r\nm1\r\nPUB other 2\r\nm2\r\n")
        .sync()
        .on(0)
        .send("PUB b.only 2\r\nm3\r\n")
        .sync()
        .on(1)
        .sync()
        .unordered()
        .expect("c0 < MSG fromA.a.z 1 2\r\n")
        .expect_not("c0 < MSG other")
        .expect_not("c1 < MSG b.only")
        .run();
}

#[test]
fn accounts_connect_info_names_the_account() {
    // A protocol-1 client learns its account from the async INFO after its first PONG.
    let connect = |u: &str| {
        format!(
            "CONNECT {{\"verbose\":false,\"protocol\":1,\"headers\":true,\"user\":\"{u}\",\"pass\":\"{u}\"}}\r\n"
        )
    };
    Diff::new("accounts_connect_info_names_the_account")
        .conf(ACCOUNTS)
        .send(connect("b"))
        .sync()
        .on(1)
        .send(connect("a"))
        .sync()
        .expect("\"remote_account\":\"B\"")
        .expect("\"remote_account\":\"A\"")
        .run();
}

/// `-t` with `conf`: the configuration error line after the program name prefix.
fn check_error(bin: &std::path::Path, conf: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("tern-acct-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.conf");
    std::fs::write(&path, conf).expect("write conf");
    let out = Command::new(bin)
        .current_dir(&dir)
        .args(["-t", "-c", "bad.conf"])
        .output()
        .expect("run server");
    assert!(
        !out.status.success(),
        "{name}: {} accepted the conf",
        bin.display()
    );
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let line = err
        .lines()
        .find(|l| l.contains("bad.conf:"))
        .unwrap_or_else(|| panic!("{name}: no conf error in {err}"));
    line.split_once(": ").map_or(line, |(_, r)| r).to_string()
}

#[test]
fn accounts_refused_imports_at_startup() {
    let cases = [
        (
            "unknown_account",
            "accounts { A: { users: [{user: a, password: a}], exports: [{stream: \"a.>\"}] }\n B: { imports: [{stream: {account: Z, subject: \"a.>\"}}] } }\n",
        ),
        (
            "restricted_stream",
            "accounts { A: { exports: [{stream: \"priv.>\", accounts: [B]}] }\n B: {}\n C: { imports: [{stream: {account: A, subject: \"priv.>\"}}] } }\n",
        ),
        (
            "no_service_export",
            "accounts { A: { exports: [{stream: \"x\"}] }\n C: { imports: [{service: {account: A, subject: \"x\"}}] } }\n",
        ),
        (
            "wider_than_export",
            "accounts { A: { exports: [{stream: \"a.b\"}] }\n C: { imports: [{stream: {account: A, subject: \"a.>\"}}] } }\n",
        ),
    ];
    for (name, conf) in cases {
        let want = check_error(&reference_bin(), conf, name);
        let got = check_error(&tern_bin(), conf, name);
        assert_eq!(got, want, "{name}");
    }
}
