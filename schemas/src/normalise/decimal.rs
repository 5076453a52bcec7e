//! Decimal numbers to one exact canonical text, so `19.99`, `19.990` and `1.999e1` are stored
//! alike and nothing is rounded through a binary float on the way.
//!
//! The canonical form: an optional `-`, the integer digits without leading zeros (`0` when
//! there are none), then `.` and the fractional digits only when some are non-zero, without
//! trailing zeros. No `+`, no exponent, no negative zero. `-001.2300e2` is `-123`,
//! `0.000` is `0`, `1e-3` is `0.001`.

/// Why text is not a decimal this crate can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a number at all.
    NotANumber,
    /// A number whose magnitude a 64-bit float cannot hold: above about 1.8e308, or non-zero
    /// but below about 4.9e-324. Bounding the exponent bounds the canonical text's length.
    OutOfRange,
}

/// The canonical text of a decimal written as people and loose senders write it: surrounding
/// whitespace, a leading `+`, `.5` and `5.` are accepted, as is an exponent.
pub fn decimal(raw: &str) -> Result<String, DecimalError> {
    let s = raw.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !digits_ok(int) || !digits_ok(frac) {
        return Err(DecimalError::NotANumber);
    }
    let exponent = match exponent {
        Some(e) => parse_exponent(e).ok_or(DecimalError::NotANumber)?,
        None => 0,
    };
    canonical(negative, int, frac, exponent)
}

/// True when `token` is a number exactly as RFC 8259 writes one:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(crate) fn is_json_number(token: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = token.strip_prefix(b"-").unwrap_or(token);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest[0] == b'0') {
        return false;
    }
    rest = &rest[int..];
    if let Some(after) = rest.strip_prefix(b".") {
        let frac = digits(after);
        if frac == 0 {
            return false;
        }
        rest = &after[frac..];
    }
    if let Some(after) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let after = after
            .strip_prefix(b"+")
            .or_else(|| after.strip_prefix(b"-"))
            .unwrap_or(after);
        let exp = digits(after);
        return exp > 0 && exp == after.len();
    }
    rest.is_empty()
}

/// An exponent's value, saturated: anything beyond ±10^18 is out of range for every non-zero
/// mantissa, and zero stays zero whatever its exponent.
fn parse_exponent(e: &str) -> Option<i64> {
    let (negative, digits) = match e.as_bytes().first() {
        Some(b'-') => (true, &e[1..]),
        Some(b'+') => (false, &e[1..]),
        _ => (false, e),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(i64::from(b - b'0'))
            .min(1_000_000_000_000_000_000)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// Largest decimal point shift worth computing: past it the value is out of f64's range.
const MAX_SHIFT: i64 = 400;

fn canonical(negative: bool, int: &str, frac: &str, exponent: i64) -> Result<String, DecimalError> {
    // All digits in one run, with the decimal point `point` digits from its start.
    let all = || int.bytes().chain(frac.bytes());
    let leading = all().take_while(|&b| b == b'0').count();
    let total = int.len() + frac.len();
    if leading == total {
        return Ok("0".to_owned());
    }
    let trailing = all().rev().take_while(|&b| b == b'0').count();
    let significant: Vec<u8> = all()
        .skip(leading)
        .take(total - leading - trailing)
        .collect();
    let point = i64::try_from(int.len())
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(leading).unwrap_or(i64::MAX))
        .saturating_add(exponent);
    // The value is 0.{significant} × 10^point. f64 holds magnitudes in [4.9e-324, 1.8e308].
    if !(-MAX_SHIFT..=MAX_SHIFT).contains(&point) {
        return Err(DecimalError::OutOfRange);
    }
    if !(-300..=300).contains(&point) {
        let text = format!("0.{}e{point}", String::from_utf8_lossy(&significant));
        let f: f64 = text.parse().map_err(|_| DecimalError::OutOfRange)?;
        if !f.is_finite() || f == 0.0 {
            return Err(DecimalError::OutOfRange);
        }
    }
    let digits = String::from_utf8_lossy(&significant);
    let mut out = String::with_capacity(digits.len() + 4);
    if negative {
        out.push('-');
    }
    let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(usize::try_from(-point).unwrap_or(0)));
        out.push_str(&digits);
    } else if point >= len {
        out.push_str(&digits);
        out.push_str(&"0".repeat(usize::try_from(point - len).unwrap_or(0)));
    } else {
        let at = usize::try_from(point).unwrap_or(0);
        out.push_str(&digits[..at]);
        out.push('.');
        out.push_str(&digits[at..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("19.99", "19.99"),
            ("19.990", "19.99"),
            ("1.999e1", "19.99"),
            ("-001.2300e2", "-123"),
            ("0.000", "0"),
            ("-0", "0"),
            ("-0.0e5", "0"),
            ("1e-3", "0.001"),
            ("+5", "5"),
            (" .5 ", "0.5"),
            ("5.", "5"),
            ("1E+2", "100"),
            ("0e999999999999999999999", "0"),
            ("18446744073709551616", "18446744073709551616"),
            (
                "0.1000000000000000055511151231257827",
                "0.1000000000000000055511151231257827",
            ),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(decimal(raw).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn huge_and_tiny_exponents_are_out_of_range() {
        for raw in [
            "1e400",
            "-1e309",
            "1e-400",
            "1e99999999999999999999999",
            "2e308",
        ] {
            assert_eq!(decimal(raw), Err(DecimalError::OutOfRange), "{raw:?}");
        }
        assert!(decimal("1.7976931348623157e308").is_ok());
        assert!(decimal("5e-324").is_ok());
    }

    #[test]
    fn refuses_non_numbers() {
        for raw in [
            "", "-", ".", "e5", "1e", "1e+", "NaN", "inf", "1.2.3", "0x10", "1_000", "--1",
        ] {
            assert_eq!(decimal(raw), Err(DecimalError::NotANumber), "{raw:?}");
        }
    }

    #[test]
    fn json_number_grammar() {
        for ok in ["0", "-0", "1.5", "10", "1e5", "1E-5", "-0.5e+10"] {
            assert!(is_json_number(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            "01", "-", "1.", ".5", "1e", "+1", "1e+", "1-2", "1.5.2", "--1", "1ee5",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad:?}");
        }
    }
}
