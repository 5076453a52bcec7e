//! Decoding: the errors each bad body gets, and numbers kept exact.

use simd_json::prelude::*;

use super::*;

fn run(s: &str) -> Result<(), DecodeError> {
    let mut buf = s.as_bytes().to_vec();
    decode(&mut buf).map(|_| ())
}

/// The canonical text decode kept for the number at `key` of a top-level object.
fn kept(s: &str, key: &str) -> Option<String> {
    let mut buf = s.as_bytes().to_vec();
    let value = decode(&mut buf).ok()?;
    number_text(value.get(key)?).map(str::to_owned)
}

fn nul_at(path: &str) -> Result<(), DecodeError> {
    Err(DecodeError::Nul { path: path.into() })
}

fn out_of_range_at(path: &str) -> Result<(), DecodeError> {
    Err(DecodeError::NumberOutOfRange { path: path.into() })
}

#[test]
fn decodes_an_object() {
    let mut buf = br#"{"a": [1, "x"]}"#.to_vec();
    let v = decode(&mut buf).expect("valid");
    assert_eq!(v.get("a").and_then(|a| a.as_array()).map(Vec::len), Some(2));
}

#[test]
fn empty_body_is_an_error() {
    assert_eq!(run(""), Err(DecodeError::Empty));
}

#[test]
fn malformed_json_is_a_syntax_error() {
    for s in [
        "{",
        "{\"a\":}",
        "[1,]",
        "nul",
        "{\"a\" 1}",
        "   ",
        "\"abc",
        "1 2",
        "[01e20]",
        "[1e400 2]",
        "[1.e20]",
        "[\"\\u00zz\"]",
        "{1e20: 1}",
    ] {
        assert_eq!(run(s), Err(DecodeError::Syntax), "{s:?}");
    }
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert_eq!(run(&deep), Err(DecodeError::TooDeep));
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert_eq!(run(&ok), Ok(()));
}

#[test]
fn brackets_inside_strings_do_not_count_as_nesting() {
    let s = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
    assert_eq!(run(&s), Ok(()));
}

#[test]
fn message_has_no_internals() {
    assert_eq!(DecodeError::Syntax.to_string(), "body is not valid JSON");
}

#[test]
fn nul_escape_in_a_value_is_refused_at_its_place() {
    assert_eq!(run(r#"{"a": {"b": ["x", "y\u0000z"]}}"#), nul_at("/a/b/1"));
    assert_eq!(run(r#""\u0000""#), nul_at(""));
}

#[test]
fn nul_escape_in_a_key_is_refused_at_its_member() {
    assert_eq!(run(r#"{"a": {"k\u0000": 1}}"#), nul_at("/a/k\0"));
}

#[test]
fn nul_is_found_even_beside_numbers_that_need_rewriting() {
    assert_eq!(run(r#"{"n": 1e400, "m": [1e5, "\u0000"]}"#), nul_at("/m/1"));
}

#[test]
fn an_escaped_backslash_before_u0000_is_literal_text() {
    let mut buf = br#"{"a": "\\u0000"}"#.to_vec();
    let value = decode(&mut buf).expect("literal backslash-u text");
    assert_eq!(value.get("a").and_then(|a| a.as_str()), Some("\\u0000"));
}

#[test]
fn a_raw_nul_byte_is_invalid_json() {
    assert_eq!(run("{\"a\": \"x\0y\"}"), Err(DecodeError::Syntax));
    assert_eq!(run("{\"a\":\0 1}"), Err(DecodeError::Syntax));
}

#[test]
fn lone_surrogates_are_refused() {
    assert_eq!(run(r#"{"a": "\ud800"}"#), Err(DecodeError::LoneSurrogate));
    assert_eq!(run(r#"{"a": "x\uDC00y"}"#), Err(DecodeError::LoneSurrogate));
    assert_eq!(
        run(r#"{"\ud800\u0041": 1}"#),
        Err(DecodeError::LoneSurrogate)
    );
    assert_eq!(DecodeError::LoneSurrogate.violation(), None);
}

#[test]
fn a_surrogate_pair_decodes_to_its_character() {
    let mut buf = br#"{"a": "\ud83d\ude00"}"#.to_vec();
    let value = decode(&mut buf).expect("valid pair");
    assert_eq!(value.get("a").and_then(|a| a.as_str()), Some("\u{1F600}"));
}

#[test]
fn numbers_floats_cannot_hold_are_kept_as_exact_text() {
    let body = r#"{"big": 18446744073709551616, "low": -9223372036854775809,
        "exp": 1.5e2, "long": 0.1000000000000000055511151231257827,
        "thirty": 123456789012345678901234567890.5, "plain": 19.99}"#;
    assert_eq!(kept(body, "big").as_deref(), Some("18446744073709551616"));
    assert_eq!(kept(body, "low").as_deref(), Some("-9223372036854775809"));
    assert_eq!(kept(body, "exp").as_deref(), Some("150"));
    assert_eq!(
        kept(body, "long").as_deref(),
        Some("0.1000000000000000055511151231257827")
    );
    assert_eq!(
        kept(body, "thirty").as_deref(),
        Some("123456789012345678901234567890.5")
    );
    assert_eq!(
        kept(body, "plain"),
        None,
        "a float holds 19.99 exactly enough"
    );
}

#[test]
fn numbers_beyond_a_float_are_out_of_range_at_their_place() {
    assert_eq!(run(r#"{"a": [1, 1e400]}"#), out_of_range_at("/a/1"));
    assert_eq!(run(r#"{"a": -1e-400}"#), out_of_range_at("/a"));
    assert_eq!(run("1e400"), out_of_range_at(""));
    let violation = DecodeError::NumberOutOfRange { path: "/a".into() }.violation();
    assert!(violation.is_some_and(|v| v.path == "/a" && v.message.contains("out of range")));
}

#[test]
fn nul_is_a_violation_and_syntax_is_not() {
    let nul = DecodeError::Nul { path: "/a".into() }.violation();
    assert_eq!(nul, Some(Violation::new("/a", "must not contain U+0000")));
    assert_eq!(DecodeError::Syntax.violation(), None);
    assert_eq!(DecodeError::TooDeep.violation(), None);
}

#[test]
fn number_markers_cannot_be_forged() {
    // The marker shape, sent by a client, is refused for its U+0000 key.
    assert_eq!(run(r#"{"a": {"\u0000": "5"}}"#), nul_at("/a/\0"));
    // Ordinary strings and objects are not numbers.
    let mut buf = br#"{"s": "5", "o": {"x": "5"}}"#.to_vec();
    let value = decode(&mut buf).expect("valid");
    assert_eq!(value.get("s").and_then(number_text), None);
    assert_eq!(value.get("o").and_then(number_text), None);
}
