//! Phone numbers to E.164 (`+` and 8–15 digits), so the same number typed with spaces, a
//! trunk prefix or an international `00` prefix is stored once.

/// The E.164 form of `raw`, using `country_code` (digits) when the number has no international
/// prefix. Spaces, dashes, dots and parentheses are dropped; `+…` is kept; `00…` becomes `+…`;
/// otherwise one leading trunk `0` is dropped and `+{country_code}` prefixed.
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
        let national = compact.strip_prefix('0').unwrap_or(&compact);
        if national.is_empty() {
            return None;
        }
        format!("{country_code}{national}")
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
