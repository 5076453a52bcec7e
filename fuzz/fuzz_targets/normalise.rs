//! The email, phone and date normalisers on arbitrary strings. Each result must be in its
//! canonical shape and normalise to itself (the module promises idempotence).
//!
//! Input: the raw value, then optionally a newline and a phone country code (the registry
//! only stores digit codes, but the normaliser must not misbehave on others either).

#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::normalise;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (raw, country_code) = text.split_once('\n').unwrap_or((text, "34"));
    // The date and email checks use the whole input too: newlines are part of what they refuse.
    for value in [raw, text] {
        check_email(value);
        check_date(value);
    }
    check_phone(raw, country_code);
});

fn check_email(raw: &str) {
    let Some(email) = normalise::email(raw) else {
        return;
    };
    assert_eq!(normalise::email(&email).as_deref(), Some(email.as_str()));
    assert_eq!(email.matches('@').count(), 1, "{email:?}");
    assert!(email.len() <= 254, "{email:?}");
    assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()));
}

fn check_phone(raw: &str, country_code: &str) {
    let Some(phone) = normalise::phone(raw, country_code) else {
        return;
    };
    let digits = phone.strip_prefix('+').expect("E.164 starts with +");
    assert!((8..=15).contains(&digits.len()), "{phone:?}");
    assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
    // With its `+`, a normalised number ignores the country code.
    assert_eq!(
        normalise::phone(&phone, "1").as_deref(),
        Some(phone.as_str())
    );
    assert_eq!(
        normalise::phone(&phone, country_code).as_deref(),
        Some(phone.as_str())
    );
}

fn check_date(raw: &str) {
    let Some(date) = normalise::date(raw) else {
        return;
    };
    assert_eq!(normalise::date(&date).as_deref(), Some(date.as_str()));
    let shape = date.len() >= 20
        && date.ends_with('Z')
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[10] == b'T';
    assert!(shape, "{date:?} is not RFC 3339 UTC");
}
