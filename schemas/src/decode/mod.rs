//! The one place JSON is parsed. Keeping simd-json behind this module means the parser choice,
//! its error mapping and the nesting bound live in one function each.
//!
//! Before parsing, one pass over the bytes ([`scan`]) refuses what simd-json would get wrong
//! or let through: lone surrogate escapes (which it turns into U+0000), U+0000 itself, and
//! number tokens a float cannot hold exactly. The last two take a slow path ([`rewrite`]); the
//! rest, nearly every body, is parsed in place as before.
//!
//! Numbers: a token with more than 15 significant digits or an exponent is kept as its exact
//! canonical decimal text (see [`crate::normalise::decimal`]), read with [`number_text`]; other
//! numbers decode as simd-json's integers and floats, which hold them exactly. A number beyond
//! what a 64-bit float can hold (above about 1.8e308, or below about 4.9e-324 but not zero) is
//! refused as out of range.

mod rewrite;
mod scan;

#[cfg(test)]
mod tests;

use serde::Deserialize;
use simd_json::prelude::*;
use simd_json::ErrorType;

use crate::{Value, Violation};
use rewrite::{Mode, MARKER_KEY};

/// Deepest nesting of arrays and objects accepted. simd-json builds values recursively and
/// dropping them recurses too, so an unbounded `[[[[…` body could exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Why a body could not be decoded. Messages are safe to show to clients.
///
/// [`violation`](Self::violation) tells the errors a client should get as a 422 (the JSON is
/// well-formed but breaks a rule, at a place) from those that are a 400.
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
    /// A `\uD800`–`\uDFFF` escape without its other half: not a Unicode scalar value.
    #[error("body contains a lone UTF-16 surrogate escape")]
    LoneSurrogate,
    /// A string or object key holding U+0000, which no store column can keep.
    #[error("{path:?} must not contain U+0000")]
    Nul {
        /// Pointer to the string, or to the member whose key it is.
        path: String,
    },
    /// A number beyond what a 64-bit float can hold.
    #[error("{path:?} is out of range")]
    NumberOutOfRange {
        /// Pointer to the number.
        path: String,
    },
    /// Well-formed JSON, but not the shape the reader expected (typed decoding only).
    #[error("JSON does not have the expected structure")]
    Shape,
}

impl DecodeError {
    /// The rule broken, at its place, for errors that are the client's content rather than
    /// its syntax (a 422); None for the rest (a 400).
    pub fn violation(&self) -> Option<Violation> {
        match self {
            Self::Nul { path } => Some(Violation::new(path.clone(), "must not contain U+0000")),
            Self::NumberOutOfRange { path } => Some(Violation::new(
                path.clone(),
                "is out of range: numbers must be within what a 64-bit float can hold",
            )),
            Self::Empty | Self::Syntax | Self::TooDeep | Self::LoneSurrogate | Self::Shape => None,
        }
    }
}

/// Parses `buf` (in place: simd-json rewrites escapes inside it) into a value borrowing it.
pub fn decode(buf: &mut [u8]) -> Result<Value<'_>, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Empty);
    }
    // A raw NUL is never JSON (not whitespace outside strings, an unescaped control inside),
    // but simd-json ends a number or literal at one and reads on (found by fuzzing).
    if memchr::memchr(0, buf).is_some() {
        return Err(DecodeError::Syntax);
    }
    if !scan::needs_scan(buf) {
        return parse(buf);
    }
    let findings = scan::scan(buf)?;
    if findings.inexact_number {
        let mode = if findings.nul {
            Mode::Zero
        } else {
            Mode::Exact
        };
        let (mut copy, out_of_range) = rewrite::rewrite(buf, mode)?;
        let value = parse(&mut copy)?;
        if findings.nul {
            return Err(nul_error(&value));
        }
        if out_of_range {
            let path = rewrite::find_out_of_range(&value).unwrap_or_default();
            return Err(DecodeError::NumberOutOfRange { path });
        }
        return Ok(value.into_static());
    }
    let value = parse(buf)?;
    if findings.nul {
        return Err(nul_error(&value));
    }
    Ok(value)
}

/// The exact canonical decimal text of a number [`decode`] kept as text because a float might
/// not hold it exactly (more than 15 significant digits, or an exponent); None for anything
/// else, including strings.
pub fn number_text<'v>(value: &'v Value<'_>) -> Option<&'v str> {
    match value {
        Value::Object(members) if members.len() == 1 => members.get(MARKER_KEY)?.as_str(),
        _ => None,
    }
}

fn parse(buf: &mut [u8]) -> Result<Value<'_>, DecodeError> {
    simd_json::to_borrowed_value(buf).map_err(|_| DecodeError::Syntax)
}

fn nul_error(value: &Value<'_>) -> DecodeError {
    DecodeError::Nul {
        path: rewrite::find_nul(value).unwrap_or_default(),
    }
}

/// Parses `buf` straight into a typed structure, for messages this workspace wrote itself.
pub(crate) fn decode_as<'a, T: Deserialize<'a>>(buf: &'a mut [u8]) -> Result<T, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Empty);
    }
    // The same quick look as `decode`: most messages have nothing the scan would find.
    if scan::needs_scan(buf) {
        scan::scan(buf)?;
    }
    simd_json::serde::from_slice(buf).map_err(|e| {
        if is_shape_error(e.error()) {
            DecodeError::Shape
        } else {
            DecodeError::Syntax
        }
    })
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
