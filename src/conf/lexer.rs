//! Character-level scanning of the nats conf format: keys, quoted/bare/block strings,
//! comments, and classification of bare words (numbers with size suffixes, booleans,
//! variables, datetimes, IP-like strings).
//!
//! The grammar (what may follow what) lives in `parser.rs`; this module only knows how to
//! read one token at the cursor, and tracks line/column for every token it returns.

use std::sync::Arc;

use super::{ConfError, Pos};
use crate::config::size;

/// A cursor over one file's text.
pub struct Scanner<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    off: usize,
    line: u32,
    col: u32,
    file: Arc<str>,
}

/// What a bare (unquoted) word turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Bare {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    /// `$NAME`, without the `$`.
    Variable(String),
}

/// Characters that end a bare value (nats lexString's terminators).
pub fn ends_bare_value(c: char) -> bool {
    matches!(c, '\n' | '\r' | ';' | ',' | ']' | '}' | ' ' | '\t')
}

impl<'a> Scanner<'a> {
    pub fn new(src: &'a str, file: Arc<str>) -> Self {
        // A UTF-8 byte-order mark is not part of the first key.
        let off = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Scanner {
            src,
            off,
            line: 1,
            col: 1,
            file,
        }
    }

    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    pub fn here(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    pub fn error(&self, msg: impl Into<String>) -> ConfError {
        ConfError::at(&self.here(), msg)
    }

    pub fn peek(&self) -> Option<char> {
        self.src[self.off..].chars().next()
    }

    /// The character after the next one.
    pub fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.off..].chars();
        it.next();
        it.next()
    }

    pub fn at_eof(&self) -> bool {
        self.off >= self.src.len()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.off += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Skips spaces and tabs (not newlines).
    pub fn skip_inline_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// True at `#` or `//`.
    pub fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek2() == Some('/'),
            _ => false,
        }
    }

    pub fn at_newline(&self) -> bool {
        matches!(self.peek(), Some('\n' | '\r'))
    }

    /// Consumes everything up to (not including) the end of the line.
    pub fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.bump();
        }
    }

    /// Skips whitespace, newlines and comments.
    pub fn skip_ws_comments(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_to_eol(),
                _ => return,
            }
        }
    }

    /// Reads a key at the cursor: quoted ('..' or "..", no escapes, as nats) or bare up to
    /// whitespace, `:`, `=`, `{` or `[`. Returns the key and whether it was quoted.
    pub fn read_key(&mut self) -> Result<(String, bool), ConfError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let start = self.here();
                self.bump();
                let mut key = String::new();
                loop {
                    match self.bump() {
                        Some(c) if c == q => return Ok((key, true)),
                        Some(c) => key.push(c),
                        None => return Err(ConfError::at(&start, "unterminated quoted key")),
                    }
                }
            }
            Some(c @ (':' | '=')) => Err(self.error(format!("Unexpected key separator '{c}'"))),
            _ => {
                let mut key = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || matches!(c, ':' | '=' | '{' | '[') {
                        break;
                    }
                    key.push(c);
                    self.bump();
                }
                Ok((key, false))
            }
        }
    }

    /// `"..."` with escapes `\t \n \r \" \\ \xHH`. The cursor is on the opening quote.
    pub fn read_dq_string(&mut self) -> Result<String, ConfError> {
        let start = self.here();
        self.bump();
        let mut out = String::new();
        let mut bytes: Vec<u8> = Vec::new(); // pending \xHH bytes, which may form UTF-8
        loop {
            let Some(c) = self.bump() else {
                return Err(ConfError::at(&start, "Unexpected EOF: unterminated string"));
            };
            if c != '\\' {
                flush_bytes(&mut bytes, &mut out);
            }
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let esc_pos = self.here();
                    match self.bump() {
                        Some('t') => out.push('\t'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('x') => {
                            let hi = self.bump();
                            let lo = self.bump();
                            let hex: String = [hi, lo].iter().flatten().collect();
                            match u8::from_str_radix(&hex, 16) {
                                Ok(b) if hex.len() == 2 => {
                                    bytes.push(b);
                                    continue;
                                }
                                _ => {
                                    return Err(ConfError::at(
                                        &esc_pos,
                                        format!(
                                            "Expected two hexadecimal digits after '\\x', but got '{hex}'"
                                        ),
                                    ))
                                }
                            }
                        }
                        other => {
                            let shown = other.map(String::from).unwrap_or_default();
                            return Err(ConfError::at(
                                &esc_pos,
                                format!(
                                    "Invalid escape character '{shown}'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\."
                                ),
                            ));
                        }
                    }
                    flush_bytes(&mut bytes, &mut out);
                }
                c => out.push(c),
            }
        }
    }

    /// `'...'`: no escapes at all. The cursor is on the opening quote.
    pub fn read_sq_string(&mut self) -> Result<String, ConfError> {
        let start = self.here();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => return Err(ConfError::at(&start, "Unexpected EOF: unterminated string")),
            }
        }
    }

    /// Block string `( ... )`: raw text up to a line holding only `)`. As in nats-server,
    /// the value is everything between `(` and the newline before that line.
    pub fn read_block(&mut self) -> Result<String, ConfError> {
        let start = self.here();
        self.bump(); // '('
        let body_start = self.off;
        loop {
            // At a line start: is this line just `)`?
            if self.at_eof() {
                return Err(ConfError::at(
                    &start,
                    "Unexpected EOF: block string not closed by ')' on its own line",
                ));
            }
            let c = self.bump();
            if c == Some('\n') {
                let line_end = self.src[self.off..]
                    .find('\n')
                    .map_or(self.src.len(), |i| self.off + i);
                let line = &self.src[self.off..line_end];
                if line.trim() == ")" {
                    let body_end = self.off - 1; // the '\n' before `)`
                    let body = self.src[body_start..body_end].trim_end_matches('\r');
                    let body = body.to_string();
                    while self.off < line_end {
                        self.bump();
                    }
                    return Ok(body);
                }
            }
        }
    }

    /// A bare word up to a value terminator. Backslash escapes work as in double quotes
    /// (nats-server allows them); the bool/variable/number meaning is lost when escaped.
    pub fn read_bare(&mut self) -> Result<(String, bool), ConfError> {
        let mut out = String::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if ends_bare_value(c) {
                break;
            }
            if c == '\\' {
                let esc_pos = self.here();
                self.bump();
                escaped = true;
                match self.bump() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    other => {
                        let shown = other.map(String::from).unwrap_or_default();
                        return Err(ConfError::at(
                            &esc_pos,
                            format!("Invalid escape character '{shown}' in unquoted string"),
                        ));
                    }
                }
                continue;
            }
            out.push(c);
            self.bump();
        }
        Ok((out, escaped))
    }

    /// An include path: quoted, or bare up to whitespace, `;` or `}`.
    pub fn read_include_path(&mut self) -> Result<String, ConfError> {
        match self.peek() {
            Some('"') | Some('\'') => self.read_sq_or_raw_dq(),
            None | Some('\n' | '\r') => {
                Err(self.error("Expected include value but found new line"))
            }
            Some(c @ ('[' | '{' | '(')) => Err(self.error(format!(
                "Expected include value but found start of {}",
                match c {
                    '[' => "an array",
                    '{' => "a map",
                    _ => "a block",
                }
            ))),
            _ => {
                let mut out = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == ';' || c == '}' {
                        break;
                    }
                    out.push(c);
                    self.bump();
                }
                Ok(out)
            }
        }
    }

    /// Include paths are not unescaped, whichever quote is used (as nats-server).
    fn read_sq_or_raw_dq(&mut self) -> Result<String, ConfError> {
        let start = self.here();
        let Some(q) = self.bump() else {
            return Err(self.error("Unexpected EOF"));
        };
        let mut out = String::new();
        loop {
            match self.bump() {
                Some(c) if c == q => return Ok(out),
                Some(c) => out.push(c),
                None => return Err(ConfError::at(&start, "Unexpected EOF: unterminated string")),
            }
        }
    }
}

fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) {
    if !bytes.is_empty() {
        out.push_str(&String::from_utf8_lossy(bytes));
        bytes.clear();
    }
}

/// Decides what an unquoted word means. Numbers may carry a size suffix (`2MB`); a word
/// that starts like a number but is not one (`10s`, `127.0.0.1:4222`) stays a string.
pub fn classify_bare(word: &str) -> Result<Bare, String> {
    let lower = word.to_ascii_lowercase();
    match lower.as_str() {
        "true" | "yes" | "on" => return Ok(Bare::Bool(true)),
        "false" | "no" | "off" => return Ok(Bare::Bool(false)),
        _ => {}
    }
    if let Some(name) = word.strip_prefix('$') {
        return Ok(Bare::Variable(name.to_string()));
    }
    let unsigned = word.strip_prefix('-').unwrap_or(word);
    let starts_numeric = unsigned.chars().next().is_some_and(|c| c.is_ascii_digit());
    if !starts_numeric {
        return Ok(Bare::Str(word.to_string()));
    }
    let digits_end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let rest = &unsigned[digits_end..];
    if rest.is_empty() || size::suffix_multiplier(rest).is_some() {
        // Integer, with or without a size suffix. Overflow is an error, not a string.
        return size::parse_size(word)
            .map(Bare::Int)
            .map_err(|_| format!("integer \"{word}\" is out of range"));
    }
    if is_float(unsigned) {
        if let Ok(f) = word.parse::<f64>() {
            return Ok(Bare::Float(f));
        }
    }
    if is_zulu_datetime(word) {
        return Ok(Bare::Datetime(word.to_string()));
    }
    Ok(Bare::Str(word.to_string()))
}

