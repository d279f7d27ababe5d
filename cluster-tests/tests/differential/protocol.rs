//! Handshake, framing, PUB/SUB/UNSUB, subjects and protocol errors.

use super::{pubs, HDR_CONNECT, QUIET_CONNECT};
use cluster_tests::diff::Diff;

// ---------------------------------------------------------------- handshake, PING/PONG

#[test]
fn info_on_connect() {
    Diff::new("info_on_connect")
        .sync()
        .expect("INFO {")
        .expect("\"proto\":1")
        .expect("\"headers\":true")
        .expect("\"max_payload\":1048576")
        .expect("} \r\n")
        .expect("PONG\r\n")
        .run();
}

#[test]
fn ping_pong_before_connect() {
    Diff::new("ping_pong_before_connect")
        .send("PING\r\n")
        .sync()
        .send("PING\r\nPING\r\n")
        .sync()
        .expect_count("PONG\r\n", 5)
        .expect_open(0)
        .run();
}

#[test]
fn ping_with_trailing_junk() {
    Diff::new("ping_with_trailing_junk")
        .send(QUIET_CONNECT)
        .send("PING foo bar\r\nPONG whatever\r\nPING\t\r\n")
        .sync()
        .expect_count("PONG\r\n", 3)
        .expect_open(0)
        .run();
}

#[test]
fn async_info_after_first_ping_protocol_1() {
    Diff::new("async_info_after_first_ping_protocol_1")
        .send("CONNECT {\"verbose\":false,\"protocol\":1}\r\n")
        .sync()
        .expect("\"connect_info\":true")
        .expect("\"remote_account\":\"$G\"")
        .run();
}

#[test]
fn connect_empty_defaults_verbose() {
    Diff::new("connect_empty_defaults_verbose")
        .send("CONNECT {}\r\n")
        .sync()
        .send("SUB foo 1\r\n")
        .sync()
        .expect_count("+OK\r\n", 2)
        .run();
}

#[test]
fn connect_verbose_false_is_silent() {
    Diff::new("connect_verbose_false_is_silent")
        .send("CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nUNSUB 1\r\n")
        .sync()
        .expect_not("+OK")
        .run();
}

#[test]
fn connect_without_space_before_json() {
    Diff::new("connect_without_space_before_json")
        .send("CONNECT{\"verbose\":false}\r\nSUB foo 1\r\n")
        .sync()
        .expect_not("+OK")
        .expect_open(0)
        .run();
}

#[test]
fn ops_before_connect_use_defaults() {
    Diff::new("ops_before_connect_use_defaults")
        .send("SUB foo 1\r\n")
        .sync()
        .send("PUB foo 5\r\nhello\r\n")
        .sync()
        .send("CONNECT {\"verbose\":false}\r\npub foo bar 2\r\nhi\r\n")
        .sync()
        .expect_count("+OK\r\n", 2)
        .expect("MSG foo 1 5\r\nhello\r\n")
        .expect("MSG foo 1 bar 2\r\nhi\r\n")
        .run();
}

#[test]
fn verbose_ok_on_each_op() {
    Diff::new("verbose_ok_on_each_op")
        .send("CONNECT {\"verbose\":true,\"pedantic\":false}\r\n")
        .sync()
        .send("SUB foo 1\r\n")
        .sync()
        .send("PUB foo 2\r\nhi\r\n")
        .sync()
        .send("UNSUB 1\r\n")
        .sync()
        .send("UNSUB 99\r\n")
        .sync()
        .expect_count("+OK\r\n", 5)
        .expect("MSG foo 1 2\r\nhi\r\n")
        .run();
}

#[test]
fn second_connect_is_processed_again() {
    Diff::new("second_connect_is_processed_again")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\n")
        .sync()
        .send("CONNECT {\"verbose\":true}\r\n")
        .sync()
        .send("SUB bar 2\r\n")
        .sync()
        .expect_count("+OK\r\n", 2)
        .run();
}

