//! Email addresses: trimmed and lower-cased so one person is one contact, with a basic shape
//! check. Full RFC 5322 parsing would accept addresses no mailbox provider issues.

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// The canonical form of an email address, or None when it does not look like one: exactly one
/// `@`, a non-empty local part of at most 64 bytes, a dotted domain without empty labels, no
/// whitespace, control or invisible characters, at most 254 bytes in all.
pub fn email(raw: &str) -> Option<String> {
    let address = raw.trim().to_lowercase();
    if address.len() > MAX_LEN || address.chars().any(is_invisible) {
        return None;
    }
    let (local, domain) = address.split_once('@')?;
    let domain_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
    let local_ok = !local.is_empty() && local.len() <= MAX_LOCAL_LEN;
    (local_ok && domain_ok && !domain.contains('@')).then_some(address)
}

/// Characters that show nothing, or only space, yet make two addresses differ: whitespace,
/// controls, Unicode format characters (category Cf: zero-width space and joiners, word joiner,
/// byte-order mark, bidirectional marks and isolates, tags…) and the other default-ignorable
/// code points (fillers, variation selectors, the combining grapheme joiner).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            u32::from(c),
            0x00AD
                | 0x034F
                | 0x061C
                | 0x0600..=0x0605
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x206F
                | 0x2800
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

#[cfg(test)]
mod tests {
    use super::email;

    #[test]
    fn refuses_invisible_characters() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{202E}',
            '\u{2066}',
            '\u{180E}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{3164}',
            '\u{00A0}',
            '\u{3000}',
            '\u{85}',
        ] {
            for raw in [format!("a{c}b@example.org"), format!("ab@exa{c}mple.org")] {
                assert_eq!(email(&raw), None, "{raw:?}");
            }
            // At either end only whitespace is trimmed; anything else invisible is refused.
            let trailing = email(&format!("ab@example.org{c}"));
            let want = c.is_whitespace().then(|| "ab@example.org".to_owned());
            assert_eq!(trailing, want, "{c:?} at the end");
        }
        // Visible non-ASCII stays accepted (internationalised addresses).
        assert_eq!(
            email("José@Café.example").as_deref(),
            Some("josé@café.example")
        );
    }

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
