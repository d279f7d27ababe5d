//! Reload (SIGHUP with a rewritten conf file) against connections that are already
//! open, the same on both servers: new permissions apply at once and subscriptions they
//! no longer allow are removed with a `-ERR`; a user whose password changed is closed
//! with `Authorization Violation`; a user no longer configured is closed without an
//! error; anything else stays connected and keeps working.

use cluster_tests::diff::Diff;

use super::{login, Q};

fn users(entries: &[&str]) -> String {
    format!("authorization {{ users = [\n{}\n] }}\n", entries.join("\n"))
}

#[test]
fn reload_applies_permissions_and_users_to_open_connections() {
    let keep = format!(
        "{{user: k, password: \"{}\"}}",
        bcrypt::hash("k3ep", 4).expect("bcrypt")
    );
    let before = users(&[
        r#"{user: a, password: a, permissions: {publish: ["x", "y", "_INBOX.>"], subscribe: ["foo", "bar", "q.* qq", "w.>"]}}"#,
        "{user: b, password: b}",
        "{user: gone, password: g}",
        &keep,
    ]);
    let after = users(&[
        r#"{user: a, password: a, permissions: {publish: ["x", "_INBOX.>"], subscribe: ["foo", "w.>"]}}"#,
        "{user: b, password: changed}",
        &keep,
    ]);
    Diff::new("reload_applies_permissions_and_users_to_open_connections")
        .conf(&before)
        .send(login("a", "a"))
        .send("SUB foo 1\r\nSUB bar 2\r\nSUB q.x qq 3\r\nSUB w.> 4\r\n")
        .sync()
        .on(1)
        .send(login("b", "b"))
        .sync()
        .on(2)
        .send(login("gone", "g"))
        .sync()
        .on(3)
        .send(login("k", "k3ep"))
        .send("SUB bar 1\r\n")
        .sync()
        .on(0)
        .reload(&after)
        // The removed subscriptions are reported before anything else is read.
        .sync()
        .send("PUB y 1\r\n1\r\nPUB x 1\r\n2\r\nPUB bar 1\r\n3\r\n")
        .sync()
        .on(1)
        .wait_close()
        .on(2)
        .wait_close()
        .on(3)
        // The untouched user still publishes and still gets its own subscription.
        .send("PUB bar 2\r\nhi\r\nPUB foo 2\r\nok\r\n")
        .sync()
        .on(4)
        .send(login("b", "changed"))
        .sync()
        .expect("c0 < -ERR 'Permissions Violation for Subscription to \"bar\" (sid \"2\")'\r\n")
        .expect("c0 < -ERR 'Permissions Violation for Subscription to \"q.x\" using queue \"qq\" (sid \"3\")'\r\n")
        .expect("c0 < -ERR 'Permissions Violation for Publish to \"y\"'\r\n")
        .expect("c0 < -ERR 'Permissions Violation for Publish to \"bar\"'\r\n")
        .expect_not("c0 < MSG bar")
        .expect("c1 < -ERR 'Authorization Violation'\r\n")
        .expect("c3 < MSG bar 1 2\r\nhi\r\n")
        .expect("c4 < PONG\r\n")
        // nats-server reports the removed subscriptions in map order.
        .unordered()
        .expect_open(0)
        .expect_closed(1)
        .expect_closed(2)
        .expect_open(3)
        .run();
}

#[test]
fn reload_that_adds_auth_closes_anonymous_clients() {
    Diff::new("reload_that_adds_auth_closes_anonymous_clients")
        .conf("max_payload: 1024\n")
        .send(format!("{Q}}}\r\nSUB s 1\r\n"))
        .sync()
        .reload("authorization { token: t0k }\n")
        .wait_close()
        .on(1)
        .send(format!("{Q},\"auth_token\":\"t0k\"}}\r\n"))
        .sync()
        .expect("c0 < -ERR 'Authorization Violation'\r\n")
        .expect_closed(0)
        .expect("c1 < PONG\r\n")
        .run();
}

#[test]
fn reload_without_auth_changes_keeps_every_client() {
    // A `users` entry: nats-server closes single-user (`authorization { user }`)
    // clients on every reload, which tern does not copy (see docs/compatibility.md).
    let conf = |max: u32| format!("max_payload: {max}\n{}", users(&["{user: s, password: p}"]));
    Diff::new("reload_without_auth_changes_keeps_every_client")
        .conf(&conf(2048))
        .send(login("s", "p"))
        .send("SUB s 1\r\n")
        .sync()
        .reload(&conf(4096))
        .send("PUB s 2\r\nok\r\n")
        .sync()
        .expect("c0 < MSG s 1 2\r\nok\r\n")
        .expect_open(0)
        .run();
}

/// How many connections got the error and were closed (nats-server picks them at
/// random, tern the newest), whatever their order.
fn closed_count(t: &cluster_tests::diff::Transcript) -> String {
    let r = t.render();
    format!(
        "errors: {}, closed: {}",
        r.matches("< -ERR 'maximum connections exceeded'").count(),
        r.matches("<EOF>").count()
    )
}

#[test]
fn reload_lowering_max_connections_closes_the_excess() {
    let mut d =
        Diff::new("reload_lowering_max_connections_closes_the_excess").conf("max_payload: 2048\n");
    for c in 0..3 {
        d = d.on(c).send(format!("{Q}}}\r\n")).sync();
    }
    d = d.reload("max_payload: 2048\nmax_connections: 1\n");
    for c in 0..3 {
        d = d.on(c).recv();
    }
    d.summarize(closed_count)
        .expect("errors: 2, closed: 2")
        .run();
}

/// nats-server rebuilds the permissions of every client on an authorization reload, so
/// a reply allowed by `allow_responses` before it is refused after it; tern does the same.
#[test]
fn reload_resets_pending_replies_of_allow_responses() {
    let conf = |req_pass: &str| {
        users(&[
            &format!("{{user: req, password: {req_pass}}}"),
            "{user: resp, password: p, permissions: {subscribe: \"svc\", allow_responses: true}}",
        ])
    };
    Diff::new("reload_resets_pending_replies_of_allow_responses")
        .conf(&conf("p"))
        .send(login("req", "p"))
        .send("SUB rep.> 1\r\n")
        .sync()
        .on(1)
        .send(login("resp", "p"))
        .send("SUB svc 1\r\n")
        .sync()
        .on(0)
        .send("PUB svc rep.1 1\r\nq\r\n")
        .sync()
        .on(1)
        .sync()
        // An authorization change elsewhere (and req's own password: it is closed).
        .reload(&conf("changed"))
        .on(2)
        .send(login("req", "changed"))
        .send("SUB rep.> 1\r\n")
        .sync()
        .on(1)
        .send("PUB rep.1 2\r\nr1\r\n")
        .sync()
        .on(2)
        .sync()
        .on(0)
        .wait_close()
        .expect("c0 < -ERR 'Authorization Violation'\r\n")
        .expect("c1 < -ERR 'Permissions Violation for Publish to \"rep.1\"'\r\n")
        .expect_not("c2 < MSG rep.1")
        .run();
}
