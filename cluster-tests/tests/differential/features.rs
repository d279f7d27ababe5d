//! Headers, no-responders, echo, queue groups, conf-file limits and authentication.

use super::{pubs, HDR_CONNECT, QUIET_CONNECT};
use cluster_tests::diff::{escape, Diff, Transcript};

// ---------------------------------------------------------------- headers

#[test]
fn hpub_hmsg() {
    Diff::new("hpub_hmsg")
        .send(HDR_CONNECT)
        .send("SUB foo 1\r\nHPUB foo 24 26\r\nNATS/1.0\r\nA: B\r\nC: D\r\n\r\nhi\r\n")
        .sync()
        .expect("HMSG foo 1 24 26\r\nNATS/1.0\r\nA: B\r\nC: D\r\n\r\nhi\r\n")
        .run();
}

#[test]
fn hpub_with_reply_and_empty_body() {
    Diff::new("hpub_with_reply_and_empty_body")
        .send(HDR_CONNECT)
        .send("SUB foo 1\r\nHPUB foo reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")
        .sync()
        .expect("HMSG foo 1 reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
        .expect("HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n")
        .run();
}

#[test]
fn hpub_without_headers_closes_silently() {
    Diff::new("hpub_without_headers_closes_silently")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\n")
        .sync()
        .send("HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
        .wait_close()
        .expect_not("-ERR")
        .expect_not("HMSG")
        .expect_closed(0)
        .run();
}

#[test]
fn hpub_header_size_above_total_closes() {
    Diff::new("hpub_header_size_above_total_closes")
        .send(HDR_CONNECT)
        .send("HPUB foo 30 26\r\n")
        .wait_close()
        .expect_closed(0)
        .run();
}

#[test]
fn hpub_total_above_max_payload() {
    Diff::new("hpub_total_above_max_payload")
        .send(HDR_CONNECT)
        .send("HPUB foo 12 1048577\r\n")
        .wait_close()
        .expect("-ERR 'Maximum Payload Violation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn header_msg_to_non_header_subscriber_is_stripped() {
    Diff::new("header_msg_to_non_header_subscriber_is_stripped")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\n")
        .sync()
        .on(1)
        .send(HDR_CONNECT)
        .send("SUB foo 9\r\nHPUB foo r 24 26\r\nNATS/1.0\r\nA: B\r\nC: D\r\n\r\nhi\r\n")
        .sync()
        .on(0)
        .sync()
        .expect("c0 < MSG foo 1 r 2\r\nhi\r\n")
        .expect("c1 < HMSG foo 9 r 24 26\r\n")
        .run();
}

#[test]
fn plain_pub_to_header_subscriber_is_msg() {
    Diff::new("plain_pub_to_header_subscriber_is_msg")
        .send(HDR_CONNECT)
        .send("SUB foo 1\r\nPUB foo 2\r\nhi\r\n")
        .sync()
        .expect("MSG foo 1 2\r\nhi\r\n")
        .expect_not("HMSG")
        .run();
}

// ---------------------------------------------------------------- no responders

#[test]
fn no_responders_requires_headers() {
    Diff::new("no_responders_requires_headers")
        .send("CONNECT {\"verbose\":false,\"no_responders\":true}\r\n")
        .wait_close()
        .expect("-ERR 'no responders requires headers support'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn no_responders_503() {
    Diff::new("no_responders_503")
        .send(HDR_CONNECT)
        .send("SUB _INBOX.x 2\r\nPUB nobody _INBOX.x 2\r\nhi\r\n")
        .sync()
        .send("HPUB nobody.else _INBOX.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
        .sync()
        .expect("HMSG _INBOX.x 2 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n")
        .expect("HMSG _INBOX.x 2 43 43\r\nNATS/1.0 503\r\nNats-Subject: nobody.else\r\n\r\n\r\n")
        .run();
}

#[test]
fn no_503_when_someone_listens() {
    Diff::new("no_503_when_someone_listens")
        .on(1)
        .send(QUIET_CONNECT)
        .send("SUB svc 1\r\n")
        .sync()
        .on(0)
        .send(HDR_CONNECT)
        .send("SUB _INBOX.x 2\r\nPUB svc _INBOX.x 3\r\nreq\r\n")
        .sync()
        .on(1)
        .sync()
        .expect("c1 < MSG svc 1 _INBOX.x 3\r\nreq\r\n")
        .expect_not("503")
        .run();
}

#[test]
fn no_503_without_flag_or_without_own_reply_sub() {
    Diff::new("no_503_without_flag_or_without_own_reply_sub")
        // headers but no no_responders: nothing.
        .send("CONNECT {\"verbose\":false,\"headers\":true}\r\n")
        .send("SUB _INBOX.a 1\r\nPUB nobody _INBOX.a 1\r\nx\r\n")
        .sync()
        // no_responders, but the reply subscription belongs to another connection.
        .on(1)
        .send(QUIET_CONNECT)
        .send("SUB _INBOX.b 1\r\n")
        .sync()
        .on(2)
        .send(HDR_CONNECT)
        .send("PUB nobody _INBOX.b 1\r\nx\r\n")
        .sync()
        .on(1)
        .sync()
        .expect_not("503")
        .expect_not("MSG")
        .run();
}

// ---------------------------------------------------------------- echo

#[test]
fn echo_false_skips_own_subscriptions() {
    Diff::new("echo_false_skips_own_subscriptions")
        .on(1)
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\n")
        .sync()
        .on(0)
        .send("CONNECT {\"verbose\":false,\"protocol\":1,\"echo\":false}\r\n")
        .send("SUB foo 1\r\nPUB foo 4\r\nself\r\n")
        .sync()
        .on(1)
        .send("PUB foo 5\r\nother\r\n")
        .sync()
        .on(0)
        .sync()
        .expect("c0 < MSG foo 1 5\r\nother\r\n")
        .expect_count("c0 < MSG", 1)
        .expect("c1 < MSG foo 1 4\r\nself\r\n")
        .expect("c1 < MSG foo 1 5\r\nother\r\n")
        .run();
}

#[test]
fn echo_false_queue_member_skipped() {
    // The publisher is a member of the queue group but must not receive its own messages:
    // the other member gets all four (deterministic despite random member choice).
    let mut pubs_s = String::from("CONNECT {\"verbose\":false,\"protocol\":1,\"echo\":false}\r\n");
    pubs_s.push_str("SUB work grp 1\r\n");
    Diff::new("echo_false_queue_member_skipped")
        .send(pubs_s)
        .sync()
        .on(1)
        .send(QUIET_CONNECT)
        .send("SUB work grp 5\r\n")
        .sync()
        .on(0)
        .send(pubs("work", 4))
        .sync()
        .on(1)
        .sync()
        .expect_count("c1 < MSG work 5 2\r\n", 4)
        .expect_count("c0 < MSG", 0)
        .run();
}

// ---------------------------------------------------------------- queue groups

/// Invariant view of a queue-group run: per connection the non-MSG frames, then which
/// payloads the queue members received together (sorted: each exactly once) and what the
/// plain subscriber received. Which member got which message is random and not compared.
fn queue_summary(t: &Transcript, queue_conns: &[usize], plain_conn: usize) -> String {
    let mut out = String::new();
    let conns: Vec<usize> = (0..=4).collect();
    for c in &conns {
        let ops: Vec<String> = t
            .frames(*c)
            .iter()
            .filter(|f| f.op != "MSG" && f.op != "INFO")
            .map(|f| escape(&f.line))
            .collect();
        out.push_str(&format!(
            "c{c} other frames: {ops:?} closed={}\n",
            t.closed(*c)
        ));
    }
    let payloads = |c: usize| -> Vec<String> {
        t.frames(c)
            .iter()
            .filter(|f| f.op == "MSG")
            .map(|f| String::from_utf8_lossy(f.body()).into_owned())
            .collect()
    };
    let mut queue: Vec<String> = queue_conns.iter().flat_map(|c| payloads(*c)).collect();
    queue.sort();
    out.push_str(&format!("queue members received: {queue:?}\n"));
    out.push_str(&format!("plain received: {:?}\n", payloads(plain_conn)));
    out
}

#[test]
fn queue_group_across_connections() {
    let mut d = Diff::new("queue_group_across_connections");
    for c in 0..3 {
        d = d
            .on(c)
            .send(QUIET_CONNECT)
            .send(format!("SUB jobs workers {}\r\n", c + 1))
            .sync();
    }
    d.on(3)
        .send(QUIET_CONNECT)
        .send("SUB jobs 1\r\n")
        .sync()
        .on(4)
        .send(QUIET_CONNECT)
        .send(pubs("jobs", 6))
        .sync()
        .on(0)
        .sync()
        .on(1)
        .sync()
        .on(2)
        .sync()
        .on(3)
        .sync()
        .summarize(|t| queue_summary(t, &[0, 1, 2], 3))
        .expect(r#"queue members received: ["m0", "m1", "m2", "m3", "m4", "m5"]"#)
        .expect(r#"plain received: ["m0", "m1", "m2", "m3", "m4", "m5"]"#)
        .run();
}

#[test]
fn queue_group_single_connection() {
    // Three queue subs and one plain sub on one connection: 6 messages -> 6 for the group
    // (one member each), 6 for the plain sub. Compared as counts per role.
    let mut s = String::from(QUIET_CONNECT);
    s.push_str("SUB q.foo grp 1\r\nSUB q.foo grp 2\r\nSUB q.* grp 3\r\nSUB q.foo 4\r\n");
    s.push_str(&pubs("q.foo", 6));
    Diff::new("queue_group_single_connection")
        .send(s)
        .sync()
        .summarize(|t| {
            let mut queue = Vec::new();
            let mut plain = Vec::new();
            let mut other = Vec::new();
            for f in t.frames(0) {
                let body = String::from_utf8_lossy(f.body()).into_owned();
                match (f.op.as_str(), f.args().get(1).map(String::as_str)) {
                    ("MSG", Some("1" | "2" | "3")) => queue.push(body),
                    ("MSG", Some("4")) => plain.push(body),
                    ("INFO", _) => {}
                    _ => other.push(escape(&f.line)),
                }
            }
            queue.sort();
            plain.sort();
            format!("queue: {queue:?}\nplain: {plain:?}\nother: {other:?}\n")
        })
        .expect(r#"queue: ["m0", "m1", "m2", "m3", "m4", "m5"]"#)
        .expect(r#"plain: ["m0", "m1", "m2", "m3", "m4", "m5"]"#)
        .run();
}

#[test]
fn queue_group_unsub_leaves_other_members() {
    Diff::new("queue_group_unsub_leaves_other_members")
        .send(QUIET_CONNECT)
        .send("SUB jobs g 1\r\nSUB jobs g 2\r\nUNSUB 1\r\n")
        .send(pubs("jobs", 3))
        .sync()
        .expect_count("MSG jobs 2 2\r\n", 3)
        .run();
}

// ---------------------------------------------------------------- conf-file limits

#[test]
fn conf_max_payload_small() {
    Diff::new("conf_max_payload_small")
        .conf("max_payload: 16\n")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo 16\r\n0123456789abcdef\r\n")
        .sync()
        .send("PUB foo 17\r\n")
        .wait_close()
        .expect("\"max_payload\":16")
        .expect("MSG foo 1 16\r\n0123456789abcdef\r\n")
        .expect("-ERR 'Maximum Payload Violation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn conf_max_connections_1() {
    Diff::new("conf_max_connections_1")
        .conf("max_connections: 1\n")
        .send(QUIET_CONNECT)
        .sync()
        .on(1)
        .wait_close()
        .on(0)
        .sync()
        .expect("c1 < INFO {")
        .expect("c1 < -ERR 'maximum connections exceeded'\r\n")
        .expect_closed(1)
        .expect_open(0)
        .run();
}

#[test]
fn conf_max_control_line() {
    // "<subject> 1" is the argument part: 62 + 2 = 64 bytes is the limit.
    Diff::new("conf_max_control_line")
        .conf("max_control_line: 64\n")
        .send(QUIET_CONNECT)
        .send(format!("SUB {} 1\r\n", "a".repeat(62)))
        .sync()
        .send(format!("SUB {} 2\r\n", "b".repeat(63)))
        .wait_close()
        .expect("-ERR 'maximum control line exceeded'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn conf_max_subscriptions() {
    Diff::new("conf_max_subscriptions")
        .conf("max_subscriptions: 2\n")
        .send(QUIET_CONNECT)
        .send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB a 1\r\nx\r\nPUB c 1\r\ny\r\n")
        .sync()
        .expect("-ERR 'maximum subscriptions exceeded'\r\n")
        .expect("MSG a 1 1\r\nx\r\n")
        .expect_not("MSG c")
        .expect_open(0)
        .run();
}

// ---------------------------------------------------------------- authentication

const USER_PASS: &[&str] = &["--user", "alice", "--pass", "s3cret"];

#[test]
fn auth_user_pass_good() {
    Diff::new("auth_user_pass_good")
        .args(USER_PASS)
        .send("CONNECT {\"verbose\":true,\"user\":\"alice\",\"pass\":\"s3cret\"}\r\n")
        .sync()
        .send("SUB foo 1\r\nPUB foo 1\r\nx\r\n")
        .sync()
        .expect("\"auth_required\":true")
        .expect_count("+OK\r\n", 3)
        .expect("MSG foo 1 1\r\nx\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn auth_user_pass_bad() {
    Diff::new("auth_user_pass_bad")
        .args(USER_PASS)
        .send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\n")
        .wait_close()
        .expect("-ERR 'Authorization Violation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn auth_missing_credentials() {
    Diff::new("auth_missing_credentials")
        .args(USER_PASS)
        .send("CONNECT {}\r\n")
        .wait_close()
        .expect("-ERR 'Authorization Violation'\r\n")
        .expect_not("+OK")
        .expect_closed(0)
        .run();
}

#[test]
fn auth_ping_before_connect() {
    Diff::new("auth_ping_before_connect")
        .args(USER_PASS)
        .send("PING\r\n")
        .wait_close()
        .expect("-ERR 'Authorization Violation'\r\n")
        .expect_not("PONG")
        .expect_closed(0)
        .run();
}

#[test]
fn auth_sub_before_connect() {
    Diff::new("auth_sub_before_connect")
        .args(USER_PASS)
        .send("SUB foo 1\r\n")
        .wait_close()
        .expect("-ERR 'Authorization Violation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn auth_token() {
    Diff::new("auth_token")
        .args(&["--auth", "t0ken"])
        .send("CONNECT {\"verbose\":false,\"auth_token\":\"t0ken\"}\r\n")
        .sync()
        .on(1)
        .send("CONNECT {\"verbose\":false,\"auth_token\":\"nope\"}\r\n")
        .wait_close()
        .on(2)
        .send("CONNECT {\"verbose\":false,\"user\":\"t0ken\"}\r\n")
        .wait_close()
        .expect("\"auth_required\":true")
        .expect("c0 < PONG\r\n")
        .expect("c1 < -ERR 'Authorization Violation'\r\n")
        .expect("c2 < -ERR 'Authorization Violation'\r\n")
        .expect_open(0)
        .expect_closed(1)
        .expect_closed(2)
        .run();
}

#[test]
fn auth_conf_users_list() {
    Diff::new("auth_conf_users_list")
        .conf("authorization {\n  users = [\n    {user: alice, password: a1}\n    {user: bob, password: b2}\n  ]\n}\n")
        .send("CONNECT {\"verbose\":false,\"user\":\"bob\",\"pass\":\"b2\"}\r\n")
        .sync()
        .on(1)
        .send("CONNECT {\"verbose\":false,\"user\":\"bob\",\"pass\":\"a1\"}\r\n")
        .wait_close()
        .expect("c0 < PONG\r\n")
        .expect("c1 < -ERR 'Authorization Violation'\r\n")
        .expect_closed(1)
        .run();
}

#[test]
fn auth_timeout() {
    // Protocol time is the subject: nothing for 300 ms, then the timeout error (~0.5 s).
    Diff::new("auth_timeout")
        .conf("authorization {\n  user: a\n  password: b\n  timeout: 0.5\n}\n")
        .quiet(300)
        .wait_close()
        .expect("\"auth_required\":true")
        .expect("c0 < -ERR 'Authentication Timeout'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn auth_timeout_cancelled_by_connect() {
    Diff::new("auth_timeout_cancelled_by_connect")
        .conf("authorization {\n  user: a\n  password: b\n  timeout: 0.5\n}\n")
        .send("CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"b\"}\r\n")
        .sync()
        .quiet(800)
        .sync()
        .expect_not("-ERR")
        .expect_count("PONG\r\n", 2)
        .expect_open(0)
        .run();
}
