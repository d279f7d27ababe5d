//! `tern healthcheck`: an HTTP/1.0 GET of the monitoring `/healthz` over a plain
//! `std::net::TcpStream`, so the scratch image can check itself without curl.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Splits `http://host[:port][/path]`.
fn parse(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/healthz"),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6.split_once(']').ok_or("bad IPv6 host")?;
        (h, p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port in {url}"))?,
        None => 80,
    };
    Ok((host.to_string(), port, path.to_string()))
}

/// GETs `url`; returns (status code, body).
pub fn get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    let (host, port, path) = parse(url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: tern-healthcheck\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut resp)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", head.lines().next()))?;
    Ok((status, body.to_string()))
}

/// Exit 0 when `url` answers 200 with `"status":"ok"`, 1 otherwise.
pub fn check(url: &str, timeout: Duration) -> i32 {
    match get(url, timeout) {
        Ok((200, body)) if body.replace(' ', "").contains("\"status\":\"ok\"") => {
            println!("{}", body.trim());
            0
        }
        Ok((code, body)) => {
            eprintln!("tern: unhealthy: HTTP {code} {}", body.trim());
            1
        }
        Err(e) => {
            eprintln!("tern: unhealthy: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse("http://127.0.0.1:8222/healthz"),
            Ok(("127.0.0.1".into(), 8222, "/healthz".into()))
        );
        assert_eq!(parse("http://h"), Ok(("h".into(), 80, "/healthz".into())));
        assert_eq!(parse("http://[::1]:1/x").unwrap().0, "::1");
        assert!(parse("https://h").is_err());
    }

    #[test]
    fn checks_a_fake_server() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for body in ["{\"status\":\"ok\"}", "{\"status\":\"unavailable\"}"] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let r = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(r.as_bytes()).unwrap();
            }
        });
        let url = format!("http://127.0.0.1:{port}/healthz");
        assert_eq!(check(&url, Duration::from_secs(2)), 0);
        assert_eq!(check(&url, Duration::from_secs(2)), 1);
        t.join().unwrap();
        assert_eq!(check(&url, Duration::from_millis(200)), 1);
    }
}
