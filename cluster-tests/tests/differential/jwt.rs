//! Operator mode (decentralized JWT auth) against the same conf on both servers: the
//! operator JWT inline, `resolver: MEMORY` with preloaded accounts, users connecting with
//! a user JWT and the nonce signed by their nkey. Every JWT is issued in the test.

use cluster_tests::diff::Diff;
use cluster_tests::jwt::{user, OperatorSetup};
use serde_json::json;

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

#[test]
fn jwt_user_connects_and_pubsub_works() {
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let a = user(&acc, None, json!({}), json!({}));
    let b = user(&acc, None, json!({}), json!({}));
    Diff::new("jwt_user_connects_and_pubsub_works")
        .conf(&op.conf(""))
        .send_signed(&a.seed, &a.connect_fields())
        .sync()
        .send("SUB foo 1\r\n")
        .sync()
        .on(1)
        .send_signed(&b.seed, &b.connect_fields())
        .sync()
        .send("PUB foo 5\r\nhello\r\n")
        .sync()
        .on(0)
        .sync()
        .expect("\"nonce\":\"<nonce>\"")
        .expect("\"auth_required\":true")
        .expect("c0 < MSG foo 1 5\r\nhello\r\n")
        .expect_open(0)
        .expect_open(1)
        .run();
}

#[test]
fn jwt_bad_credentials_are_authorization_violations() {
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let good = user(&acc, None, json!({}), json!({}));
    let expired = user(&acc, None, json!({}), json!({"exp": 1_000_000_000}));
    // An account the resolver does not know.
    let stranger = nkeys::KeyPair::new_account();
    let orphan = user(&stranger, None, json!({}), json!({}));
    // An account preloaded but issued by a key the operator does not trust.
    let rogue_op = nkeys::KeyPair::new_operator();
    let rogue_acc = op.account(Some(&rogue_op), json!({}));
    let rogue_user = user(&rogue_acc, None, json!({}), json!({}));
    // A user signed by a key that is not one of the account's signing keys.
    let unknown_signer = nkeys::KeyPair::new_account();
    let unsigned = user(&acc, Some(&unknown_signer), json!({}), json!({}));
    let other = nkeys::KeyPair::new_user();
    Diff::new("jwt_bad_credentials_are_authorization_violations")
        .conf(&op.conf(""))
        // The nonce signed by another key than the JWT's subject.
        .send_signed(&other.seed().expect("seed"), &good.connect_fields())
        .wait_close()
        .on(1)
        .send_signed(&expired.seed, &expired.connect_fields())
        .wait_close()
        .on(2)
        .send_signed(&orphan.seed, &orphan.connect_fields())
        .wait_close()
        .on(3)
        .send_signed(&rogue_user.seed, &rogue_user.connect_fields())
        .wait_close()
        .on(4)
        .send_signed(&unsigned.seed, &unsigned.connect_fields())
        .wait_close()
        .on(5)
        // No JWT at all, and a JWT without a signature.
        .send("CONNECT {\"verbose\":false}\r\n")
        .wait_close()
        .on(6)
        .send(format!("CONNECT {{{}}}\r\n", good.connect_fields()))
        .wait_close()
        .on(7)
        .send(format!(
            "CONNECT {{{},\"sig\":\"not base64!\"}}\r\n",
            good.connect_fields()
        ))
        .wait_close()
        .on(8)
        .send("CONNECT {\"verbose\":false,\"jwt\":\"eyJ.garbage.x\",\"sig\":\"AAAA\"}\r\n")
        .wait_close()
        .expect_count(VIOLATION, 9)
        .expect_closed(0)
        .expect_closed(8)
        .run();
}