// ---------------------------------------------------------------- framing

#[test]
fn case_insensitive_ops() {
    Diff::new("case_insensitive_ops")
        .send("connect {\"verbose\":false}\r\nsub foo 1\r\nSuB bar 2\r\nPub foo 2\r\nhi\r\npUB bar 0\r\n\r\nunsub 1\r\npub foo 1\r\nx\r\npInG\r\n")
        .sync()
        .expect("MSG foo 1 2\r\nhi\r\n")
        .expect("MSG bar 2 0\r\n\r\n")
        .expect_count("PONG\r\n", 2)
        .run();
}

#[test]
fn tabs_and_multiple_spaces() {
    Diff::new("tabs_and_multiple_spaces")
        .send(QUIET_CONNECT)
        .send("SUB\tfoo  \t 1 \r\nSUB   bar\tq\t\t2\t\r\nPUB \t foo\t\t2  \r\nhi\r\nPUB bar  r   3\t\r\nabc\r\n")
        .sync()
        .expect("MSG foo 1 2\r\nhi\r\n")
        .expect("MSG bar 2 r 3\r\nabc\r\n")
        .run();
}

#[test]
fn lf_only_line_ends() {
    Diff::new("lf_only_line_ends")
        .send("CONNECT {\"verbose\":false}\nSUB foo 1\nPUB foo 2\nhi\r\nping\n")
        .sync()
        .expect("MSG foo 1 2\r\nhi\r\n")
        .expect_count("PONG\r\n", 2)
        .run();
}

#[test]
fn several_ops_in_one_write() {
    let mut s = String::from(QUIET_CONNECT);
    s.push_str("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    s.push_str(
        "PUB a 1\r\n1\r\nPUB b 2\r\n22\r\nPUB c 3\r\n333\r\nPING\r\nUNSUB 2\r\nPUB b 1\r\nx\r\n",
    );
    Diff::new("several_ops_in_one_write")
        .send(s)
        .sync()
        .expect("MSG c 3 3\r\n333\r\n")
        .expect_count("MSG", 3)
        .run();
}

#[test]
fn split_writes_byte_by_byte() {
    let data = "CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo bar 5\r\nhello\r\nPING\r\n";
    Diff::new("split_writes_byte_by_byte")
        .send_chunked(data, &[1])
        .sync()
        .expect("MSG foo 1 bar 5\r\nhello\r\n")
        .run();
}

#[test]
fn split_writes_odd_chunks() {
    // Chunk boundaries fall inside op names, inside CRLFs and inside payloads.
    let mut data = String::from(HDR_CONNECT);
    data.push_str("SUB foo.* 1\r\nPUB foo.a 11\r\nhello world\r\n");
    data.push_str("HPUB foo.b r 12 17\r\nNATS/1.0\r\n\r\nhello\r\nPUB foo.c 0\r\n\r\n");
    Diff::new("split_writes_odd_chunks")
        .send_chunked(data, &[3, 7, 2, 13, 1, 5])
        .sync()
        .expect("MSG foo.a 1 11\r\nhello world\r\n")
        .expect("HMSG foo.b 1 r 12 17\r\nNATS/1.0\r\n\r\nhello\r\n")
        .expect("MSG foo.c 1 0\r\n\r\n")
        .run();
}

