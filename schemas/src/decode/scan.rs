//! One pass over a body before simd-json sees it: nesting depth, `\u` escapes simd-json would
//! get wrong (lone surrogates) or that must be refused (U+0000), and whether any number token
//! is one a 64-bit float or integer cannot hold exactly. Bodies that pass with nothing flagged,
//! nearly all of them, go straight to the parser.

use super::{DecodeError, MAX_DEPTH};

/// Numbers with more significant digits than this may not survive f64 exactly; 15 always do.
const EXACT_DIGITS: usize = 15;

/// What the pass found that needs the slow path.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Findings {
    /// A `\u0000` escape somewhere (in a string or key, if the body is valid).
    pub(super) nul: bool,
    /// A number token with an exponent or more than 15 digits.
    pub(super) inexact_number: bool,
}

/// A cheap look for anything [`scan`] would find, so most bodies skip it: a backslash, more
/// openers than [`MAX_DEPTH`], a run of 16 number bytes, or a digit followed by an exponent
/// where a number can stand. False alarms only cost the full scan; a body with none of these has
/// no escapes, no deep nesting and no number a float cannot hold exactly.
pub(super) fn needs_scan(buf: &[u8]) -> bool {
    memchr::memchr(b'\\', buf).is_some()
        || openers(buf) > MAX_DEPTH
        || has_long_number_run(buf)
        || has_exponent(buf)
}

/// How many `[` and `{` bytes `buf` holds. Counted in byte-wide lanes a block of 255 at a time:
/// a count kept in a `usize` per byte made the compiler widen every byte to 64 bits, and this
/// count was most of the pass (a third of decoding a 1 KiB event, measured with criterion).
fn openers(buf: &[u8]) -> usize {
    buf.chunks(255)
        .map(|block| {
            let n = block.iter().fold(0u8, |n, &b| {
                n.wrapping_add(u8::from(b == b'[') + u8::from(b == b'{'))
            });
            usize::from(n)
        })
        .sum()
}

/// Whether some run of `-./0-9` bytes is longer than [`EXACT_DIGITS`]. Such a run covers a
/// whole aligned 8-byte word, so only words made entirely of those bytes are looked at closely.
fn has_long_number_run(buf: &[u8]) -> bool {
    const LOW: u64 = 0x2D2D_2D2D_2D2D_2D2D; // '-'
    const HIGH: u64 = 0x3A3A_3A3A_3A3A_3A3A; // one past '9'
    const TOP: u64 = 0x8080_8080_8080_8080;
    let is_number_byte = |b: &u8| (b'-'..=b'9').contains(b);
    buf.chunks_exact(8).enumerate().any(|(k, chunk)| {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // With each byte's top bit forced on no borrow crosses bytes: a byte's top bit stays
        // set after subtracting c exactly when the byte is at least c.
        let at_least_low = (word | TOP).wrapping_sub(LOW) & TOP;
        let at_least_high = (word | TOP).wrapping_sub(HIGH) & TOP;
        if at_least_low & !at_least_high & !word & TOP != TOP {
            return false;
        }
        let (start, end) = (k * 8, k * 8 + 8);
        let before = buf[..start]
            .iter()
            .rev()
            .take_while(|b| is_number_byte(b))
            .count();
        let after = buf[end..].iter().take_while(|b| is_number_byte(b)).count();
        before + 8 + after > EXACT_DIGITS
    })
}

/// Whether a digit is followed by `e` or `E` where a number can stand: after `:`, `,`, `[` or
/// the start, so hex text inside strings does not count. Pairs are looked for a block at a time
/// (a loop the compiler vectorises) and only blocks holding one are walked.
fn has_exponent(buf: &[u8]) -> bool {
    const BLOCK: usize = 64;
    let is_pair = |a: u8, b: u8| a.is_ascii_digit() && (b | 0x20) == b'e';
    let pairs = buf.len().saturating_sub(1);
    (0..pairs).step_by(BLOCK).any(|start| {
        let end = (start + BLOCK).min(pairs);
        let (first, second) = (&buf[start..end], &buf[start + 1..=end]);
        // Byte-wide lanes, as in `openers`.
        let found = first
            .iter()
            .zip(second)
            .fold(0u8, |found, (&a, &b)| found | u8::from(is_pair(a, b)));
        found != 0 && (start..end).any(|i| is_pair(buf[i], buf[i + 1]) && in_number_context(buf, i))
    })
}

/// Whether the digit at `at` belongs to a number token: walking back over its digits, point
/// and sign, and any whitespace, reaches a byte after which a value can start.
fn in_number_context(buf: &[u8], at: usize) -> bool {
    let mut j = at;
    while j > 0 && matches!(buf[j - 1], b'0'..=b'9' | b'.') {
        j -= 1;
    }
    if j > 0 && buf[j - 1] == b'-' {
        j -= 1;
    }
    while j > 0 && matches!(buf[j - 1], b' ' | b'\t' | b'\n' | b'\r') {
        j -= 1;
    }
    j == 0 || matches!(buf[j - 1], b':' | b',' | b'[')
}

