//! RFC 6901 pointers: `schemas::pointer::parse` on arbitrary text, `escape` on arbitrary
//! tokens, and `resolve` against an arbitrary document. Invariants: a parsed pointer escapes
//! back to exactly its text (escaping is canonical); any token survives escape then parse; a
//! refusal is justified; resolving step by step finds what resolving at once finds.
//!
//! Input: the pointer, then optionally a newline and a JSON document to resolve it in.

#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::{decode, pointer, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pointer_text, document) = text.split_once('\n').unwrap_or((text, ""));

    let escaped = pointer::escape(text);
    assert_eq!(
        pointer::parse(&format!("/{escaped}")),
        Ok(vec![text.to_owned()])
    );

    let tokens = match pointer::parse(pointer_text) {
        Ok(tokens) => tokens,
        Err(_) => {
            assert!(!pointer_text.is_empty());
            let bad_tilde = pointer_text
                .split('~')
                .skip(1)
                .any(|after| !after.starts_with(['0', '1']));
            assert!(
                !pointer_text.starts_with('/') || bad_tilde,
                "{pointer_text:?} refused"
            );
            return;
        }
    };
    let rebuilt: String = tokens
        .iter()
        .map(|t| format!("/{}", pointer::escape(t)))
        .collect();
    assert_eq!(rebuilt, pointer_text);

    let mut buf = document.as_bytes().to_vec();
    let Ok(root) = decode(&mut buf) else {
        return;
    };
    // Compared by identity: resolve returns a node of the same tree, and `PartialEq` is no
    // help with duplicated keys (it looks each key up, finding the first duplicate for all).
    let same = |a: Option<&Value<'_>>, b: Option<&Value<'_>>| match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        (a, b) => a.is_none() && b.is_none(),
    };
    assert!(same(pointer::resolve(&root, &[]), Some(&root)));
    let whole = pointer::resolve(&root, &tokens);
    let split = tokens.len() / 2;
    let stepwise = pointer::resolve(&root, &tokens[..split])
        .and_then(|middle| pointer::resolve(middle, &tokens[split..]));
    assert!(
        same(whole, stepwise),
        "{whole:?} found at once, {stepwise:?} step by step"
    );
});
