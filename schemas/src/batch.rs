//! Splitting a batch body (a JSON array or NDJSON) into one buffer per event, so each item is
//! then decoded and validated exactly like a single event. Pure: the gateway reads the body
//! and answers; this module only cuts it up, which also makes it easy to fuzz.

use crate::{decode, DecodeError, Value};

/// How the events of a batch body are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/json`: one array whose elements are the events.
    JsonArray,
    /// `application/x-ndjson`: one event per line; blank lines are skipped.
    Ndjson,
}

/// Why a whole batch is refused. Messages are safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A JSON array body that does not decode. (A bad NDJSON line fails only its own item.)
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A JSON body that decodes to something other than an array.
    #[error("a batch body is a JSON array of events")]
    NotAnArray,
    /// More items than the caller allows.
    #[error("a batch holds at most {0} events")]
    TooMany(usize),
}

/// The items of a batch body, each as its own JSON buffer, in order. A malformed JSON array
/// fails the whole batch; a malformed NDJSON line is returned as is, to fail only its item when
/// it is decoded. More than `max_items` items is an error, found without copying the excess.
pub fn split(body: &[u8], framing: Framing, max_items: usize) -> Result<Vec<Vec<u8>>, BatchError> {
    match framing {
        Framing::Ndjson => split_lines(body, max_items),
        Framing::JsonArray => split_array(body, max_items),
    }
}

fn split_lines(body: &[u8], max_items: usize) -> Result<Vec<Vec<u8>>, BatchError> {
    let mut items = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Checked before copying, so a body of a million short lines costs no more memory
        // than `max_items` of them.
        if items.len() == max_items {
            return Err(BatchError::TooMany(max_items));
        }
        items.push(line.to_vec());
    }
    Ok(items)
}

fn split_array(body: &[u8], max_items: usize) -> Result<Vec<Vec<u8>>, BatchError> {
    let mut buf = body.to_vec();
    let Value::Array(items) = decode(&mut buf)? else {
        return Err(BatchError::NotAnArray);
    };
    if items.len() > max_items {
        return Err(BatchError::TooMany(max_items));
    }
    // Each item is cut from the body as written, not re-encoded from the decoded value: an
    // object with more than 32 keys does not keep their order, so a re-encoded item with a
    // duplicated key could resolve that key to another value than the same event sent alone.
    let elements = elements(body);
    if elements.len() == items.len() {
        return Ok(elements.into_iter().map(<[u8]>::to_vec).collect());
    }
    // Only a body that is not JSON but that simd-json accepts (a raw NUL inside it, see
    // tests/fuzz_regressions.rs) can get here: re-encoding still gives the parser's items.
    Ok(items
        .iter()
        .map(|item| simd_json::to_vec(item).unwrap_or_default())
        .collect())
}

/// The elements of a top-level JSON array, as slices of `body`, which the parser has already
/// accepted as an array: so only strings and nesting need tracking to find the commas.
fn elements(body: &[u8]) -> Vec<&[u8]> {
    let mut found = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in body.iter().enumerate() {
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
                if depth == 1 {
                    start = i + 1;
                }
            }
            b',' if depth == 1 => {
                found.push(trim(&body[start..i]));
                start = i + 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let last = trim(&body[start..i]);
                    // `[]` has no element; otherwise the last one ends at the bracket.
                    if !last.is_empty() || !found.is_empty() {
                        found.push(last);
                    }
                    break;
                }
            }
            _ => {}
        }
    }
    found
}

