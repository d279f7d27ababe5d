//! The harness's own frame splitting and rendering.
use super::*;

#[test]
fn frames_split_and_payloads() {
    let mut buf = b"MSG foo 1 5\r\nhel".to_vec();
    assert!(take_frames(&mut buf).is_empty());
    buf.extend_from_slice(b"lo\r\nPONG\r\n+OK\r\nPI");
    let f = take_frames(&mut buf);
    assert_eq!(f.len(), 3);
    assert_eq!(f[0].body(), b"hello");
    assert_eq!(f[1].op, "PONG");
    assert_eq!(buf, b"PI");
}

#[test]
fn ping_counting_skips_payloads() {
    let sent = b"CONNECT {}\r\nPUB a 6\r\nPING\r\n\r\nping\nPUB b 0\r\n\r\nPING foo\r\n";
    assert_eq!(count_client_pings(sent), 2);
}

#[test]
fn connect_protocol_detection() {
    assert_eq!(sent_protocol(b"PING\r\n"), 0);
    assert_eq!(sent_protocol(b"connect {\"protocol\":1}\r\nPING\r\n"), 1);
    assert_eq!(sent_protocol(b"CONNECT{\"verbose\":false}\n"), 0);
}

#[test]
fn info_masking() {
    let line = br#"INFO {"server_id":"NABC","server_name":"x","version":"2.15.1","proto":1,"go":"go1","host":"127.0.0.1","port":4222,"headers":true,"max_payload":1048576,"client_id":5,"client_ip":"127.0.0.1","xkey":"X","api_lvl":5} "#;
    let mut l = line.to_vec();
    l.extend_from_slice(b"\r\n");
    let r = render_info(&l, 4222);
    assert_eq!(
        r,
        r#"INFO {"client_id":"<id>","client_ip":"127.0.0.1","go":"<str>","headers":true,"host":"127.0.0.1","max_payload":1048576,"port":"<port>","proto":1,"server_id":"<str>","server_name":"<str>","version":"<semver>"} \r\n"#
    );
    // A wrong port stays raw so the difference shows.
    assert!(render_info(&l, 1).contains(r#""port":4222"#));
}

#[test]
fn diff_marks_changes() {
    let d = line_diff("a\nb\nc\n", "a\nx\nc\n");
    assert_eq!(d, "  a\n- b\n+ x\n  c\n");
}