#[test]
fn client_sends_info_and_ok_ignored() {
    Diff::new("client_sends_info_and_ok_ignored")
        .send(QUIET_CONNECT)
        .send("INFO {\"server_id\":\"x\"}\r\n+OK\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\n")
        .sync()
        .expect("MSG foo 1 1\r\nx\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn client_sends_err_closes() {
    Diff::new("client_sends_err_closes")
        .send(QUIET_CONNECT)
        .sync()
        .send("-ERR 'something bad'\r\n")
        .wait_close()
        .expect_not("-ERR 'Unknown")
        .expect_closed(0)
        .run();
}

// ---------------------------------------------------------------- PUB / SUB / UNSUB

#[test]
fn pub_sub_no_reply() {
    Diff::new("pub_sub_no_reply")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo 5\r\nhello\r\nPUB other 2\r\nno\r\n")
        .sync()
        .expect_count("MSG", 1)
        .expect("MSG foo 1 5\r\nhello\r\n")
        .run();
}

#[test]
fn pub_sub_with_reply() {
    Diff::new("pub_sub_with_reply")
        .send(QUIET_CONNECT)
        .send("SUB foo 7\r\nPUB foo _INBOX.abc.1 3\r\nabc\r\n")
        .sync()
        .expect("MSG foo 7 _INBOX.abc.1 3\r\nabc\r\n")
        .run();
}

#[test]
fn pub_sub_across_connections() {
    Diff::new("pub_sub_across_connections")
        .send(QUIET_CONNECT)
        .send("SUB greet.* 1\r\n")
        .sync()
        .on(1)
        .send(QUIET_CONNECT)
        .send("PUB greet.joe reply.1 5\r\nhello\r\nPUB greet.joe.x 1\r\nz\r\n")
        .sync()
        .on(0)
        .sync()
        .expect("c0 < MSG greet.joe 1 reply.1 5\r\nhello\r\n")
        .expect_count("MSG", 1)
        .run();
}

#[test]
fn zero_length_payload() {
    Diff::new("zero_length_payload")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo 0\r\n\r\nPUB foo r 0\r\n\r\n")
        .sync()
        .expect("MSG foo 1 0\r\n\r\n")
        .expect("MSG foo 1 r 0\r\n\r\n")
        .run();
}

#[test]
fn binary_payload_with_crlf_inside() {
    Diff::new("binary_payload_with_crlf_inside")
        .send(QUIET_CONNECT)
        .send(b"SUB foo 1\r\nPUB foo 8\r\n\r\n\x00\xffPI\r\n\r\n".as_slice())
        .sync()
        .expect("MSG foo 1 8\r\n\r\n\x00")
        .expect("PI\r\n\r\n")
        .run();
}

#[test]
fn unsub_stops_delivery() {
    Diff::new("unsub_stops_delivery")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\n")
        .sync()
        .expect_count("MSG", 1)
        .run();
}

#[test]
fn unsub_with_max() {
    let mut s = String::from(QUIET_CONNECT);
    s.push_str("SUB foo 1\r\nUNSUB 1 2\r\n");
    s.push_str(&pubs("foo", 4));
    Diff::new("unsub_with_max")
        .send(s)
        .sync()
        .expect_count("MSG foo 1 2\r\n", 2)
        .expect("m1")
        .expect_not("m2")
        .run();
}

#[test]
fn unsub_max_already_reached_removes_now() {
    let mut s = String::from(QUIET_CONNECT);
    s.push_str("SUB foo 1\r\n");
    s.push_str(&pubs("foo", 3));
    s.push_str("UNSUB 1 2\r\n");
    s.push_str(&pubs("foo", 2));
    Diff::new("unsub_max_already_reached_removes_now")
        .send(s)
        .sync()
        .expect_count("MSG foo 1 2\r\n", 3)
        .run();
}

#[test]
fn duplicate_sid_ignored() {
    Diff::new("duplicate_sid_ignored")
        .send("SUB foo 1\r\n")
        .sync()
        .send("SUB bar 1\r\n")
        .sync()
        .send("CONNECT {\"verbose\":false}\r\nPUB foo 1\r\nf\r\nPUB bar 1\r\nb\r\n")
        .sync()
        .expect_count("+OK\r\n", 2)
        .expect("MSG foo 1 1\r\nf\r\n")
        .expect_not("MSG bar")
        .run();
}

#[test]
fn unsub_unknown_sid_ok() {
    Diff::new("unsub_unknown_sid_ok")
        .send("UNSUB 42\r\n")
        .sync()
        .send("UNSUB 43 5\r\n")
        .sync()
        .expect_count("+OK\r\n", 2)
        .expect_not("-ERR")
        .expect_open(0)
        .run();
}

#[test]
fn two_subs_same_subject_same_connection() {
    Diff::new("two_subs_same_subject_same_connection")
        .unordered()
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nSUB foo 2\r\nPUB foo 1\r\nx\r\n")
        .sync()
        .expect("MSG foo 1 1\r\nx\r\n")
        .expect("MSG foo 2 1\r\nx\r\n")
        .run();
}

#[test]
fn no_subscribers_no_output() {
    Diff::new("no_subscribers_no_output")
        .send(QUIET_CONNECT)
        .send("PUB nobody 1\r\nx\r\nPUB nobody reply 1\r\nx\r\n")
        .sync()
        .expect_not("MSG")
        .run();
}

// ---------------------------------------------------------------- subjects and wildcards

#[test]
fn wildcard_star() {
    Diff::new("wildcard_star")
        .unordered()
        .send(QUIET_CONNECT)
        .send("SUB foo.* 1\r\nSUB *.bar 2\r\n")
        .send("PUB foo.bar 1\r\na\r\nPUB foo.baz 1\r\nb\r\nPUB foo 1\r\nc\r\nPUB foo.bar.baz 1\r\nd\r\nPUB x.bar 1\r\ne\r\n")
        .sync()
        .expect("MSG foo.baz 1 1\r\nb\r\n")
        .expect("MSG x.bar 2 1\r\ne\r\n")
        .expect_count("MSG", 4)
        .run();
}

#[test]
fn wildcard_gt() {
    Diff::new("wildcard_gt")
        .send(QUIET_CONNECT)
        .send("SUB foo.> 1\r\n")
        .send("PUB foo 1\r\na\r\nPUB foo.bar 1\r\nb\r\nPUB foo.bar.baz 1\r\nc\r\nPUB bar.foo 1\r\nd\r\n")
        .sync()
        .expect("MSG foo.bar.baz 1 1\r\nc\r\n")
        .expect_count("MSG", 2)
        .run();
}

#[test]
fn full_wildcard_and_mixed() {
    Diff::new("full_wildcard_and_mixed")
        .unordered()
        .send(QUIET_CONNECT)
        .send("SUB > 1\r\nSUB *.*.c 2\r\nSUB a.*.> 3\r\n")
        .send("PUB a 1\r\n1\r\nPUB a.b 1\r\n2\r\nPUB a.b.c 1\r\n3\r\nPUB x.y.c 1\r\n4\r\n")
        .sync()
        .expect_count("MSG", 7)
        .run();
}

#[test]
fn invalid_subjects_keep_connection() {
    Diff::new("invalid_subjects_keep_connection")
        .send(QUIET_CONNECT)
        .send("SUB foo..bar 1\r\n")
        .sync()
        .send("SUB foo.>.bar 2\r\n")
        .sync()
        .send("SUB .foo 3\r\nSUB foo. 4\r\nSUB foo.b*r 5\r\n")
        .sync()
        .send("SUB foo 6\r\nPUB foo 1\r\nx\r\n")
        .sync()
        .expect_count("-ERR 'Invalid Subject'\r\n", 4)
        .expect("MSG foo 6 1\r\nx\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn invalid_subject_verbose_no_ok() {
    Diff::new("invalid_subject_verbose_no_ok")
        .send("CONNECT {}\r\n")
        .sync()
        .send("SUB foo..bar 1\r\n")
        .sync()
        .expect_count("+OK\r\n", 1)
        .expect("-ERR 'Invalid Subject'\r\n")
        .run();
}

#[test]
fn pedantic_publish_to_wildcard() {
    Diff::new("pedantic_publish_to_wildcard")
        .send("CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB foo.* 1\r\n")
        .send("PUB foo.* 2\r\nhi\r\n")
        .sync()
        .send("PUB foo.> 2\r\nho\r\n")
        .sync()
        .expect_count("-ERR 'Invalid Publish Subject'\r\n", 2)
        .expect("MSG foo.* 1 2\r\nhi\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn pedantic_verbose_publish_to_wildcard() {
    Diff::new("pedantic_verbose_publish_to_wildcard")
        .send("SUB foo.* 1\r\n")
        .sync()
        .send("PUB foo.* 2\r\nhi\r\n")
        .sync()
        .expect("-ERR 'Invalid Publish Subject'\r\n")
        .expect("MSG foo.* 1 2\r\nhi\r\n")
        .expect_count("+OK\r\n", 2)
        .run();
}

#[test]
fn non_pedantic_wildcard_publish() {
    Diff::new("non_pedantic_wildcard_publish")
        .unordered()
        .send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")
        .send("SUB foo.* 1\r\nSUB foo.> 2\r\nSUB foo.bar 3\r\n")
        .send("PUB foo.* 1\r\na\r\nPUB foo..x 1\r\nb\r\n")
        .sync()
        .expect_not("-ERR")
        .expect("MSG foo.* 1 1\r\na\r\n")
        .expect("MSG foo.* 2 1\r\na\r\n")
        .expect_count("MSG", 2)
        .run();
}

// ---------------------------------------------------------------- protocol errors

#[test]
fn unknown_op_closes() {
    Diff::new("unknown_op_closes")
        .send(QUIET_CONNECT)
        .send("FOO bar\r\n")
        .wait_close()
        .expect("-ERR 'Unknown Protocol Operation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn client_sends_msg_forbidden() {
    Diff::new("client_sends_msg_forbidden")
        .send(QUIET_CONNECT)
        .send("MSG foo 1 2\r\nhi\r\n")
        .wait_close()
        .expect("-ERR 'Unknown Protocol Operation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn client_sends_route_ops_forbidden() {
    for (i, op) in [
        "RS+ $G foo\r\n",
        "RMSG $G foo 2\r\nhi\r\n",
        "LS+ $G foo\r\n",
    ]
    .iter()
    .enumerate()
    {
        Diff::new(&format!("client_sends_route_ops_forbidden[{i}]"))
            .send(QUIET_CONNECT)
            .send(op)
            .wait_close()
            .expect("-ERR 'Unknown Protocol Operation'\r\n")
            .expect_closed(0)
            .run();
    }
}

#[test]
fn unsub_without_args_is_parse_error() {
    Diff::new("unsub_without_args_is_parse_error")
        .send(QUIET_CONNECT)
        .send("UNSUB\r\n")
        .wait_close()
        .expect("-ERR 'Unknown Protocol Operation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn wrong_arg_counts_close_silently() {
    for (i, line) in [
        "SUB a b c d\r\n",
        "SUB a\r\n",
        "PUB a b c 1\r\n",
        "PUB a\r\n",
        "UNSUB 1 2 3\r\n",
    ]
    .iter()
    .enumerate()
    {
        Diff::new(&format!("wrong_arg_counts_close_silently[{i}]"))
            .send(QUIET_CONNECT)
            .send(line)
            .wait_close()
            .expect_not("-ERR")
            .expect_closed(0)
            .run();
    }
}

#[test]
fn bad_size_closes_silently() {
    for (i, line) in [
        "PUB foo abc\r\n",
        "PUB foo -1\r\n",
        "PUB foo r 99999999999999999999999\r\n",
    ]
    .iter()
    .enumerate()
    {
        Diff::new(&format!("bad_size_closes_silently[{i}]"))
            .send(QUIET_CONNECT)
            .send(line)
            .wait_close()
            .expect_closed(0)
            .run();
    }
}

#[test]
fn payload_longer_than_declared() {
    Diff::new("payload_longer_than_declared")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo 2\r\nhello\r\n")
        .wait_close()
        .expect("-ERR 'Unknown Protocol Operation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn payload_terminated_by_lf_only() {
    Diff::new("payload_terminated_by_lf_only")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo 2\r\nhi\nPING\r\n")
        .wait_close()
        .expect("-ERR 'Unknown Protocol Operation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn max_payload_exceeded() {
    Diff::new("max_payload_exceeded")
        .send(QUIET_CONNECT)
        .send("PUB foo 1048577\r\n")
        .wait_close()
        .expect("-ERR 'Maximum Payload Violation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn max_payload_exact_is_ok() {
    let mut data = Vec::from(QUIET_CONNECT.as_bytes());
    data.extend_from_slice(b"SUB big 1\r\nPUB big 1048576\r\n");
    data.extend((0..1_048_576u32).map(|i| b'a' + (i % 26) as u8));
    data.extend_from_slice(b"\r\n");
    Diff::new("max_payload_exact_is_ok")
        .send(data)
        .sync()
        .expect("MSG big 1 1048576\r\n")
        .expect_open(0)
        .run();
}

#[test]
fn control_line_too_long() {
    let line = format!("SUB {} 1\r\n", "a".repeat(5000));
    Diff::new("control_line_too_long")
        .send(QUIET_CONNECT)
        .send(line)
        .wait_close()
        .expect("-ERR 'maximum control line exceeded'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn control_line_at_limit() {
    // Argument part "<subject> 1" is exactly 4096 bytes: accepted; one more byte: rejected.
    let ok = format!("SUB {} 1\r\n", "a".repeat(4094));
    let too_long = format!("SUB {} 2\r\n", "b".repeat(4095));
    Diff::new("control_line_at_limit")
        .send(QUIET_CONNECT)
        .send(ok)
        .sync()
        .send(too_long)
        .wait_close()
        .expect("PONG\r\n")
        .expect("-ERR 'maximum control line exceeded'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn control_line_too_long_without_line_end() {
    // No line end at all: the limit is enforced on the partial line.
    Diff::new("control_line_too_long_without_line_end")
        .send(QUIET_CONNECT)
        .send(format!("PUB {}", "x".repeat(6000)))
        .wait_close()
        .expect("-ERR 'maximum control line exceeded'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn protocol_2_rejected() {
    Diff::new("protocol_2_rejected")
        .send("CONNECT {\"verbose\":false,\"protocol\":2}\r\n")
        .wait_close()
        .expect("-ERR 'invalid client protocol'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn malformed_connect_json_closes_silently() {
    Diff::new("malformed_connect_json_closes_silently")
        .send("CONNECT {\"verbose\":fals\r\n")
        .wait_close()
        .expect_not("-ERR")
        .expect_closed(0)
        .run();
}

#[test]
fn connect_legacy_account_field_rejected() {
    Diff::new("connect_legacy_account_field_rejected")
        .send("CONNECT {\"verbose\":false,\"account\":\"x\"}\r\n")
        .wait_close()
        .expect("-ERR 'Authorization Violation'\r\n")
        .expect_closed(0)
        .run();
}

#[test]
fn sid_is_opaque_string() {
    Diff::new("sid_is_opaque_string")
        .send(QUIET_CONNECT)
        .send("SUB foo abc-XYZ.9\r\nSUB bar grp s_2\r\nPUB foo 1\r\na\r\nPUB bar 1\r\nb\r\nUNSUB abc-XYZ.9\r\nPUB foo 1\r\nc\r\n")
        .sync()
        .expect("MSG foo abc-XYZ.9 1\r\na\r\n")
        .expect("MSG bar s_2 1\r\nb\r\n")
        .expect_count("MSG", 2)
        .run();
}

#[test]
fn reply_subject_not_validated() {
    Diff::new("reply_subject_not_validated")
        .send(QUIET_CONNECT)
        .send("SUB foo 1\r\nPUB foo r.* 1\r\nx\r\n")
        .sync()
        .expect("MSG foo 1 r.* 1\r\nx\r\n")
        .expect_not("-ERR")
        .run();
}
