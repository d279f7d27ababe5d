//! Grammar of the nats conf format, on top of `lexer.rs`: key/value pairs, maps, arrays,
//! `$VARIABLE` resolution and `include` files. Produces a [`Map`] whose values keep their
//! positions; knows nothing about which keys mean what (that is `map.rs`).
//!
//! Errors do not stop parsing: the rest of the offending line is skipped and parsing
//! resumes with the next key, so one run reports every syntax error it can.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{classify_bare, Bare, Scanner};
use super::value::{Kind, Map, Value};
use super::{ConfError, Pos};

/// Nested includes and variable-through-env expansions stop here (cycles).
const MAX_DEPTH: usize = 16;

/// Parses conf text. `file` names it in positions and anchors relative includes.
/// `$VARIABLES` not defined in the file come from the process environment.
pub fn parse_str(text: &str, file: &Path) -> Result<Map, Vec<ConfError>> {
    parse_str_with_env(text, file, None)
}

/// [`parse_str`] with an explicit environment for `$VARIABLE` lookups (`None` = the
/// process environment), so tests and `load_with_env` need not touch process state.
pub fn parse_str_with_env(
    text: &str,
    file: &Path,
    env: Option<&HashMap<String, String>>,
) -> Result<Map, Vec<ConfError>> {
    let (root, errors) = parse_partial(text, file, env);
    if errors.is_empty() {
        Ok(root)
    } else {
        Err(errors)
    }
}

/// Parses as much as it can: the tree of every pair that parsed, plus all syntax errors.
/// Loading maps the partial tree too, so key errors are reported beside syntax errors.
pub fn parse_partial(
    text: &str,
    file: &Path,
    env: Option<&HashMap<String, String>>,
) -> (Map, Vec<ConfError>) {
    let mut p = Parser {
        stack: vec![Map::default()],
        errors: Vec::new(),
        depth: 0,
        env,
    };
    p.parse_text(text, file);
    let root = p.stack.pop().unwrap_or_default();
    (root, p.errors)
}

/// Reads and parses a conf file.
pub fn parse_file(path: &Path) -> Result<Map, Vec<ConfError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfError::bare(format!(
            "error opening config file '{}': {e}",
            path.display()
        ))]
    })?;
    parse_str(&text, path)
}

struct Parser<'e> {
    /// Maps under construction, innermost last; `$VAR` lookups walk it from the top.
    stack: Vec<Map>,
    errors: Vec<ConfError>,
    depth: usize,
    env: Option<&'e HashMap<String, String>>,
}

/// Where a body is being parsed: the top level of a file, or inside `{ }`.
#[derive(Clone, Copy, PartialEq)]
enum BodyKind {
    Top,
    Map,
}

