//! Log lines compared with nats-server's: the protocol trace (`-V`) of the same
//! conversation, line for line once the address and cid are replaced by the order in
//! which each connection first appears.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cluster_tests::diff::{reference_bin, tern_bin, ServerProc, ServerSetup};

/// `[TRC]` lines from `log`, from the connection prefix on, with `ADDR - cid:N` of
/// each connection replaced by `cK` (K = order of first appearance).
fn trace_lines(log: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    log.lines()
        .filter_map(|l| l.split_once("[TRC] ").map(|(_, rest)| rest))
        .filter_map(|l| {
            let (addr, rest) = l.split_once(" - cid:")?;
            let (cid, rest) = rest.split_once(" - ")?;
            let who = format!("{addr}/{cid}");
            let k = match seen.iter().position(|s| *s == who) {
                Some(k) => k,
                None => {
                    seen.push(who);
                    seen.len() - 1
                }
            };
            Some(format!("c{k} - {rest}"))
        })
        .collect()
}

fn open(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut info = String::new();
    r.read_line(&mut info).expect("INFO");
    (s, r)
}

/// Writes `bytes` then reads lines until `PONG`.
fn until_pong(s: &mut TcpStream, r: &mut BufReader<TcpStream>, bytes: &[u8]) {
    s.write_all(bytes).expect("write");
    let mut line = String::new();
    while line != "PONG\r\n" {
        line.clear();
        assert!(r.read_line(&mut line).expect("read") > 0, "closed early");
    }
}

#[test]
fn trace_lines_match_nats_server() {
    let setup = ServerSetup {
        args: vec!["-V".into()],
        ..Default::default()
    };
    let mut traces = Vec::new();
    for bin in [reference_bin(), tern_bin()] {
        let server = ServerProc::start(&bin, &setup).expect("server starts");
        let (mut sub, mut sub_r) = open(server.port);
        until_pong(
            &mut sub,
            &mut sub_r,
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"name\":\"sub\",\"lang\":\"py\"}\r\nSUB foo q 1\r\nPING\r\n",
        );
        let (mut publ, mut pub_r) = open(server.port);
        until_pong(
            &mut publ,
            &mut pub_r,
            b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true,\"version\":\"1.2\",\"lang\":\"go\"}\r\nPUB foo 3\r\na\x01\"\r\nHPUB foo rep 12 14\r\nNATS/1.0\r\n\r\nhi\r\nSUB foo..x 2\r\nSUB bar 3\r\nUNSUB 3\r\nPING\r\n",
        );
        until_pong(&mut sub, &mut sub_r, b"PING\r\n");
        drop((sub, sub_r));
        // The subscriber's close removes its subscription (`<-> [DELSUB 1]`).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.log().contains("DELSUB 1]") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = server.log();
        assert!(
            !log.contains("[DBG]"),
            "-V alone logs no debug lines:\n{log}"
        );
        traces.push(trace_lines(&log));
    }
    for want in [
        r#"c0 - "py:sub" - ->> [MSG foo 1 3]"#,
        r#"c1 - "v1.2:go" - <<- MSG_PAYLOAD: ["a\x01\""]"#,
        r#"c0 - "py:sub" - ->> [HMSG foo 1 rep 12 14]"#,
        r#"c1 - "v1.2:go" - ->> [-ERR Invalid Subject]"#,
        r#"c1 - "v1.2:go" - <-> [DELSUB 3]"#,
        r#"c0 - "py:sub" - <-> [DELSUB 1]"#,
    ] {
        assert!(
            traces[0].iter().any(|l| l == want),
            "the reference traced no {want}: {:#?}",
            traces[0]
        );
    }
    assert_eq!(traces[0], traces[1], "left: nats-server, right: tern");
}
