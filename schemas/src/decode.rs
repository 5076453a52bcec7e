//! The one place JSON is parsed. Keeping simd-json behind this module means the parser choice,
//! its error mapping and the nesting bound live in one function each.

use serde::Deserialize;
use simd_json::ErrorType;

use crate::Value;

/// Deepest nesting of arrays and objects accepted. simd-json builds values recursively and
/// dropping them recurses too, so an unbounded `[[[[…` body could exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Why a body could not be decoded. Messages are safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes.
    #[error("body is empty")]
    Empty,
    /// Not well-formed JSON.
    #[error("body is not valid JSON")]
    Syntax,
    /// Arrays or objects nested deeper than [`MAX_DEPTH`].
    #[error("body nests arrays or objects more than 128 levels deep")]
    TooDeep,
    /// Well-formed JSON, but not the shape the reader expected (typed decoding only).
    #[error("JSON does not have the expected structure")]
    Shape,
}

/// Parses `buf` in place (simd-json rewrites escapes inside it) into a borrowed value.
pub fn decode(buf: &mut [u8]) -> Result<Value<'_>, DecodeError> {
    check(buf)?;
    simd_json::to_borrowed_value(buf).map_err(|_| DecodeError::Syntax)
}

/// Parses `buf` straight into a typed structure, for messages this workspace wrote itself.
pub(crate) fn decode_as<'a, T: Deserialize<'a>>(buf: &'a mut [u8]) -> Result<T, DecodeError> {
    check(buf)?;
    simd_json::serde::from_slice(buf).map_err(|e| {
        if is_shape_error(e.error()) {
            DecodeError::Shape
        } else {
            DecodeError::Syntax
        }
    })
}

fn check(buf: &[u8]) -> Result<(), DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Empty);
    }
    // Counting openers is a fast vectorisable pass; only bodies with many of them need the
    // exact scan that knows about strings.
    let openers = buf.iter().filter(|&&b| b == b'[' || b == b'{').count();
    if openers > MAX_DEPTH && nesting_depth(buf) > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    Ok(())
}

/// Maximum bracket depth outside string literals. Invalid JSON may give a meaningless answer,
/// which is fine: the parser refuses it afterwards.
fn nesting_depth(buf: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in buf {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn is_shape_error(e: &ErrorType) -> bool {
    matches!(
        e,
        ErrorType::Serde(_)
            | ErrorType::Unexpected(..)
            | ErrorType::ExpectedArray
            | ErrorType::ExpectedBoolean
            | ErrorType::ExpectedEnum
            | ErrorType::ExpectedFloat
            | ErrorType::ExpectedInteger
            | ErrorType::ExpectedMap
            | ErrorType::ExpectedNull
            | ErrorType::ExpectedNumber
            | ErrorType::ExpectedSigned
            | ErrorType::ExpectedString
            | ErrorType::ExpectedUnsigned
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn run(s: &str) -> Result<(), DecodeError> {
        let mut buf = s.as_bytes().to_vec();
        decode(&mut buf).map(|_| ())
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
}
