//! Email addresses: trimmed and lower-cased so one person is one contact, with a basic shape
//! check. Full RFC 5322 parsing would accept addresses no mailbox provider issues.

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// The canonical form of an email address, or None when it does not look like one: exactly one
/// `@`, a non-empty local part of at most 64 bytes, a dotted domain without empty labels, no
/// whitespace or control characters, at most 254 bytes in all.
pub fn email(raw: &str) -> Option<String> {
    let address = raw.trim().to_lowercase();
    if address.len() > MAX_LEN || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = address.split_once('@')?;
    let domain_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
    let local_ok = !local.is_empty() && local.len() <= MAX_LOCAL_LEN;
    (local_ok && domain_ok && !domain.contains('@')).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::email;

    #[test]
    fn trims_and_lower_cases() {
        assert_eq!(
            email("  John.Doe@Example.ORG ").as_deref(),
            Some("john.doe@example.org")
        );
        assert_eq!(
            email("a+tag@sub.example.co.uk").as_deref(),
            Some("a+tag@sub.example.co.uk")
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        for raw in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@localhost",
            "a@b@c.org",
            "a b@c.org",
            "a@c..org",
            "a@.c.org",
            "a@c.org.",
            "a@c.\u{7}org",
        ] {
            assert_eq!(email(raw), None, "{raw:?}");
        }
        let long = format!("{}@example.org", "a".repeat(65));
        assert_eq!(email(&long), None);
        let too_long = format!("a@{}.org", "b".repeat(250));
        assert_eq!(email(&too_long), None);
    }
}
