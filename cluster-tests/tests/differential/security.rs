//! Authentication and authorization against the same conf file on both servers: bcrypt
//! passwords and tokens, nkey users with a signed nonce, `no_auth_user`, publish and
//! subscribe permissions (allow/deny, queue entries, wildcard deny filter),
//! `allow_responses`, `default_permissions`, and the reserved reply prefixes.

use cluster_tests::diff::Diff;

use super::{login, Q};

/// A `$2a$` bcrypt hash (the prefix nats-server's docs show), cost 4 to keep tests fast.
fn bcrypt_2a(secret: &str) -> String {
    bcrypt::hash_with_result(secret, 4)
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoA)
}

#[test]
fn auth_bcrypt_users() {
    let conf = format!(
        "authorization {{ users = [ {{user: alice, password: \"{}\"}}, {{user: bob, password: \"{}\"}} ] }}\n",
        bcrypt_2a("s3cret"),
        bcrypt::hash("b0b", 4).expect("bcrypt")
    );
    Diff::new("auth_bcrypt_users")
        .conf(&conf)
        .send(login("alice", "s3cret"))
        .sync()
        .on(1)
        .send(login("bob", "b0b"))
        .sync()
        .on(2)
        .send(login("alice", "wrong"))
        .wait_close()
        .on(3)
        .send(login("carol", "s3cret"))
        .wait_close()
        .expect("c0 < PONG\r\n")
        .expect("c1 < PONG\r\n")
        .expect("c2 < -ERR 'Authorization Violation'\r\n")
        .expect("c3 < -ERR 'Authorization Violation'\r\n")
        .expect_not("nonce")
        .expect_closed(2)
        .expect_closed(3)
        .run();
}

#[test]
fn auth_bcrypt_token() {
    let conf = format!("authorization {{ token: \"{}\" }}\n", bcrypt_2a("t0k"));
    Diff::new("auth_bcrypt_token")
        .conf(&conf)
        .send(format!("{Q},\"auth_token\":\"t0k\"}}\r\n"))
        .sync()
        .on(1)
        .send(format!("{Q},\"auth_token\":\"nope\"}}\r\n"))
        .wait_close()
        .expect("c0 < PONG\r\n")
        .expect("c1 < -ERR 'Authorization Violation'\r\n")
        .run();
}