/// Without JSON's insignificant whitespace (RFC 8259: space, tab, line feed, carriage return).
fn trim(mut bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    while let [first, rest @ ..] = bytes {
        if !blank(first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !blank(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(items: &[Vec<u8>]) -> Vec<&str> {
        items
            .iter()
            .map(|i| std::str::from_utf8(i).expect("utf-8"))
            .collect()
    }

    #[test]
    fn ndjson_keeps_every_non_blank_line_as_is() {
        let body = b"{\"a\": 1}\n{oops\n\n  \t\r\n[2]\r\n";
        let items = split(body, Framing::Ndjson, 10).expect("split");
        assert_eq!(texts(&items), ["{\"a\": 1}", "{oops", "[2]\r"]);
    }

    #[test]
    fn ndjson_without_items_is_empty() {
        assert_eq!(split(b"", Framing::Ndjson, 10), Ok(vec![]));
        assert_eq!(split(b"\n \n", Framing::Ndjson, 10), Ok(vec![]));
    }

    #[test]
    fn array_items_are_cut_from_the_body_as_written() {
        let body = b" [ {\"a\": \"x\\\"y,]\", \"b\": [1, {}]},\"s\" ,\n\t-0 , [] ]\r\n";
        let items = split(body, Framing::JsonArray, 10).expect("split");
        assert_eq!(
            texts(&items),
            [r#"{"a": "x\"y,]", "b": [1, {}]}"#, r#""s""#, "-0", "[]"]
        );
        assert_eq!(split(b"[]", Framing::JsonArray, 10), Ok(vec![]));
        assert_eq!(split(b"[ \n ]", Framing::JsonArray, 10), Ok(vec![]));
        assert_eq!(
            split(b"[\"\\\\\", {}]", Framing::JsonArray, 10).map(|i| i.len()),
            Ok(2)
        );
    }

    #[test]
    fn a_duplicated_key_keeps_its_order_in_a_large_object() {
        // Found by the `batch` fuzz target: items used to be re-encoded, and an object of more
        // than 32 keys came back in another order, so `email` could resolve to another value.
        let mut object = String::from(r#"{"email": "first@example.com""#);
        for i in 0..40 {
            object.push_str(&format!(r#", "k{i}": {i}"#));
        }
        object.push_str(r#", "email": "second@example.com"}"#);
        let body = format!("[{object}]");
        let items = split(body.as_bytes(), Framing::JsonArray, 10).expect("split");
        assert_eq!(texts(&items), [object.as_str()]);
    }

    #[test]
    fn a_bad_array_body_fails_the_whole_batch() {
        assert_eq!(
            split(b"[1,", Framing::JsonArray, 10),
            Err(BatchError::Decode(DecodeError::Syntax))
        );
        assert_eq!(
            split(b"", Framing::JsonArray, 10),
            Err(BatchError::Decode(DecodeError::Empty))
        );
        assert_eq!(
            split(br#"{"a": 1}"#, Framing::JsonArray, 10),
            Err(BatchError::NotAnArray)
        );
    }

    #[test]
    fn more_items_than_allowed_is_refused_in_both_framings() {
        assert_eq!(
            split(b"[1,2,3]", Framing::JsonArray, 3).map(|i| i.len()),
            Ok(3)
        );
        assert_eq!(
            split(b"[1,2,3,4]", Framing::JsonArray, 3),
            Err(BatchError::TooMany(3))
        );
        assert_eq!(
            split(b"1\n2\n\n3\n", Framing::Ndjson, 3).map(|i| i.len()),
            Ok(3)
        );
        assert_eq!(
            split(b"1\n2\n3\n4", Framing::Ndjson, 3),
            Err(BatchError::TooMany(3))
        );
        assert_eq!(
            BatchError::TooMany(1000).to_string(),
            "a batch holds at most 1000 events"
        );
    }

    #[test]
    fn a_body_the_scanner_cannot_follow_still_splits_as_parsed() {
        // Found by the `batch` fuzz target: simd-json ends the number at the raw NUL and reads
        // `\"` as no string at all, while the scanner enters a string there and never leaves.
        // Refusing it as not JSON (once decode refuses raw NUL) is right too.
        let result = split(b"[0\0\\\"]", Framing::JsonArray, 10);
        match result {
            Ok(items) => assert_eq!(texts(&items), ["0"]),
            Err(error) => assert_eq!(error, BatchError::Decode(DecodeError::Syntax)),
        }
    }

    #[test]
    fn decode_errors_keep_their_client_message() {
        let error = split(b"nope", Framing::JsonArray, 1).expect_err("refused");
        assert_eq!(error.to_string(), "body is not valid JSON");
    }
}