fn is_float(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    !int.is_empty()
        && !frac.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the only datetime form nats accepts.
fn is_zulu_datetime(s: &str) -> bool {
    const SHAPE: &[u8] = b"0000-00-00T00:00:00Z";
    s.len() == SHAPE.len()
        && s.bytes().zip(SHAPE).all(|(b, &f)| {
            if f == b'0' {
                b.is_ascii_digit()
            } else {
                b == f
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(s: &str) -> Scanner<'_> {
        Scanner::new(s, Arc::from("t.conf"))
    }

    #[test]
    fn classify_numbers_and_sizes() {
        assert_eq!(classify_bare("42"), Ok(Bare::Int(42)));
        assert_eq!(classify_bare("-1"), Ok(Bare::Int(-1)));
        assert_eq!(classify_bare("2MB"), Ok(Bare::Int(2 * 1024 * 1024)));
        assert_eq!(classify_bare("2m"), Ok(Bare::Int(2_000_000)));
        assert_eq!(classify_bare("1k"), Ok(Bare::Int(1000)));
        assert_eq!(classify_bare("1Ki"), Ok(Bare::Int(1024)));
        assert_eq!(classify_bare("1KiB"), Ok(Bare::Int(1024)));
        assert_eq!(classify_bare("3gb"), Ok(Bare::Int(3 << 30)));
        assert_eq!(classify_bare("1T"), Ok(Bare::Int(1_000_000_000_000)));
        assert_eq!(classify_bare("1tb"), Ok(Bare::Int(1 << 40)));
        assert_eq!(classify_bare("1pb"), Ok(Bare::Int(1 << 50)));
        assert_eq!(
            classify_bare("1e"),
            Ok(Bare::Int(1_000_000_000_000_000_000))
        );
        assert_eq!(classify_bare("1.5"), Ok(Bare::Float(1.5)));
        assert_eq!(classify_bare("-0.25"), Ok(Bare::Float(-0.25)));
        assert!(classify_bare("99999999999999999999").is_err());
        assert!(classify_bare("16eb").is_err());
    }

    #[test]
    fn classify_strings_bools_vars() {
        assert_eq!(classify_bare("10s"), Ok(Bare::Str("10s".into())));
        assert_eq!(classify_bare("4kx"), Ok(Bare::Str("4kx".into())));
        assert_eq!(
            classify_bare("127.0.0.1:4222"),
            Ok(Bare::Str("127.0.0.1:4222".into()))
        );
        assert_eq!(classify_bare("1.2.3"), Ok(Bare::Str("1.2.3".into())));
        assert_eq!(
            classify_bare("nats://a:1"),
            Ok(Bare::Str("nats://a:1".into()))
        );
        for t in ["true", "TRUE", "yes", "On"] {
            assert_eq!(classify_bare(t), Ok(Bare::Bool(true)), "{t}");
        }
        for f in ["false", "no", "OFF"] {
            assert_eq!(classify_bare(f), Ok(Bare::Bool(false)), "{f}");
        }
        assert_eq!(classify_bare("$FOO"), Ok(Bare::Variable("FOO".into())));
        assert_eq!(
            classify_bare("2020-01-02T03:04:05Z"),
            Ok(Bare::Datetime("2020-01-02T03:04:05Z".into()))
        );
    }

    #[test]
    fn dq_escapes() {
        let mut s = sc(r#""a\tb\n\"q\"\\ \x41\xc3\xa9" rest"#);
        assert_eq!(s.read_dq_string().unwrap(), "a\tb\n\"q\"\\ Aé");
        assert_eq!(s.peek(), Some(' '));
        let err = sc(r#""bad \q""#).read_dq_string().unwrap_err();
        assert!(
            err.message.contains("Invalid escape character 'q'"),
            "{err}"
        );
        let err = sc(r#""\xZZ""#).read_dq_string().unwrap_err();
        assert!(err.message.contains("hexadecimal"), "{err}");
        assert!(sc("\"open").read_dq_string().is_err());
    }

    #[test]
    fn sq_has_no_escapes() {
        assert_eq!(sc(r"'a\tb'").read_sq_string().unwrap(), r"a\tb");
    }

    #[test]
    fn block_string() {
        let mut s = sc("(\n  line one\n  line (two)\n)\nnext");
        assert_eq!(s.read_block().unwrap(), "\n  line one\n  line (two)");
        assert!(s.at_newline());
        assert!(sc("(\nno end)\n").read_block().is_err());
    }

    #[test]
    fn positions_track_lines_and_columns() {
        let mut s = sc("ab\n  cd");
        s.bump();
        assert_eq!((s.here().line, s.here().col), (1, 2));
        s.bump();
        s.bump();
        s.skip_inline_ws();
        assert_eq!((s.here().line, s.here().col), (2, 3));
        assert_eq!(s.here().to_string(), "t.conf:2:3");
    }

    #[test]
    fn keys() {
        assert_eq!(sc("port: 1").read_key().unwrap(), ("port".into(), false));
        assert_eq!(sc("port=1").read_key().unwrap(), ("port".into(), false));
        assert_eq!(
            sc("cluster{").read_key().unwrap(),
            ("cluster".into(), false)
        );
        assert_eq!(sc("\"a b\": 1").read_key().unwrap(), ("a b".into(), true));
        assert!(sc(": 1").read_key().is_err());
    }

    #[test]
    fn bare_words_stop_at_terminators() {
        let mut s = sc("alice, password");
        assert_eq!(s.read_bare().unwrap(), ("alice".into(), false));
        let mut s = sc("a]");
        assert_eq!(s.read_bare().unwrap(), ("a".into(), false));
        let mut s = sc("x#y z");
        assert_eq!(s.read_bare().unwrap(), ("x#y".into(), false));
    }
}
