//! Subject rules: validation, tokenizing and a brute-force wildcard matcher.
//!
//! Subjects are byte strings (the NATS protocol does not require UTF-8), split into
//! tokens on `.`. A token that is exactly `*` matches one token; a token that is exactly
//! `>` (allowed only as the last token) matches one or more tokens. `foo*` or `a>b` are
//! plain literal tokens. The rules mirror nats-server's `sublist.go` (see
//! `docs/nats-reference.md` §2.1).
//!
//! Pure and allocation-free: no locks, no I/O, no runtime. [`matches()`] is deliberately
//! the obvious token walk; it is the oracle the sublist trie is tested and fuzzed against,
//! so keep it simple rather than fast.
//!
//! Place in the PUB flow: `client::process_sub` validates with [`is_valid_subject`] /
//! [`is_valid_queue_name`], `process_pub` with [`is_valid_publish_subject`] when pedantic;
//! the sublist matches.

/// Token separator.
pub const TSEP: u8 = b'.';
/// Partial wildcard: matches exactly one token.
pub const PWC: u8 = b'*';
/// Full wildcard: matches one or more trailing tokens.
pub const FWC: u8 = b'>';

/// Whitespace that makes a subject or queue name invalid. Same set as nats-server
/// (`"\t\n\f\r "`); the protocol splits arguments on these, so they can never appear in a
/// subject that came off the wire, but API callers (monitoring `test=`, config) can pass them.
#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// Iterates the `.`-separated tokens of `s`.
///
/// No validation: an invalid subject yields empty tokens (`"a..b"` gives `a`, ``, `b`; an
/// empty subject gives one empty token).
#[inline]
pub fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == TSEP)
}

/// A valid subscribe subject: non-empty tokens, no whitespace, `>` only as the last token.
/// Wildcards are allowed.
pub fn is_valid_subject(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in tokens(s) {
        // A token after `>` (`foo.>.bar`) or an empty token is invalid.
        if t.is_empty() || saw_fwc {
            return false;
        }
        if t.iter().any(|&b| is_ws(b)) {
            return false;
        }
        if t == [FWC] {
            saw_fwc = true;
        }
    }
    true
}

/// A valid subject without wildcard tokens (`foo*` is literal, `foo.*` is not).
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    is_valid_subject(s) && !subject_has_wildcard(s)
}

/// A valid publish subject. Same as [`is_valid_literal_subject`]; only enforced by the
/// server when the client is pedantic (nats-server routes a wildcard publish token-wise).
pub fn is_valid_publish_subject(s: &[u8]) -> bool {
    is_valid_literal_subject(s)
}

/// True when some token of `s` is exactly `*` or `>`. Does not validate `s`.
pub fn subject_has_wildcard(s: &[u8]) -> bool {
    // Scan for the wildcard bytes with memchr (subjects are usually literal, so the common
    // case is a single fast pass that finds nothing), then check the byte is a whole token.
    memchr::memchr2_iter(PWC, FWC, s)
        .any(|i| (i == 0 || s[i - 1] == TSEP) && (i + 1 == s.len() || s[i + 1] == TSEP))
}

/// A valid queue group name: non-empty, no whitespace. Dots and wildcard bytes are just
/// bytes in a queue name.
pub fn is_valid_queue_name(q: &[u8]) -> bool {
    !q.is_empty() && !q.iter().any(|&b| is_ws(b))
}

/// Does subscription `pattern` match the publish `subject`?
///
/// Token-wise: a pattern `*` matches any one token, a pattern `>` matches all remaining
/// tokens (at least one), anything else must be equal. Subject tokens are always taken
/// literally, so a non-literal publish subject `foo.*` is matched the way nats-server does
/// when not pedantic (it matches `foo.*`, `foo.>`, `*.*`, `>`). A subject with an empty
/// token never matches (nats-server's match returns no interest for it).
/// Whether every subject `sub` can match is also matched by `test` (nats-server's
/// subjectIsSubsetMatch): `a.b` and `a.*` are within `a.>`, `a.>` is not within `a.*`.
pub fn is_subset_match(sub: &[u8], test: &[u8]) -> bool {
    let sub: Vec<&[u8]> = tokens(sub).collect();
    let mut n = 0;
    for (i, t) in tokens(test).enumerate() {
        n = i + 1;
        let Some(st) = sub.get(i) else {
            return false;
        };
        match t {
            b">" => return true,
            b"*" if *st == b">" => return false,
            b"*" => {}
            _ if *st != t => return false,
            _ => {}
        }
    }
    n == sub.len()
}

pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    if subject.is_empty() || tokens(subject).any(|t| t.is_empty()) {
        return false;
    }
    let mut subj = tokens(subject);
    for p in tokens(pattern) {
        if p == [FWC] {
            return subj.next().is_some();
        }
        match subj.next() {
            None => return false,
            Some(s) => {
                if p != [PWC] && p != s {
                    return false;
                }
            }
        }
    }
    subj.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_subjects() {
        for s in [
            "foo",
            "foo.bar",
            "foo.*",
            "*",
            ">",
            "foo.>",
            "*.bar",
            "*.*.>",
            "foo*",
            "a>b",
            "foo.*bar",
            "$SYS.>",
            "_INBOX.abc.*",
            "ünï.cödé",
        ] {
            assert!(is_valid_subject(s.as_bytes()), "{s:?} should be valid");
        }
    }

    #[test]
    fn invalid_subjects() {
        for s in [
            "",
            ".",
            "..",
            "foo..bar",
            ".foo",
            "foo.",
            "foo.>.bar",
            ">.foo",
            ">.>",
            "foo bar",
            "foo\tbar",
            "foo\r",
            "\nfoo",
            "foo.\x0c",
            " ",
            "foo. .bar",
        ] {
            assert!(!is_valid_subject(s.as_bytes()), "{s:?} should be invalid");
        }
    }

    #[test]
    fn literal_and_publish_subjects() {
        for s in ["foo", "foo.bar", "foo*", "a>b", "foo.*bar.>>"] {
            assert!(is_valid_literal_subject(s.as_bytes()), "{s:?}");
            assert!(is_valid_publish_subject(s.as_bytes()), "{s:?}");
        }
        for s in ["foo.*", ">", "*", "foo.>", "*.bar", "", "foo..bar", "a b"] {
            assert!(!is_valid_literal_subject(s.as_bytes()), "{s:?}");
            assert!(!is_valid_publish_subject(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn wildcard_detection() {
        for s in ["*", ">", "foo.*", "foo.>", "*.foo", "a.*.b", "foo..*"] {
            assert!(subject_has_wildcard(s.as_bytes()), "{s:?}");
        }
        for s in ["", "foo", "foo*", "*foo", "a>b", "foo.*bar", "foo.>>", "**"] {
            assert!(!subject_has_wildcard(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn queue_names() {
        assert!(is_valid_queue_name(b"workers"));
        assert!(is_valid_queue_name(b"a.b*>"));
        assert!(!is_valid_queue_name(b""));
        assert!(!is_valid_queue_name(b"a b"));
        assert!(!is_valid_queue_name(b"a\tb"));
    }

    #[test]
    fn tokenizing() {
        let t: Vec<&[u8]> = tokens(b"a.bb.*").collect();
        assert_eq!(t, vec![&b"a"[..], b"bb", b"*"]);
        assert_eq!(tokens(b"").count(), 1);
        assert_eq!(tokens(b"a..b").count(), 3);
    }

    #[test]
    fn matching() {
        let yes = [
            ("foo", "foo"),
            ("foo.*", "foo.bar"),
            ("foo.>", "foo.bar"),
            ("foo.>", "foo.bar.baz"),
            (">", "foo"),
            (">", "foo.bar"),
            ("*", "foo"),
            ("*.bar", "foo.bar"),
            ("*.*", "a.b"),
            ("foo.*.baz", "foo.bar.baz"),
            // Non-literal publish subjects are matched token-wise.
            ("foo.*", "foo.*"),
            ("foo.>", "foo.>"),
            ("foo.*.bar", "foo.>.bar"),
        ];
        for (p, s) in yes {
            assert!(matches(p.as_bytes(), s.as_bytes()), "{p:?} ~ {s:?}");
        }
        let no = [
            ("foo", "bar"),
            ("foo", "foo.bar"),
            ("foo.bar", "foo"),
            ("foo.>", "foo"),
            ("foo.*", "foo"),
            ("foo.*", "foo.bar.baz"),
            ("*", "foo.bar"),
            ("*.bar", "foo.baz"),
            ("foo*", "foox"),
            ("foo.bar", "foo.*"),
            (">", ""),
            (">", "foo..bar"),
            ("*", ".foo"),
            ("foo.*", "foo."),
        ];
        for (p, s) in no {
            assert!(!matches(p.as_bytes(), s.as_bytes()), "{p:?} !~ {s:?}");
        }
    }
}
