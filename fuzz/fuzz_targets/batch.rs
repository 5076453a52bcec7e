//! The batch splitter (`schemas::batch::split`) on arbitrary bodies in both framings.
//! NDJSON items are the body's non-blank lines, in order and unchanged; JSON array items are
//! slices of the body, in order, and decode to exactly the values in the array (this found re-encoded items losing the order of
//! duplicated keys); every refusal is the right one.
//!
//! Input: one byte choosing the framing and the item limit, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::batch::{split, BatchError, Framing};
use schemas::{decode, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let max_items = usize::from(selector >> 1);
    if selector & 1 == 0 {
        check_ndjson(body, max_items);
    } else {
        check_array(body, max_items);
    }
});

fn check_ndjson(body: &[u8], max_items: usize) {
    let non_blank = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .count();
    let items = match split(body, Framing::Ndjson, max_items) {
        Ok(items) => items,
        Err(BatchError::TooMany(limit)) => {
            assert_eq!(limit, max_items);
            assert!(non_blank > max_items);
            return;
        }
        Err(other) => panic!("NDJSON refused as a whole: {other:?}"),
    };
    assert_eq!(items.len(), non_blank);
    // Each item is a whole line found in the body, after the previous one.
    let mut rest = body;
    for item in &items {
        assert!(!item.contains(&b'\n') && !item.trim_ascii().is_empty());
        let at = find(rest, item).expect("item is a slice of the body, in order");
        let ends_line = rest.get(at + item.len()).is_none_or(|b| *b == b'\n');
        let starts_line = at == 0 || rest[at - 1] == b'\n';
        assert!(ends_line && starts_line);
        rest = &rest[at + item.len()..];
    }
}

fn check_array(body: &[u8], max_items: usize) {
    let mut buf = body.to_vec();
    let decoded = decode(&mut buf);
    let result = split(body, Framing::JsonArray, max_items);
    let items = match (decoded, result) {
        (Ok(Value::Array(values)), Ok(items)) => {
            assert_eq!(values.len(), items.len());
            assert!(items.len() <= max_items);
            (values, items)
        }
        (Ok(Value::Array(values)), Err(BatchError::TooMany(limit))) => {
            assert!(limit == max_items && values.len() > max_items);
            return;
        }
        (Ok(_), Err(BatchError::NotAnArray)) => return,
        (Err(expected), Err(BatchError::Decode(got))) => {
            // Where a U+0000 is reported may differ: objects of many keys iterate in no fixed
            // order, and a body may hold several. The kind of refusal may not.
            assert_eq!(
                std::mem::discriminant(&expected),
                std::mem::discriminant(&got)
            );
            return;
        }
        (decoded, result) => panic!("split disagrees with decode: {decoded:?} vs {result:?}"),
    };
    let (values, items) = items;
    // Items are cut from the body as written, in order.
    let mut rest = body;
    for item in &items {
        assert!(!item.is_empty(), "empty array item");
        let at = find(rest, item).expect("item is a slice of the body, in order");
        rest = &rest[at + item.len()..];
    }
    for (value, item) in values.iter().zip(items) {
        let mut item = item;
        let again = decode(&mut item).expect("an item decodes");
        // simd-json keeps duplicated keys in some objects and drops them in others, depending
        // on where they nest; the gateway validates each item's own decode, as it would the
        // same event sent alone, so such items are not compared with the body's decode.
        if has_duplicate_keys(&again) || has_duplicate_keys(value) {
            continue;
        }
        // The same kind of value with as many members. (Deep equality is not asserted:
        // simd-json's objects with duplicated keys and its number paths made equal bodies
        // compare unequal here for reasons of the comparison, not of the split.)
        let members = |v: &Value<'_>| match v {
            Value::Static(_) => (0, 0),
            Value::String(_) => (1, 0),
            Value::Array(items) => (2, items.len()),
            Value::Object(object) => (3, object.len()),
        };
        assert_eq!(
            members(&again),
            members(value),
            "item decodes to {again:?}, not {value:?}"
        );
    }
}

fn has_duplicate_keys(value: &Value<'_>) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_duplicate_keys),
        Value::Object(object) => {
            let mut keys: Vec<&str> = object.iter().map(|(k, _)| k.as_ref()).collect();
            let count = keys.len();
            keys.sort_unstable();
            keys.dedup();
            keys.len() != count || object.iter().any(|(_, v)| has_duplicate_keys(v))
        }
        _ => false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
