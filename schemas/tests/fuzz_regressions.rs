//! Inputs the fuzzers (fuzz/, run by scripts/fuzz) found, kept as plain tests so a fix stays
//! fixed. Each names the target that found it.

use schemas::{decode, DecodeError};

/// Found by `decode_validate`: simd-json ends a number or literal at a raw NUL byte and carries
/// on, so these bodies decode although a raw NUL is never valid JSON (outside strings it is not
/// whitespace; inside them control characters must be escaped). An api event with such a
/// number is accepted instead of answered 400. decode refuses any raw NUL byte first.
#[test]
fn a_raw_nul_byte_is_not_json() {
    refused_as_syntax(&[
        &b"7\0"[..],
        b"7\0garbage",
        b"null\0",
        b"[7\0]",
        b"{\"email\": \"a@example.com\", \"age\": 7\0}",
    ]);
}

/// Found by `decode_validate`: simd-json parses floats of 19 or more characters and integers
/// of 18 or more digits on slow paths that skip the check of the character after the number,
/// so anything up to the next structural character is silently dropped
/// (`1.0000000000000000000001abc` reads as 1.0, `-1111111111111111111!` as an integer).
/// decode sends such numbers through its exact-number rewrite, which checks what follows.
#[test]
fn garbage_after_a_long_number_is_not_json() {
    refused_as_syntax(&[
        &b"1.00000000000000000000x"[..],
        b"[1.00000000000000000000x]",
        b"{\"email\": \"a@example.com\", \"total\": 1.0000000000000000000001abc}",
        b"7.77766666666666666666'666666666666776",
        b"1.2345678901234567890123e5x",
        b"-1111111111111111111!",
        b"{\"age\": 1000000000000000000x}",
    ]);
}

/// Found by `batch`: a number-like run with two decimal points, long enough for simd-json's
/// slow path, decoded as its first part when it stood inside an array (and was refused on its
/// own, so a batch item disagreed with the body it came from).
#[test]
fn a_long_number_with_two_points_is_not_json() {
    refused_as_syntax(&[
        &b"[77733000001.5777330003800438349363730.5]"[..],
        b"{\"b\": [1.5777330003800438349363730.5]}",
        b"[1.5777330003800438349363730e5e5]",
    ]);
}

fn refused_as_syntax(bodies: &[&[u8]]) {
    for body in bodies {
        let mut buf = body.to_vec();
        assert_eq!(
            decode(&mut buf).map(|_| ()),
            Err(DecodeError::Syntax),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}