/// Scans `buf`; refuses lone surrogate escapes and nesting past [`MAX_DEPTH`] at once.
/// Invalid JSON may give meaningless findings, which is fine: the parser refuses it afterwards.
pub(super) fn scan(buf: &[u8]) -> Result<Findings, DecodeError> {
    let mut findings = Findings::default();
    let mut depth = 0usize;
    let mut i = 0;
    loop {
        // Whitespace, `:`, `,` and literals: skipped by one table lookup each.
        let Some(at) = buf[i..]
            .iter()
            .position(|&b| CLASS[usize::from(b)] != OTHER)
        else {
            return Ok(findings);
        };
        i += at + 1;
        match CLASS[usize::from(buf[i - 1])] {
            QUOTE => i = string_end(buf, i, &mut findings)?,
            OPEN => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
            }
            CLOSE => depth = depth.saturating_sub(1),
            _ => {
                let end = number_end(buf, i - 1);
                findings.inexact_number |= is_inexact(&buf[i - 1..end]);
                i = end;
            }
        }
    }
}

const OTHER: u8 = 0;
const QUOTE: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;
const NUMBER: u8 = 4;

/// What each byte means outside strings.
static CLASS: [u8; 256] = {
    let mut class = [OTHER; 256];
    class[b'"' as usize] = QUOTE;
    class[b'[' as usize] = OPEN;
    class[b'{' as usize] = OPEN;
    class[b']' as usize] = CLOSE;
    class[b'}' as usize] = CLOSE;
    class[b'-' as usize] = NUMBER;
    let mut digit = b'0';
    while digit <= b'9' {
        class[digit as usize] = NUMBER;
        digit += 1;
    }
    class
};

/// The end of the number-like run starting at `start`: the bytes a JSON number may contain.
pub(super) fn number_end(buf: &[u8], start: usize) -> usize {
    let run = buf[start..]
        .iter()
        .take_while(|&&b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
        .count();
    start + run
}

/// An exponent, or more digits than f64 is sure to keep. Leading zeros count too, which
/// only sends a few harmless numbers down the slow path.
pub(super) fn is_inexact(token: &[u8]) -> bool {
    let long = token.len() > EXACT_DIGITS
        && token.iter().filter(|b| b.is_ascii_digit()).count() > EXACT_DIGITS;
    long || token.iter().any(|&b| b == b'e' || b == b'E')
}

/// The index just past the string whose opening quote is before `i` (the end of `buf` when it
/// is unterminated), checking its `\u` escapes on the way.
pub(super) fn string_end(
    buf: &[u8],
    mut i: usize,
    findings: &mut Findings,
) -> Result<usize, DecodeError> {
    loop {
        // Eight bytes at a time while none is a quote or a backslash: most string bytes.
        while let Some(word) = buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            match first_quote_or_backslash(u64::from_le_bytes(word)) {
                Some(at) => {
                    i += at;
                    break;
                }
                None => i += 8,
            }
        }
        match buf.get(i) {
            None => return Ok(buf.len()),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i = escape_end(buf, i, findings)?,
            Some(_) => i += 1,
        }
    }
}

/// Offset of the first `"` or `\` in the eight bytes of `word` (little-endian), if any.
/// The classic zero-byte test: borrows only run upwards from a real zero byte, so the lowest
/// flag is exact even where higher ones are not.
fn first_quote_or_backslash(word: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let flags =
        zero_byte(word ^ (ONES * u64::from(b'"'))) | zero_byte(word ^ (ONES * u64::from(b'\\')));
    (flags != 0).then(|| flags.trailing_zeros() as usize / 8)
}

/// The index past the escape starting with the backslash at `i`.
fn escape_end(buf: &[u8], i: usize, findings: &mut Findings) -> Result<usize, DecodeError> {
    if buf.get(i + 1) != Some(&b'u') {
        return Ok(i + 2);
    }
    let unit = hex4(buf, i + 2).ok_or(DecodeError::Syntax)?;
    match unit {
        0 => findings.nul = true,
        0xD800..=0xDBFF => {
            let low = (buf.get(i + 6..i + 8) == Some(b"\\u"))
                .then(|| hex4(buf, i + 8))
                .flatten();
            return match low {
                Some(0xDC00..=0xDFFF) => Ok(i + 12),
                _ => Err(DecodeError::LoneSurrogate),
            };
        }
        0xDC00..=0xDFFF => return Err(DecodeError::LoneSurrogate),
        _ => {}
    }
    Ok(i + 6)
}