#[test]
fn jwt_signing_keys() {
    let op_sk = nkeys::KeyPair::new_operator();
    let mut op = OperatorSetup::new(json!({ "signing_keys": [op_sk.public_key()] }));
    let acc_sk = nkeys::KeyPair::new_account();
    let acc = op.account(
        Some(&op_sk),
        json!({ "signing_keys": [acc_sk.public_key()] }),
    );
    let u = user(&acc, Some(&acc_sk), json!({}), json!({}));
    Diff::new("jwt_signing_keys")
        .conf(&op.conf(""))
        .send_signed(&u.seed, &u.connect_fields())
        .sync()
        .send("SUB a 1\r\nPUB a 1\r\nx\r\n")
        .sync()
        .expect("c0 < MSG a 1 1\r\nx\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn jwt_user_permissions() {
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let u = user(
        &acc,
        None,
        json!({
            "pub": { "allow": ["ok.>", "_INBOX.>"], "deny": ["ok.secret"] },
            "sub": { "allow": ["ok.>"] }
        }),
        json!({}),
    );
    Diff::new("jwt_user_permissions")
        .conf(&op.conf(""))
        .send_signed(&u.seed, &u.connect_fields())
        .sync()
        .send("SUB ok.x 1\r\nSUB nope 2\r\nPUB ok.x 1\r\na\r\nPUB ok.secret 1\r\nb\r\nPUB other 1\r\nc\r\n")
        .sync()
        .expect("c0 < MSG ok.x 1 1\r\na\r\n")
        .expect("Permissions Violation for Subscription to \"nope\"")
        .expect("Permissions Violation for Publish to \"ok.secret\"")
        .expect("Permissions Violation for Publish to \"other\"")
        .expect_open(0)
        .run();
}

#[test]
fn jwt_user_and_account_limits() {
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({ "limits": { "conn": 2, "subs": 3 } }));
    let small = user(&acc, None, json!({ "payload": 4 }), json!({}));
    let few_subs = user(&acc, None, json!({ "subs": 1 }), json!({}));
    let third = user(&acc, None, json!({}), json!({}));
    Diff::new("jwt_user_and_account_limits")
        .conf(&op.conf(""))
        .send_signed(&few_subs.seed, &few_subs.connect_fields())
        .sync()
        .send("SUB a 1\r\nSUB b 2\r\n")
        .sync()
        .on(1)
        .send_signed(&third.seed, &third.connect_fields())
        .sync()
        .on(2)
        // The account allows 2 connections.
        .send_signed(&third.seed, &third.connect_fields())
        .wait_close()
        .on(1)
        .send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\n")
        .sync()
        .send("QUIT\r\n")
        .wait_close()
        .on(3)
        // A slot is free again once c1 is gone; its payload limit is 4 bytes.
        .send_signed(&small.seed, &small.connect_fields())
        .sync()
        .send("PUB a 4\r\nfour\r\nPUB a 5\r\nfive!\r\n")
        .wait_close()
        .expect("c0 < -ERR 'maximum subscriptions exceeded'\r\n")
        .expect("c2 < -ERR 'maximum account active connections exceeded'\r\n")
        .expect("c3 < -ERR 'Maximum Payload Violation'\r\n")
        .run();
}

#[test]
fn jwt_protocol_1_async_info_names_the_account() {
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let u = user(&acc, None, json!({}), json!({}));
    Diff::new("jwt_protocol_1_async_info_names_the_account")
        .conf(&op.conf(""))
        .send_signed(
            &u.seed,
            &format!("{},\"protocol\":1,\"headers\":true", u.connect_fields()),
        )
        .sync()
        .expect(&format!("\"remote_account\":\"{}\"", acc.public_key()))
        .run();
}

#[test]
fn jwt_user_expiring_while_connected() {
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let exp = tern::auth::jwt::now_unix() + 2;
    let u = user(&acc, None, json!({}), json!({ "exp": exp }));
    Diff::new("jwt_user_expiring_while_connected")
        .conf(&op.conf(""))
        .send_signed(&u.seed, &u.connect_fields())
        .sync()
        .wait_close()
        .expect("c0 < PONG\r\n")
        .expect("c0 < -ERR 'User Authentication Expired'\r\n")
        .expect_closed(0)
        .run();
}

/// The refused CONNECT is logged as nats-server logs it in operator mode: the bare
/// `authentication error` line (no user or nkey named), and the permission violation
/// line names `ACCOUNT/ACCOUNT_NAME/nkey:USER`.
#[test]
fn jwt_log_lines_match_nats_server() {
    use cluster_tests::diff::{reference_bin, tern_bin, ServerProc, ServerSetup};
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let u = user(&acc, None, json!({ "pub": { "deny": ["no"] } }), json!({}));
    let setup = ServerSetup {
        conf: Some(op.conf("")),
        ..Default::default()
    };
    let wanted = |log: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.split_once(" - cid:").map(|(_, rest)| rest))
            .filter(|l| l.contains("authentication error") || l.contains("Violation"))
            .map(|l| l.split_once(" - ").map_or(l, |(_, r)| r).to_string())
            .collect()
    };
    let mut logs = Vec::new();
    for bin in [reference_bin(), tern_bin()] {
        let s = ServerProc::start(&bin, &setup).expect("server starts");
        // Bad signature, then a user publishing where its JWT denies it.
        for connect in [
            format!("CONNECT {{{},\"sig\":\"AAAA\"}}\r\n", u.connect_fields()),
            String::new(),
        ] {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut rd = BufReader::new(c.try_clone().expect("clone"));
            let mut info = String::new();
            rd.read_line(&mut info).expect("INFO");
            let out = if connect.is_empty() {
                use base64::Engine as _;
                let nonce: serde_json::Value =
                    serde_json::from_str(info.trim().trim_start_matches("INFO ")).expect("json");
                let kp = nkeys::KeyPair::from_seed(&u.seed).expect("seed");
                let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
                    kp.sign(nonce["nonce"].as_str().expect("nonce").as_bytes())
                        .expect("sign"),
                );
                format!(
                    "CONNECT {{{},\"sig\":\"{sig}\"}}\r\nPUB no 1\r\nx\r\nPING\r\n",
                    u.connect_fields()
                )
            } else {
                connect
            };
            c.write_all(out.as_bytes()).expect("write");
            let mut line = String::new();
            rd.read_line(&mut line).expect("reply");
            assert!(line.starts_with("-ERR"), "{line}");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while wanted(&s.log()).len() < 2 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        logs.push(wanted(&s.log()));
    }
    assert_eq!(logs[0].len(), 2, "{logs:?}");
    assert_eq!(logs[0], logs[1]);
}

