//! Syntax tests for the nats conf parser: every element of nats-reference §8.1, variables,
//! includes, and error positions. (Mapping and loading are in `tests_load.rs`.)

use std::collections::HashMap;
use std::path::Path;

use super::parser::parse_str_with_env;
use super::value::{Kind, Map, Value};
use super::ConfError;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str) -> Map {
    match parse_str_with_env(text, Path::new("t.conf"), Some(&env(&[]))) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e:?}"),
    }
}

fn parse_err(text: &str) -> Vec<ConfError> {
    match parse_str_with_env(text, Path::new("t.conf"), Some(&env(&[]))) {
        Ok(m) => panic!("expected errors, parsed {m:?}"),
        Err(e) => e,
    }
}

fn kind<'a>(m: &'a Map, key: &str) -> &'a Kind {
    match m.get(key) {
        Some(v) => &v.kind,
        None => panic!("no key {key} in {m:?}"),
    }
}

fn s(v: &str) -> Kind {
    Kind::Str(v.into())
}

#[test]
fn separators_colon_equals_space() {
    let m = parse("a: 1\nb = 2\nc 3\nd:4\ne=5\n");
    for (k, v) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)] {
        assert_eq!(kind(&m, k), &Kind::Int(v), "{k}");
    }
}

#[test]
fn terminators_semicolon_comma_and_comments() {
    let m = parse("a: 1; b: 2, c: x # trailing\n// full line\n# another\nd: \"y\" // after\n");
    assert_eq!(kind(&m, "a"), &Kind::Int(1));
    assert_eq!(kind(&m, "b"), &Kind::Int(2));
    assert_eq!(kind(&m, "c"), &s("x"));
    assert_eq!(kind(&m, "d"), &s("y"));
    assert_eq!(m.len(), 4);
}

#[test]
fn maps_nested_with_and_without_separator() {
    let m = parse(
        "outer {\n  inner: { k: v, n: 2 }\n  other = { x: true }\n}\nsame_line { a: 1; b: 2 }\n",
    );
    let outer = m.get("outer").and_then(Value::as_map).expect("outer map");
    let inner = outer
        .get("inner")
        .and_then(Value::as_map)
        .expect("inner map");
    assert_eq!(kind(inner, "k"), &s("v"));
    assert_eq!(kind(inner, "n"), &Kind::Int(2));
    let other = outer.get("other").and_then(Value::as_map).expect("other");
    assert_eq!(kind(other, "x"), &Kind::Bool(true));
    let same = m
        .get("same_line")
        .and_then(Value::as_map)
        .expect("same_line");
    assert_eq!(same.len(), 2);
}

#[test]
fn map_brace_on_next_line_and_quoted_keys() {
    let m = parse("cluster\n{\n  \"quoted key\": 1\n  'single': 2\n}\n");
    let c = m.get("cluster").and_then(Value::as_map).expect("cluster");
    assert_eq!(kind(c, "quoted key"), &Kind::Int(1));
    assert_eq!(kind(c, "single"), &Kind::Int(2));
}

#[test]
fn arrays_commas_newlines_mixed_types_comments() {
    let m = parse("a: [1, two, \"three\", 4.5, true]\nb: [\n  x # c1\n  y, // c2\n  z\n]\nc: []\nd: [[1,2],[3]]\ne: [a, b, ]\n");
    let Kind::Array(a) = kind(&m, "a") else {
        panic!()
    };
    let kinds: Vec<_> = a.iter().map(|v| v.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Kind::Int(1),
            s("two"),
            s("three"),
            Kind::Float(4.5),
            Kind::Bool(true)
        ]
    );
    let Kind::Array(b) = kind(&m, "b") else {
        panic!()
    };
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].kind, s("z"));
    assert_eq!(kind(&m, "c"), &Kind::Array(vec![]));
    let Kind::Array(d) = kind(&m, "d") else {
        panic!()
    };
    assert_eq!(d.len(), 2);
    let Kind::Array(e) = kind(&m, "e") else {
        panic!()
    };
    assert_eq!(e.len(), 2);
}

#[test]
fn array_of_maps() {
    let m = parse("users: [\n  {user: a, password: b}\n  {user: c, pass: d}\n]\n");
    let Kind::Array(u) = kind(&m, "users") else {
        panic!()
    };
    assert_eq!(u.len(), 2);
    assert_eq!(
        u[1].as_map()
            .and_then(|m| m.get("pass"))
            .map(|v| v.kind.clone()),
        Some(s("d"))
    );
}

