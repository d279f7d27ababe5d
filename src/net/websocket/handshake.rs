//! The HTTP/1.1 upgrade request of a websocket client: parsing (httparse), the checks
//! nats-server makes in the same order with the same reasons, origin policy, and the
//! 101 answer. Pure functions over bytes, so the fuzz target and the proptest reach
//! them without a socket.

use base64::Engine;

/// RFC 6455 GUID appended to the client's key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Upper bound of an upgrade request; nats-server (Go's http) allows 1 MiB of headers,
/// a browser sends well under 8 KiB.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Most headers one request may carry.
const MAX_HEADERS: usize = 64;

/// An upgrade request that passed the protocol checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    pub host: String,
    pub key: String,
    /// `Origin` (or `Sec-WebSocket-Origin`), when sent.
    pub origin: Option<String>,
    /// The client offered permessage-deflate.
    pub offers_deflate: bool,
}

/// Why an upgrade is refused: HTTP status and nats-server's reason (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: String,
}

impl Reject {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Reject {
            status,
            reason: reason.into(),
        }
    }

    /// The HTTP answer, shaped like Go's `http.Error` after nats-server set
    /// `Sec-Websocket-Version` (body = status text).
    pub fn response(&self) -> Vec<u8> {
        let text = status_text(self.status);
        format!(
            "HTTP/1.1 {} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\n\r\n{text}\n",
            self.status,
            text.len() + 1
        )
        .into_bytes()
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// Parses the request at the start of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((request, consumed)))` when complete and acceptable.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_REQUEST {
                return Err(Reject::new(431, "request headers too large"));
            }
            return Ok(None);
        }
        Err(e) => return Err(Reject::new(400, format!("invalid request: {e}"))),
    };
    if req.method != Some("GET") {
        return Err(Reject::new(405, "request method must be GET"));
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let tokens_contain = |name: &str, token: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| h.value.split(|b| *b == b','))
            .any(|t| {
                String::from_utf8_lossy(t)
                    .trim()
                    .eq_ignore_ascii_case(token)
            })
    };
    let host = header("Host").unwrap_or_default();
    if host.is_empty() {
        return Err(Reject::new(400, "'Host' missing in request"));
    }
    if !tokens_contain("Upgrade", "websocket") {
        return Err(Reject::new(400, "invalid value for header 'Upgrade'"));
    }
    if !tokens_contain("Connection", "Upgrade") {
        return Err(Reject::new(400, "invalid value for header 'Connection'"));
    }
    let key = header("Sec-WebSocket-Key").unwrap_or_default();
    if key.is_empty() {
        return Err(Reject::new(400, "key missing"));
    }
    if !tokens_contain("Sec-WebSocket-Version", "13") {
        return Err(Reject::new(400, "invalid version"));
    }
    let origin = header("Origin")
        .filter(|o| !o.is_empty())
        .or_else(|| header("Sec-WebSocket-Origin").filter(|o| !o.is_empty()));
    let offers_deflate = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
        .flat_map(|h| h.value.split(|b| *b == b','))
        .any(|ext| {
            let name = ext.split(|b| *b == b';').next().unwrap_or_default();
            String::from_utf8_lossy(name)
                .trim()
                .eq_ignore_ascii_case("permessage-deflate")
        });
    Ok(Some((
        Request {
            path: req.path.unwrap_or("/").to_string(),
            host,
            key,
            origin,
            offers_deflate,
        },
        consumed,
    )))
}

/// `Sec-WebSocket-Accept` for a client key.
pub fn accept_key(key: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.digest().bytes())
}