#[test]
fn jwt_revocation_bearer_nbf_and_default_permissions() {
    let now = tern::auth::jwt::now_unix();
    let revoked_key = nkeys::KeyPair::new_user();
    let mut op = OperatorSetup::default();
    // Users without permissions of their own get the account's default_permissions.
    let acc_kp = nkeys::KeyPair::new_account();
    let acc_jwt = tern::auth::jwt::issue::account(
        &op.operator,
        &acc_kp.public_key(),
        json!({
            "revocations": { revoked_key.public_key(): now + 60 },
            "default_permissions": { "pub": { "deny": ["locked"] } }
        }),
    );
    op.preload.push((acc_kp.public_key(), acc_jwt));
    let revoked = {
        let jwt =
            tern::auth::jwt::issue::user(&acc_kp, &revoked_key.public_key(), json!({}), json!({}));
        cluster_tests::jwt::UserCreds {
            jwt,
            seed: revoked_key.seed().expect("seed"),
            public: revoked_key.public_key(),
        }
    };
    let bearer = user(&acc_kp, None, json!({ "bearer_token": true }), json!({}));
    let early = user(&acc_kp, None, json!({}), json!({ "nbf": now + 3600 }));
    Diff::new("jwt_revocation_bearer_nbf_and_default_permissions")
        .conf(&op.conf(""))
        .send_signed(&revoked.seed, &revoked.connect_fields())
        .wait_close()
        .on(1)
        // A bearer token needs no signature.
        .send(format!("CONNECT {{{}}}\r\n", bearer.connect_fields()))
        .sync()
        .send("SUB locked 1\r\nPUB locked 1\r\nx\r\n")
        .sync()
        .on(2)
        .send_signed(&early.seed, &early.connect_fields())
        .wait_close()
        .expect("c0 < -ERR 'Authorization Violation'\r\n")
        .expect("c1 < -ERR 'Permissions Violation for Publish to \"locked\"'\r\n")
        .expect("c2 < -ERR 'Authorization Violation'\r\n")
        .expect_open(1)
        .run();
}

#[test]
fn jwt_reload_with_a_revocation_closes_that_user() {
    let now = tern::auth::jwt::now_unix();
    let mut op = OperatorSetup::default();
    let acc_kp = nkeys::KeyPair::new_account();
    let account = |revoked: serde_json::Value| {
        tern::auth::jwt::issue::account(
            &op.operator,
            &acc_kp.public_key(),
            json!({ "revocations": revoked }),
        )
    };
    let plain = account(json!({}));
    let u1 = user(&acc_kp, None, json!({}), json!({}));
    let u2 = user(&acc_kp, None, json!({}), json!({}));
    let revoking = account(json!({ u1.public.clone(): now + 60 }));
    op.preload.push((acc_kp.public_key(), plain));
    let before = op.conf("");
    op.preload[0].1 = revoking;
    let after = op.conf("");
    Diff::new("jwt_reload_with_a_revocation_closes_that_user")
        .conf(&before)
        .send_signed(&u1.seed, &u1.connect_fields())
        .sync()
        .on(1)
        .send_signed(&u2.seed, &u2.connect_fields())
        .sync()
        .reload(&after)
        .sync()
        .on(0)
        .wait_close()
        .expect("c0 < -ERR 'User Authentication Revoked'\r\n")
        .expect_closed(0)
        .expect_open(1)
        .run();
}

/// A reloaded account JWT with lower limits applies to a connected user at once.
#[test]
fn jwt_reload_with_new_account_limits() {
    let mut op = OperatorSetup::default();
    let acc_kp = nkeys::KeyPair::new_account();
    let account = |limits: serde_json::Value| {
        tern::auth::jwt::issue::account(
            &op.operator,
            &acc_kp.public_key(),
            json!({ "limits": limits }),
        )
    };
    let wide = account(json!({ "payload": 1024, "subs": 10 }));
    let narrow = account(json!({ "payload": 100, "subs": 1 }));
    let u = user(&acc_kp, None, json!({}), json!({}));
    op.preload.push((acc_kp.public_key(), wide));
    let before = op.conf("");
    op.preload[0].1 = narrow;
    let after = op.conf("");
    let body = "x".repeat(200);
    Diff::new("jwt_reload_with_new_account_limits")
        .conf(&before)
        .send_signed(&u.seed, &u.connect_fields())
        .send("SUB a 1\r\nSUB b 2\r\n")
        .sync()
        .reload(&after)
        .sync()
        .send("SUB c 3\r\n")
        .sync()
        .send(format!("PUB a 200\r\n{body}\r\n"))
        .recv()
        // Two reports at the reload (nats-server applies the limits twice), one for the
        // refused SUB; the 200-byte PUB is over the new payload limit.
        .expect_count("c0 < -ERR 'maximum subscriptions exceeded'\r\n", 3)
        .expect("c0 < -ERR 'Maximum Payload Violation'\r\n")
        .expect_closed(0)
        .run();
}