#[test]
fn strings_bare_double_single_block() {
    let m = parse(
        "a: bare_word\nb: \"tab\\there \\\"q\\\" \\x41\"\nc: 'no \\t escapes'\nd: nats://h:4222\ne (\n  multi\n  line\n)\nf: \"$NOT_A_VAR\"\n",
    );
    assert_eq!(kind(&m, "a"), &s("bare_word"));
    assert_eq!(kind(&m, "b"), &s("tab\there \"q\" A"));
    assert_eq!(kind(&m, "c"), &s("no \\t escapes"));
    assert_eq!(kind(&m, "d"), &s("nats://h:4222"));
    assert_eq!(kind(&m, "e"), &s("\n  multi\n  line"));
    assert_eq!(kind(&m, "f"), &s("$NOT_A_VAR"));
}

#[test]
fn booleans_all_spellings() {
    let m = parse("a: true\nb: FALSE\nc: yes\nd: no\ne: on\nf: Off\ng: \"true\"\n");
    for (k, v) in [
        ("a", true),
        ("b", false),
        ("c", true),
        ("d", false),
        ("e", true),
        ("f", false),
    ] {
        assert_eq!(kind(&m, k), &Kind::Bool(v), "{k}");
    }
    assert_eq!(kind(&m, "g"), &s("true"), "quoted stays a string");
}

#[test]
fn integers_sizes_floats() {
    let m = parse(
        "a: 2MB\nb: 2m\nc: 1k\nd: 1kb\ne: 1KiB\nf: 3G\ng: 3gb\nh: 1t\ni: 1TB\nj: -1\nk: 1.5\nl: 10s\nm: 127.0.0.1:4222\nn: 2020-01-02T03:04:05Z\n",
    );
    let expect = [
        ("a", 2 * 1024 * 1024),
        ("b", 2_000_000),
        ("c", 1000),
        ("d", 1024),
        ("e", 1024),
        ("f", 3_000_000_000),
        ("g", 3 << 30),
        ("h", 1_000_000_000_000),
        ("i", 1 << 40),
        ("j", -1),
    ];
    for (k, v) in expect {
        assert_eq!(kind(&m, k), &Kind::Int(v), "{k}");
    }
    assert_eq!(kind(&m, "k"), &Kind::Float(1.5));
    assert_eq!(kind(&m, "l"), &s("10s"));
    assert_eq!(kind(&m, "m"), &s("127.0.0.1:4222"));
    assert_eq!(
        kind(&m, "n"),
        &Kind::Datetime("2020-01-02T03:04:05Z".into())
    );
}

#[test]
fn keys_keep_case_but_lookup_ignores_it() {
    let m = parse("Max_Payload: 5\n");
    assert_eq!(m.entries[0].key, "Max_Payload");
    assert_eq!(kind(&m, "max_payload"), &Kind::Int(5));
}

#[test]
fn later_assignment_wins() {
    let m = parse("port: 1\nport: 2\n");
    assert_eq!(m.len(), 1);
    assert_eq!(kind(&m, "port"), &Kind::Int(2));
}

#[test]
fn variables_scopes_and_env() {
    let text = "A = 1\nOUTER: outer\nblock {\n  INNER: inner\n  x: $A\n  y: $INNER\n  z: $OUTER\n}\nfrom_env: $SOME_ENV\nnum_env: $NUM_ENV\n";
    let e = env(&[("SOME_ENV", "hello world"), ("NUM_ENV", "4222")]);
    let m = parse_str_with_env(text, Path::new("t.conf"), Some(&e)).expect("parses");
    let b = m.get("block").and_then(Value::as_map).expect("block");
    assert_eq!(kind(b, "x"), &Kind::Int(1));
    assert_eq!(kind(b, "y"), &s("inner"));
    assert_eq!(kind(b, "z"), &s("outer"));
    assert_eq!(kind(&m, "from_env"), &s("hello world"));
    assert_eq!(
        kind(&m, "num_env"),
        &Kind::Int(4222),
        "env values parse like conf values"
    );
    // Referenced definitions are marked so the mapper does not call them unknown.
    let a = m.entries.iter().find(|e| e.key == "A").expect("A");
    assert!(a.used_as_variable);
    let inner = b.entries.iter().find(|e| e.key == "INNER").expect("INNER");
    assert!(inner.used_as_variable);
}

#[test]
fn variable_in_array_and_inner_scope_invisible_outside() {
    let e = env(&[]);
    let m = parse_str_with_env("V: v\nlist: [$V, w]\n", Path::new("t.conf"), Some(&e)).expect("ok");
    let Kind::Array(l) = kind(&m, "list") else {
        panic!()
    };
    assert_eq!(l[0].kind, s("v"));
    let errs =
        parse_str_with_env("b { I: 1 }\nx: $I\n", Path::new("t.conf"), Some(&e)).unwrap_err();
    assert_eq!(errs.len(), 1);
}