impl Parser<'_> {
    fn parse_text(&mut self, text: &str, file: &Path) {
        let name: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
        let mut sc = Scanner::new(text, name);
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        self.body(&mut sc, BodyKind::Top, &base);
    }

    fn current(&mut self) -> &mut Map {
        if self.stack.is_empty() {
            self.stack.push(Map::default());
        }
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    /// Key/value pairs until EOF (top) or the closing `}` (map). Returns false when a map
    /// hit EOF unclosed.
    fn body(&mut self, sc: &mut Scanner<'_>, kind: BodyKind, base: &Path) -> bool {
        loop {
            // Separators between pairs. At the top level nats also tolerates braces
            // around the whole file.
            loop {
                sc.skip_ws_comments();
                match sc.peek() {
                    Some(';' | ',') => {
                        sc.bump();
                    }
                    Some('{' | '}') if kind == BodyKind::Top => {
                        sc.bump();
                    }
                    _ => break,
                }
            }
            match sc.peek() {
                None => {
                    if kind == BodyKind::Map {
                        self.errors
                            .push(sc.error("Unexpected EOF: map not closed by '}'"));
                        return false;
                    }
                    return true;
                }
                Some('}') => {
                    sc.bump();
                    return true;
                }
                _ => {}
            }
            if let Err(e) = self.pair(sc, kind, base) {
                self.errors.push(e);
                sc.skip_to_eol();
            }
        }
    }

    /// One `key [:|=] value` (or `include path`), then its terminator.
    fn pair(&mut self, sc: &mut Scanner<'_>, kind: BodyKind, base: &Path) -> Result<(), ConfError> {
        let key_pos = sc.here();
        let (key, quoted) = sc.read_key()?;
        if key.is_empty() {
            let c = sc.peek().map(String::from).unwrap_or_default();
            return Err(ConfError::at(
                &key_pos,
                format!("Unexpected '{c}', expected a key"),
            ));
        }
        if !quoted && key.eq_ignore_ascii_case("include") && matches!(sc.peek(), Some(' ' | '\t')) {
            sc.skip_inline_ws();
            let path = sc.read_include_path()?;
            self.include(&path, base, &key_pos);
            return self.value_end(sc, kind);
        }
        // nats allows the value after blank space, even a newline, when there is no
        // separator (`cluster\n{`); after `:`/`=` the value must be on the same line.
        loop {
            match sc.peek() {
                Some(c) if c.is_whitespace() => {
                    sc.bump();
                }
                _ => break,
            }
        }
        if matches!(sc.peek(), Some(':' | '=')) {
            sc.bump();
            sc.skip_inline_ws();
        }
        let value = self.value(sc, base)?;
        self.current().insert(key, key_pos, value);
        self.value_end(sc, kind)
    }

    /// After a value: blanks, then a comment, newline, `;`, `,`, `}` or EOF.
    fn value_end(&mut self, sc: &mut Scanner<'_>, kind: BodyKind) -> Result<(), ConfError> {
        sc.skip_inline_ws();
        if sc.at_comment() {
            sc.skip_to_eol();
            return Ok(());
        }
        match sc.peek() {
            None | Some('\n' | '\r' | ';' | ',' | '}') => Ok(()),
            Some(c) => Err(sc.error(match kind {
                BodyKind::Top => format!(
                    "Expected a top-level value to end with a new line, comment or EOF, but got '{c}' instead."
                ),
                BodyKind::Map => format!(
                    "Expected a map value terminator ',' or a map terminator '}}', but got '{c}' instead."
                ),
            })),
        }
    }

    fn value(&mut self, sc: &mut Scanner<'_>, base: &Path) -> Result<Value, ConfError> {
        let pos = sc.here();
        let kind = match sc.peek() {
            None => return Err(sc.error("Unexpected EOF: expected a value")),
            Some('\n' | '\r') => return Err(sc.error("Expected value but found new line")),
            Some('[') => Kind::Array(self.array(sc, base)?),
            Some('{') => {
                sc.bump();
                self.stack.push(Map::default());
                let closed = self.body(sc, BodyKind::Map, base);
                let m = self.stack.pop().unwrap_or_default();
                if !closed {
                    return Err(ConfError::at(&pos, "map starting here is not closed"));
                }
                Kind::Map(m)
            }
            Some('"') => Kind::Str(sc.read_dq_string()?),
            Some('\'') => Kind::Str(sc.read_sq_string()?),
            Some('(') => Kind::Str(sc.read_block()?),
            Some('.') => return Err(sc.error("Floats must start with a digit")),
            Some(_) => {
                let (word, escaped) = sc.read_bare()?;
                if word.is_empty() {
                    let c = sc.peek().map(String::from).unwrap_or_default();
                    return Err(sc.error(format!("Unexpected '{c}', expected a value")));
                }
                if escaped {
                    Kind::Str(word)
                } else {
                    match classify_bare(&word).map_err(|m| ConfError::at(&pos, m))? {
                        Bare::Str(s) => Kind::Str(s),
                        Bare::Int(i) => Kind::Int(i),
                        Bare::Float(f) => Kind::Float(f),
                        Bare::Bool(b) => Kind::Bool(b),
                        Bare::Datetime(d) => Kind::Datetime(d),
                        Bare::Variable(name) => return self.variable(&name, &pos),
                    }
                }
            }
        };
        Ok(Value::new(kind, pos))
    }

    /// `[ v, v \n v ]`: commas or newlines between values, comments allowed anywhere.
    fn array(&mut self, sc: &mut Scanner<'_>, base: &Path) -> Result<Vec<Value>, ConfError> {
        let start = sc.here();
        sc.bump(); // '['
        let mut items = Vec::new();
        loop {
            sc.skip_ws_comments();
            match sc.peek() {
                None => {
                    return Err(ConfError::at(
                        &start,
                        "Unexpected EOF: array not closed by ']'",
                    ))
                }
                Some(']') => {
                    sc.bump();
                    return Ok(items);
                }
                Some(',') => return Err(sc.error("Unexpected array value terminator ','.")),
                _ => {}
            }
            items.push(self.value(sc, base)?);
            sc.skip_inline_ws();
            if sc.at_comment() {
                sc.skip_to_eol();
            }
            match sc.peek() {
                Some(',' | '\n' | '\r') => {
                    sc.bump();
                }
                Some(']') => {
                    sc.bump();
                    return Ok(items);
                }
                None => return Err(ConfError::at(&start, "Unexpected EOF: array not closed by ']'")),
                Some(c) => {
                    return Err(sc.error(format!(
                        "Expected an array value terminator ',' or an array terminator ']', but got '{c}' instead."
                    )))
                }
            }
        }
    }

    /// `$NAME`: enclosing maps innermost first, then the environment (whose value is
    /// parsed like a conf value, so `PORT=4222` gives an integer).
    fn variable(&mut self, name: &str, pos: &Pos) -> Result<Value, ConfError> {
        for m in self.stack.iter_mut().rev() {
            if let Some(mut v) = m.lookup_variable(name) {
                v.pos = pos.clone();
                return Ok(v);
            }
        }
        let from_env = match self.env {
            Some(m) => m.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        if let Some(text) = from_env {
            return Ok(self.env_value(name, &text, pos));
        }
        Err(ConfError::at(
            pos,
            format!(
                "variable reference for '{name}' on line {} can not be found",
                pos.line
            ),
        ))
    }

    fn env_value(&mut self, name: &str, text: &str, pos: &Pos) -> Value {
        let as_string = Value::new(Kind::Str(text.to_string()), pos.clone());
        if self.depth >= MAX_DEPTH {
            return as_string;
        }
        self.depth += 1;
        let file: Arc<str> = Arc::from(format!("<env {name}>").as_str());
        let mut sc = Scanner::new(text, file);
        sc.skip_inline_ws();
        let saved = self.errors.len();
        let parsed = self.value(&mut sc, Path::new(""));
        self.depth -= 1;
        sc.skip_inline_ws();
        // Anything that is not exactly one value stays the literal string.
        self.errors.truncate(saved);
        match parsed {
            Ok(mut v) if sc.at_eof() => {
                v.pos = pos.clone();
                v
            }
            _ => as_string,
        }
    }

    /// Parses another file into the current map, as if its text were written here.
    fn include(&mut self, path: &str, base: &Path, pos: &Pos) {
        let full: PathBuf = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        if self.depth >= MAX_DEPTH {
            self.errors.push(ConfError::at(
                pos,
                format!("include '{path}' nested too deeply (include cycle?)"),
            ));
            return;
        }
        match std::fs::read_to_string(&full) {
            Ok(text) => {
                self.depth += 1;
                self.parse_text(&text, &full);
                self.depth -= 1;
            }
            Err(e) => self.errors.push(ConfError::at(
                pos,
                format!("error parsing include file '{path}', {e}"),
            )),
        }
    }
}
