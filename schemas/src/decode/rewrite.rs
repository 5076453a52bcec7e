//! The slow path, for the few bodies the scan flagged: number tokens a float cannot hold
//! exactly are rewritten before parsing, and the decoded value is searched for what to report.
//!
//! A rewritten number becomes `{"\u0000": "<canonical decimal>"}`. No client can send that
//! shape, since every U+0000 is refused, so [`number_text`](super::number_text) can tell it
//! from anything sent; and code that is not looking for numbers sees an object, never a string
//! it might store.

use simd_json::prelude::*;

use super::scan::{is_inexact, number_end, string_end, Findings};
use super::DecodeError;
use crate::normalise::decimal::{decimal, is_json_number};
use crate::{pointer, Value};

/// The key of the object standing for a number kept as text.
pub(super) const MARKER_KEY: &str = "\0";

/// What rewritten numbers become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Their canonical text inside a marker object (`null` inside it when out of range).
    Exact,
    /// `0`: the body will be refused for something else, and only needs to stay parseable.
    Zero,
}

/// A copy of `buf` with every inexact, well-formed number token outside strings rewritten,
/// and whether any was out of range. A malformed inexact token is a syntax error; shorter
/// malformed ones are left for the parser, which refuses them.
pub(super) fn rewrite(buf: &[u8], mode: Mode) -> Result<(Vec<u8>, bool), DecodeError> {
    let mut out = Vec::with_capacity(buf.len() + 64);
    let (mut copied, mut i, mut out_of_range) = (0, 0, false);
    let mut ignored = Findings::default();
    while let Some(&b) = buf.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(buf, i, &mut ignored)?,
            b'-' | b'0'..=b'9' => {
                let start = i - 1;
                i = number_end(buf, start);
                let token = &buf[start..i];
                if !is_inexact(token) {
                    continue;
                }
                // simd-json reads long numbers on a path that skips the check of what follows
                // them (`1.57773300038004383.5` would decode): a malformed one is refused here.
                if !is_json_number(token) {
                    return Err(DecodeError::Syntax);
                }
                out.extend_from_slice(&buf[copied..start]);
                copied = i;
                let text = std::str::from_utf8(token).map_err(|_| DecodeError::Syntax)?;
                match (mode, decimal(text)) {
                    (Mode::Zero, _) => out.push(b'0'),
                    (Mode::Exact, Ok(canonical)) => {
                        out.extend_from_slice(br#"{"\u0000":""#);
                        out.extend_from_slice(canonical.as_bytes());
                        out.extend_from_slice(br#""}"#);
                    }
                    (Mode::Exact, Err(_)) => {
                        out_of_range = true;
                        out.extend_from_slice(br#"{"\u0000":null}"#);
                    }
                }
            }
            _ => {}
        }
    }
    out.extend_from_slice(&buf[copied..]);
    Ok((out, out_of_range))
}

/// The pointer to the first string or object key holding U+0000, if any.
pub(super) fn find_nul(value: &Value<'_>) -> Option<String> {
    find(value, &mut String::new(), &|v, key| {
        key.is_some_and(|k| k.contains('\0')) || v.as_str().is_some_and(|s| s.contains('\0'))
    })
}

/// The pointer to the first number that was out of range.
pub(super) fn find_out_of_range(value: &Value<'_>) -> Option<String> {
    find(
        value,
        &mut String::new(),
        &|v, _| matches!(v, Value::Object(o) if o.len() == 1 && o.get(MARKER_KEY).is_some_and(|n| n.is_null())),
    )
}

/// Depth-first search for the first value (or member, whose key is given) `hit` accepts.
/// Depth is bounded by the scan, so recursion is too.
fn find(
    value: &Value<'_>,
    path: &mut String,
    hit: &dyn Fn(&Value<'_>, Option<&str>) -> bool,
) -> Option<String> {
    if hit(value, None) {
        return Some(path.clone());
    }
    let len = path.len();
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter() {
                path.push('/');
                path.push_str(&pointer::escape(key));
                if hit(member, Some(key)) {
                    return Some(path.clone());
                }
                if let Some(found) = find(member, path, hit) {
                    return Some(found);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push('/');
                path.push_str(&index.to_string());
                if let Some(found) = find(item, path, hit) {
                    return Some(found);
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
    None
}
