//! Subjects: validation and the brute-force wildcard matcher (temporary minimal version).

pub fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|b| *b == b'.')
}

pub fn is_valid_subject(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    let n = tokens(s).count();
    for (i, t) in tokens(s).enumerate() {
        if t.is_empty()
            || t.iter()
                .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0c))
        {
            return false;
        }
        if t == b">" && i != n - 1 {
            return false;
        }
    }
    true
}

pub fn subject_has_wildcard(s: &[u8]) -> bool {
    tokens(s).any(|t| t == b"*" || t == b">")
}

pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    is_valid_subject(s) && !subject_has_wildcard(s)
}

pub fn is_valid_publish_subject(s: &[u8]) -> bool {
    is_valid_literal_subject(s)
}

pub fn is_valid_queue_name(q: &[u8]) -> bool {
    !q.is_empty() && !q.iter().any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = tokens(pattern);
    let mut s = tokens(subject);
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}