fn hex4(buf: &[u8], at: usize) -> Option<u16> {
    let text = std::str::from_utf8(buf.get(at..at + 4)?).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(s: &str) -> Result<Findings, DecodeError> {
        scan(s.as_bytes())
    }

    #[test]
    fn finds_quotes_and_backslashes_in_words() {
        assert_eq!(
            first_quote_or_backslash(u64::from_le_bytes(*b"abcdefgh")),
            None
        );
        assert_eq!(
            first_quote_or_backslash(u64::from_le_bytes(*b"abc\"efgh")),
            Some(3)
        );
        assert_eq!(
            first_quote_or_backslash(u64::from_le_bytes(*b"\\bc\"efgh")),
            Some(0)
        );
        assert_eq!(
            first_quote_or_backslash(u64::from_le_bytes(*b"abcdefg\\")),
            Some(7)
        );
        // 0x21 ('!') and 0x5d (']') sit one off the targets; a borrow must not flag them.
        assert_eq!(
            first_quote_or_backslash(u64::from_le_bytes(*b"!]#[!]#[")),
            None
        );
    }

    #[test]
    fn the_quick_look_misses_nothing_the_scan_finds() {
        for s in [
            r#"{"a": "\\u0000"}"#,
            "[1234567890123456]",
            "[-0.123456789012345]",
            "{\"a\":1e400}",
            "[1, 2.5E-3]",
            "1e5",
            "{\"a\": [ -1.5e2]}",
        ] {
            assert!(needs_scan(s.as_bytes()), "{s}");
        }
        let nested = "[".repeat(MAX_DEPTH + 1);
        assert!(needs_scan(nested.as_bytes()));
        // Openers spread over many of the count's 255-byte blocks, each block full of them or
        // of none, and exactly at the limit and one past it.
        for (count, filler) in [(MAX_DEPTH, 0), (MAX_DEPTH + 1, 0), (MAX_DEPTH + 1, 300)] {
            let body: String = (0..count)
                .map(|i| if i % 2 == 0 { "{\"a\":" } else { "[" })
                .collect::<String>()
                + &" ".repeat(filler);
            assert_eq!(openers(body.as_bytes()), count);
            assert_eq!(needs_scan(body.as_bytes()), count > MAX_DEPTH, "{count}");
        }
        let full = "[".repeat(1000);
        assert_eq!(
            openers(full.as_bytes()),
            1000,
            "blocks of 255 openers do not wrap"
        );
    }

    #[test]
    fn the_quick_look_passes_the_bench_event() {
        let bench = include_str!("../../benches/validate.rs");
        let event = bench
            .split("const EVENT: &str = r#\"")
            .nth(1)
            .and_then(|s| s.split("\"#;").next());
        let event = event.expect("the bench event");
        assert!(!needs_scan(event.as_bytes()));
    }

    #[test]
    fn the_quick_look_passes_plain_bodies() {
        for s in [
            r#"{"sig": "t=1715934093,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"}"#,
            r#"{"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "n": [123456789012345, -1.5, 0]}"#,
            r#"{"at": "2024-05-17T10:21:33.123+02:00", "ok": true, "none": null}"#,
        ] {
            assert!(!needs_scan(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn plain_bodies_find_nothing() {
        let clean = Findings::default();
        assert_eq!(
            found(r#"{"a": [1, 2.5, -3, "x\"y\\u0000"], "e": "1e5 \\"}"#),
            Ok(clean)
        );
        assert_eq!(
            found(r#"{"id": 123456789012345, "hex": "869e7ec"}"#),
            Ok(clean)
        );
    }

    #[test]
    fn flags_nul_escapes_in_values_and_keys() {
        assert!(found(r#"{"a": "x\u0000"}"#).is_ok_and(|f| f.nul));
        assert!(found(r#"{"\u0000": 1}"#).is_ok_and(|f| f.nul));
        assert!(found(r#"{"a": "\\\u0000"}"#).is_ok_and(|f| f.nul));
        assert!(found(r#"{"a": "\\u0000"}"#).is_ok_and(|f| !f.nul));
    }

    #[test]
    fn refuses_lone_surrogates_and_keeps_pairs() {
        for s in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\uDBFF x""#,
            r#""\ud800"#,
        ] {
            assert_eq!(found(s), Err(DecodeError::LoneSurrogate), "{s}");
        }
        assert!(found(r#""\ud83d\ude00""#).is_ok());
        assert!(found(r#""\\ud800""#).is_ok());
    }

    #[test]
    fn flags_numbers_floats_may_not_hold() {
        for s in [
            "18446744073709551616",
            "[1e400]",
            "{\"a\": 1.5E2}",
            "0.1000000000000000055511151231257827",
            "1234567.123456789",
        ] {
            assert!(found(s).is_ok_and(|f| f.inexact_number), "{s}");
        }
        for s in ["123456789012345", "[19.99, -0.5]", "\"1e400\"", "true"] {
            assert!(found(s).is_ok_and(|f| !f.inexact_number), "{s}");
        }
    }
}
