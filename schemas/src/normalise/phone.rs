//! Phone numbers to E.164 (`+` and 8–15 digits), so the same number typed with spaces, a
//! trunk prefix or an international `00` prefix is stored once.

/// Digits after the country code from which a number written without `+` is taken to carry its
/// code already. National significant numbers in most plans have 9 or 10 digits, and ones
/// that begin with their own country code and run this long are rare; so `34612345678` with
/// code 34 is `+34612345678`, while India's `9123456789` with code 91 stays national.
/// The rule cannot be right everywhere without per-country metadata: an 11-digit national
/// number beginning with its code (Brazil's area code 55) is read as international, and an
/// 8-digit plan's number written with its code but no `+` (Denmark, Norway) gets the code twice.
/// Senders avoid both by writing `+`.
const MIN_SUBSCRIBER_DIGITS: usize = 9;

/// The E.164 form of `raw`, using `country_code` (digits) when the number has no international
/// prefix. Spaces, dashes, dots and parentheses are dropped; `+…` is kept; `00…` becomes `+…`;
/// a number that starts with one trunk `0` has it dropped and `+{country_code}` prefixed; one
/// that already starts with `country_code` and has at least [`MIN_SUBSCRIBER_DIGITS`] digits
/// after it only gets the `+`; any other gets `+{country_code}`.
pub fn phone(raw: &str, country_code: &str) -> Option<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')')))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest.to_owned()
    } else {
        let carries_code = !country_code.is_empty()
            && compact.starts_with(country_code)
            && compact.len() >= country_code.len() + MIN_SUBSCRIBER_DIGITS;
        if carries_code {
            compact
        } else {
            let national = compact.strip_prefix('0').unwrap_or(&compact);
            if national.is_empty() {
                return None;
            }
            format!("{country_code}{national}")
        }
    };
    let valid = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    valid.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::phone;

    #[test]
    fn normalises_common_forms() {
        let cases = [
            ("+34 666 777 888", "+34666777888"),
            ("0034-666-777-888", "+34666777888"),
            ("666777888", "+34666777888"),
            ("(0) 666.777.888", "+34666777888"),
            ("+34666777888", "+34666777888"),
        ];
        for (raw, want) in cases {
            assert_eq!(phone(raw, "34").as_deref(), Some(want), "{raw:?}");
        }
        assert_eq!(
            phone("020 7946 0958", "44").as_deref(),
            Some("+442079460958")
        );
    }

    #[test]
    fn a_number_carrying_its_country_code_does_not_get_it_twice() {
        let cases = [
            ("34612345678", "34", "+34612345678"),
            ("34 612 345 678", "34", "+34612345678"),
            ("12025550143", "1", "+12025550143"),
            ("447911123456", "44", "+447911123456"),
            // National numbers that merely begin with the code's digits stay national.
            ("9123456789", "91", "+919123456789"),
            ("34123456", "34", "+3434123456"),
        ];
        for (raw, cc, want) in cases {
            assert_eq!(phone(raw, cc).as_deref(), Some(want), "{raw:?} with {cc}");
        }
    }

    #[test]
    fn refuses_non_numbers_and_bad_lengths() {
        for raw in [
            "",
            "+",
            "0",
            "12ab5678",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            "++34666777888",
        ] {
            assert_eq!(phone(raw, "34"), None, "{raw:?}");
        }
    }
}