/// The 101 answer, header for header as nats-server writes it.
pub fn accept_response(key: &str, compress: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if compress {
        r.push_str("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// One entry of `allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedOrigin {
    scheme: String,
    host: String,
    port: String,
}

/// The origin policy: `same_origin` and `allowed_origins`, as nats-server checks them.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    same_origin: bool,
    allowed: Vec<AllowedOrigin>,
}

/// `scheme://host[:port]` split into (scheme, host lowercased, port with the scheme's
/// default), or `None` when it is not such a URL.
fn split_origin(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    if authority.is_empty() {
        return None;
    }
    let (host, port) = host_and_port(scheme == "https", authority);
    Some((scheme, host, port))
}

/// Go's `net.SplitHostPort` with nats-server's fallback: no port means 443 for TLS,
/// 80 otherwise. The host is lowercased.
fn host_and_port(tls: bool, hostport: &str) -> (String, String) {
    let default = if tls { "443" } else { "80" };
    if let Some(rest) = hostport.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').unwrap_or(default);
            return (h.to_ascii_lowercase(), port.to_string());
        }
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_ascii_lowercase(), p.to_string()),
        _ => (hostport.to_ascii_lowercase(), default.to_string()),
    }
}

impl OriginPolicy {
    pub fn new(same_origin: bool, allowed: &[String]) -> Result<Self, String> {
        let mut list = Vec::new();
        for o in allowed {
            let (scheme, host, port) = split_origin(o.trim())
                .ok_or_else(|| format!("unable to parse allowed origin: {o}"))?;
            list.push(AllowedOrigin { scheme, host, port });
        }
        Ok(OriginPolicy {
            same_origin,
            allowed: list,
        })
    }

    /// `Err(reason)` (answered 403) when the request's origin is not acceptable. A
    /// request without `Origin` is accepted, as nats-server does (non-browser clients).
    pub fn check(&self, req: &Request, tls: bool) -> Result<(), String> {
        if !self.same_origin && self.allowed.is_empty() {
            return Ok(());
        }
        let Some(origin) = &req.origin else {
            return Ok(());
        };
        let (scheme, oh, op) =
            split_origin(origin).ok_or_else(|| format!("invalid origin \"{origin}\""))?;
        if self.same_origin {
            let (rh, rp) = host_and_port(tls, &req.host);
            if oh != rh || op != rp {
                return Err("not same origin".into());
            }
        }
        if !self.allowed.is_empty()
            && !self
                .allowed
                .iter()
                .any(|a| a.host == oh && a.scheme == scheme && a.port == op)
        {
            return Err("not in the allowed list".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str) -> Vec<u8> {
        format!("GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").into_bytes()
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn parses_and_checks() {
        let b = req("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        let (r, n) = parse_request(&b).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert!(r.offers_deflate);
        assert_eq!(r.path, "/x");
        assert_eq!(parse_request(&b[..b.len() - 1]), Ok(None));
        let post = String::from_utf8(req("")).unwrap().replace("GET", "POST");
        assert_eq!(parse_request(post.as_bytes()).unwrap_err().status, 405);
        let nokey = String::from_utf8(req(""))
            .unwrap()
            .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert_eq!(
            parse_request(nokey.as_bytes()).unwrap_err().reason,
            "key missing"
        );
    }

    #[test]
    fn origins() {
        let (mut r, _) = parse_request(&req("")).unwrap().unwrap();
        let same = OriginPolicy::new(true, &[]).unwrap();
        assert!(same.check(&r, false).is_ok());
        r.origin = Some("http://127.0.0.1:8080".into());
        assert!(same.check(&r, false).is_ok());
        r.origin = Some("http://evil.com".into());
        assert_eq!(same.check(&r, false).unwrap_err(), "not same origin");
        let list = OriginPolicy::new(false, &["https://good.com".into()]).unwrap();
        r.origin = Some("https://good.com:443".into());
        assert!(list.check(&r, false).is_ok());
        r.origin = Some("http://good.com".into());
        assert_eq!(
            list.check(&r, false).unwrap_err(),
            "not in the allowed list"
        );
        assert!(Reject::new(403, "x")
            .response()
            .ends_with(b"\r\n\r\nForbidden\n"));
    }
}