#[test]
fn unresolved_variable_error_names_line() {
    let errs = parse_err("port: 4222\n\nserver_name: $NOPE\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "t.conf:3:14: variable reference for 'NOPE' on line 3 can not be found"
    );
}

#[test]
fn self_referencing_env_does_not_loop() {
    let e = env(&[("LOOP", "$LOOP")]);
    let m = parse_str_with_env("x: $LOOP\n", Path::new("t.conf"), Some(&e)).expect("ok");
    assert_eq!(kind(&m, "x"), &s("$LOOP"));
}

#[test]
fn include_relative_to_including_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conf");
    let m = super::parse_file(&dir.join("include_main.conf")).expect("parses");
    assert_eq!(kind(&m, "port"), &Kind::Int(4333));
    assert_eq!(kind(&m, "server_name"), &s("from_include"));
    assert_eq!(kind(&m, "max_payload"), &Kind::Int(64 * 1024));
    let auth = m
        .get("authorization")
        .and_then(Value::as_map)
        .expect("auth");
    assert_eq!(kind(auth, "token"), &s("s3cr3t_token"));
    // Positions of included values name the included file.
    let sn = m.get("server_name").expect("server_name");
    assert!(sn.pos.file.ends_with("sub/inc.conf"), "{}", sn.pos);
    assert_eq!(sn.pos.line, 2);
}

#[test]
fn missing_include_is_an_error_with_position() {
    let errs = parse_err("port: 1\ninclude ./does_not_exist.conf\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .to_string()
            .starts_with("t.conf:2:1: error parsing include file './does_not_exist.conf'"),
        "{}",
        errs[0]
    );
}

#[test]
fn syntax_errors_report_line_and_column() {
    let errs = parse_err("port: 4222 4223\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].pos.as_ref().map(|p| (p.line, p.col)), Some((1, 12)));
    assert!(
        errs[0]
            .message
            .contains("Expected a top-level value to end"),
        "{}",
        errs[0]
    );
}

#[test]
fn all_errors_are_collected() {
    let errs = parse_err("a: 1 2\nb: \"ok\"\nc: $MISSING\nd {\n  e: [1 2]\n}\nf: \"bad \\q\"\n");
    let lines: Vec<u32> = errs
        .iter()
        .filter_map(|e| e.pos.as_ref().map(|p| p.line))
        .collect();
    assert_eq!(lines, vec![1, 3, 5, 7], "{errs:?}");
}

#[test]
fn unclosed_structures_are_errors() {
    assert!(!parse_err("a {\n b: 1\n").is_empty());
    assert!(!parse_err("a: [1, 2\n").is_empty());
    assert!(!parse_err("a: \"open\n").is_empty());
    assert!(!parse_err("a: (\nblock\n").is_empty());
    assert!(!parse_err("a:\n").is_empty());
}

#[test]
fn whole_file_wrapped_in_braces() {
    let m = parse("{\n  port: 1\n  host: h\n}\n");
    assert_eq!(kind(&m, "port"), &Kind::Int(1));
    assert_eq!(kind(&m, "host"), &s("h"));
}

#[test]
fn crlf_line_endings() {
    let m = parse("port: 1\r\nhost: h\r\nm {\r\n  a: 2\r\n}\r\n");
    assert_eq!(kind(&m, "port"), &Kind::Int(1));
    assert_eq!(kind(&m, "host"), &s("h"));
}

proptest::proptest! {
    /// Any input parses or fails with positioned errors; it never panics or loops.
    #[test]
    fn never_panics(text in "[a-z0-9 \\t\\n\\r:=;,{}\\[\\]()#/\"'\\\\$.\\-é]{0,80}") {
        let e = env(&[]);
        if let Err(errs) = parse_str_with_env(&text, Path::new("p.conf"), Some(&e)) {
            proptest::prop_assert!(!errs.is_empty());
        }
    }

    /// Mapping and loading never panic either, whatever the tree holds.
    #[test]
    fn mapping_never_panics(text in "(port|listen|http|authorization|cluster|users|routes|max_payload|ping_interval|jetstream|x)(: | )([0-9]{1,3}|\"[a-z:0-9]{0,6}\"|\\{ ?(user|token|name|listen|timeout): ?[a-z0-9]{1,3} ?\\}|\\[[a-z0-9, ]{0,8}\\]|true|2MB|-1)\n"){
        let e = env(&[]);
        if let Ok(m) = parse_str_with_env(&text, Path::new("p.conf"), Some(&e)) {
            let _ = super::map::map_root(&m);
        }
    }
}