#[test]
fn auth_nkey_users() {
    let kp = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let seed = kp.seed().expect("seed");
    let conf = format!(
        "authorization {{ users = [ {{nkey: {}}}, {{user: u, password: p}} ] }}\n",
        kp.public_key()
    );
    Diff::new("auth_nkey_users")
        .conf(&conf)
        .send_signed(&seed, "\"verbose\":false")
        .sync()
        .send("SUB x 1\r\nPUB x 1\r\nn\r\n")
        .sync()
        .on(1)
        // Signed by a key that is not configured.
        .send_signed(&other.seed().expect("seed"), "\"verbose\":false")
        .wait_close()
        .on(2)
        // The right nkey with a signature that does not verify.
        .send(format!(
            "{Q},\"nkey\":\"{}\",\"sig\":\"AAAA\"}}\r\n",
            kp.public_key()
        ))
        .wait_close()
        .on(3)
        .send(format!("{Q},\"nkey\":\"{}\"}}\r\n", kp.public_key()))
        .wait_close()
        .on(4)
        // Users still work next to nkeys.
        .send(login("u", "p"))
        .sync()
        .expect("\"nonce\":\"<nonce>\"")
        .expect("c0 < MSG x 1 1\r\nn\r\n")
        .expect("c1 < -ERR 'Authorization Violation'\r\n")
        .expect("c2 < -ERR 'Authorization Violation'\r\n")
        .expect("c3 < -ERR 'Authorization Violation'\r\n")
        .expect("c4 < PONG\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn no_auth_user_gets_its_permissions() {
    Diff::new("no_auth_user_gets_its_permissions")
        .conf("no_auth_user: guest\nauthorization { users = [ {user: guest, password: g, permissions: {publish: \"pub.>\"}}, {user: a, password: b} ] }\n")
        .send("PING\r\n")
        .sync()
        .send(format!("{Q}}}\r\nSUB pub.x 1\r\nPUB x 0\r\n\r\nPUB pub.x 1\r\ng\r\n"))
        .sync()
        .on(1)
        .send(login("a", "b"))
        .send("PUB x 0\r\n\r\n")
        .sync()
        .on(2)
        // Naming the no_auth_user without its password is a failure.
        .send(format!("{Q},\"user\":\"guest\"}}\r\n"))
        .wait_close()
        .expect_not("auth_required")
        .expect("c0 < -ERR 'Permissions Violation for Publish to \"x\"'\r\n")
        .expect("c0 < MSG pub.x 1 1\r\ng\r\n")
        .expect("c2 < -ERR 'Authorization Violation'\r\n")
        .expect_open(0)
        .run();
}

const PERMS_CONF: &str = r#"
authorization {
  users = [
    {user: alice, password: a, permissions: {
        publish: {allow: ["foo.>", "req"], deny: ["foo.secret"]}
        subscribe: {allow: ["bar", "q.* qq", "wild.>", "v.* v1.*"], deny: ["wild.secret", "bar q9"]}
    }}
    {user: pub, password: p}
  ]
}
"#;

#[test]
fn perms_publish_allow_and_deny() {
    Diff::new("perms_publish_allow_and_deny")
        .conf(PERMS_CONF)
        .send("CONNECT {\"verbose\":true,\"user\":\"alice\",\"pass\":\"a\"}\r\n")
        .send("PUB foo.a 1\r\na\r\nPUB foo.secret 1\r\nb\r\nPUB baz 0\r\n\r\nPUB foo 0\r\n\r\nPUB req _INBOX.x 0\r\n\r\n")
        .sync()
        .expect_count("+OK\r\n", 3)
        .expect("-ERR 'Permissions Violation for Publish to \"foo.secret\"'\r\n")
        .expect("-ERR 'Permissions Violation for Publish to \"baz\"'\r\n")
        .expect("-ERR 'Permissions Violation for Publish to \"foo\"'\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn perms_subscribe_and_queues() {
    Diff::new("perms_subscribe_and_queues")
        .conf(PERMS_CONF)
        .send(login("alice", "a"))
        .send("SUB foo 1\r\nSUB bar 2\r\nSUB bar anyq 3\r\nSUB bar q9 4\r\nSUB q.x 5\r\nSUB q.x qq 6\r\nSUB q.x qz 7\r\nSUB v.a v1.x 8\r\nSUB v.a v2 9\r\nSUB wild.* 10\r\nSUB wild.secret 11\r\nSUB foo..bar 12\r\n")
        .sync()
        .expect("-ERR 'Permissions Violation for Subscription to \"foo\"'\r\n")
        .expect("-ERR 'Permissions Violation for Subscription to \"bar\" using queue \"q9\"'\r\n")
        .expect("-ERR 'Permissions Violation for Subscription to \"q.x\"'\r\n")
        .expect("-ERR 'Permissions Violation for Subscription to \"q.x\" using queue \"qz\"'\r\n")
        .expect("-ERR 'Permissions Violation for Subscription to \"v.a\" using queue \"v2\"'\r\n")
        .expect("-ERR 'Permissions Violation for Subscription to \"wild.secret\"'\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn perms_wildcard_sub_filters_denied_subjects() {
    Diff::new("perms_wildcard_sub_filters_denied_subjects")
        .conf(PERMS_CONF)
        .send(login("alice", "a"))
        .send("SUB wild.> 1\r\nSUB bar 2\r\n")
        .sync()
        .on(1)
        .send(login("pub", "p"))
        .send("PUB wild.secret 1\r\ns\r\nPUB wild.ok 1\r\no\r\nPUB wild.secret.x 1\r\nx\r\nPUB bar 1\r\nb\r\n")
        .sync()
        .on(0)
        .sync()
        .expect("c0 < MSG wild.ok 1 1\r\no\r\n")
        .expect("c0 < MSG wild.secret.x 1 1\r\nx\r\n")
        .expect_not("MSG wild.secret 1")
        .run();
}

const RESP_CONF: &str = r#"
authorization {
  default_permissions { publish: { deny: ["nope"] } }
  users = [
    {user: req, password: p}
    {user: resp, password: p, permissions: {subscribe: "svc", allow_responses: true}}
    {user: resp2, password: p, permissions: {subscribe: "svc", allow_responses: {max: 2, expires: "1m"}}}
  ]
}
"#;

fn responses_case(name: &str, user: &str) -> String {
    Diff::new(name)
        .conf(RESP_CONF)
        .send(login("req", "p"))
        .send("SUB rep.> 1\r\nPUB nope 0\r\n\r\n")
        .sync()
        .on(1)
        .send(login(user, "p"))
        .send("SUB svc 1\r\nPUB free 0\r\n\r\n")
        .sync()
        .on(0)
        .send("PUB svc rep.1 1\r\nq\r\nPUB svc rep.2 1\r\nq\r\n")
        .sync()
        .on(1)
        .sync()
        .send("PUB rep.1 2\r\nr1\r\nPUB rep.1 2\r\nr2\r\nPUB rep.1 2\r\nr3\r\nPUB rep.2 2\r\ns1\r\nPUB rep.9 0\r\n\r\n")
        .sync()
        .on(0)
        .sync()
        .expect("c0 < -ERR 'Permissions Violation for Publish to \"nope\"'\r\n")
        .expect("c1 < -ERR 'Permissions Violation for Publish to \"free\"'\r\n")
        .expect("c1 < -ERR 'Permissions Violation for Publish to \"rep.9\"'\r\n")
        .expect("c0 < MSG rep.1 1 2\r\nr1\r\n")
        .expect("c0 < MSG rep.2 1 2\r\ns1\r\n")
        .run()
}

#[test]
fn perms_allow_responses_default_once() {
    let out = responses_case("perms_allow_responses_default_once", "resp");
    assert_eq!(out.matches("MSG rep.1 1 2").count(), 1, "{out}");
}

#[test]
fn perms_allow_responses_max_two() {
    let out = responses_case("perms_allow_responses_max_two", "resp2");
    assert_eq!(out.matches("MSG rep.1 1 2").count(), 2, "{out}");
}

#[test]
fn reserved_reply_prefixes_for_every_client() {
    Diff::new("reserved_reply_prefixes_for_every_client")
        .send("CONNECT {\"verbose\":true}\r\nSUB > 1\r\n")
        .send("PUB foo _R_.x 1\r\na\r\nPUB foo $JS.ACK.x 1\r\nb\r\nPUB foo _GR_.x 1\r\nc\r\nPUB _GR_.x 1\r\nd\r\nPUB $GR.x 1\r\ne\r\nPUB foo $JS.ACK 1\r\ng\r\n")
        .sync()
        .expect("-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n")
        .expect("-ERR 'Permissions Violation for Publish with Reply of \"$JS.ACK.x\"'\r\n")
        .expect("-ERR 'Permissions Violation for Publish to \"_GR_.x\"'\r\n")
        .expect("MSG foo 1 $JS.ACK 1\r\ng\r\n")
        .expect_open(0)
        .run();
}
