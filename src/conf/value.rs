//! The parsed nats conf tree: values that remember where they were written.
//!
//! Maps keep insertion order and the key's original spelling; lookups from the mapping
//! layer are case-insensitive (nats keys are), variable lookups are exact (as nats-server's).

use super::Pos;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// ISO-8601 Zulu datetime, kept as written (no conf key uses one yet).
    Datetime(String),
    Array(Vec<Value>),
    Map(Map),
}

impl Kind {
    /// Short type name for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Str(_) => "string",
            Kind::Int(_) => "integer",
            Kind::Float(_) => "float",
            Kind::Bool(_) => "boolean",
            Kind::Datetime(_) => "datetime",
            Kind::Array(_) => "array",
            Kind::Map(_) => "map",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: Kind,
    pub pos: Pos,
}

impl Value {
    pub fn new(kind: Kind, pos: Pos) -> Self {
        Value { kind, pos }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Plain JSON form (positions dropped), for blocks kept raw such as permissions.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            Kind::Str(s) | Kind::Datetime(s) => J::String(s.clone()),
            Kind::Int(i) => J::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Kind::Bool(b) => J::Bool(*b),
            Kind::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Kind::Map(m) => J::Object(
                m.entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// One `key: value` in a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Value,
    /// Referenced as `$key` somewhere: then it is a variable, not an unknown field.
    pub used_as_variable: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    pub entries: Vec<Entry>,
}

impl Map {
    /// Later assignments win, as in nats-server; the entry moves to the new position.
    pub fn insert(&mut self, key: String, key_pos: Pos, value: Value) {
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            self.entries.remove(i);
        }
        self.entries.push(Entry {
            key,
            key_pos,
            value,
            used_as_variable: false,
        });
    }

    /// Exact-case lookup, used for `$VARIABLE` references; marks the entry as used.
    pub fn lookup_variable(&mut self, name: &str) -> Option<Value> {
        let e = self.entries.iter_mut().find(|e| e.key == name)?;
        e.used_as_variable = true;
        Some(e.value.clone())
    }

    /// Case-insensitive lookup (the last one wins when keys differ only by case).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| &e.value)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
