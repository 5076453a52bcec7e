//! Identifiers users choose: an event type's alias (part of ingest URLs) and a field's id (the
//! default JSON pointer `/{id}` and template name `{{event.<id>}}`). Both are checked once,
//! here, so every other module can rely on their shape.

use serde::{Deserialize, Serialize};

const MAX_LEN: usize = 64;

/// The pattern both identifiers share: 1–64 characters of `A-Z a-z 0-9 _ -`.
fn check(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("may only contain letters A-Z and a-z, digits, \"_\" and \"-\"".into());
    }
    Ok(())
}

/// Names an event type within a store in ingest URLs: `/custom-events/alias/{alias}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Alias(String);

impl Alias {
    /// Accepts 1–64 characters of `[A-Za-z0-9_-]`; the error says which part failed.
    pub fn parse(s: &str) -> Result<Self, String> {
        check(s).map(|()| Self(s.to_owned()))
    }

    /// The alias text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Identifies a field within an event type; the key of its value in events and envelopes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldId(String);

impl FieldId {
    /// Accepts 1–64 characters of `[A-Za-z0-9_-]`; the error says which part failed.
    pub fn parse(s: &str) -> Result<Self, String> {
        check(s).map(|()| Self(s.to_owned()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_conversions {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                check(&s).map(|()| Self(s))
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_conversions!(Alias);
string_conversions!(FieldId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_pattern() {
        for s in ["a", "order-paid", "Order_Paid_2", &"x".repeat(64)] {
            assert!(Alias::parse(s).is_ok(), "{s}");
            assert!(FieldId::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            "",
            "has space",
            "dot.ted",
            "slash/",
            "é",
            "tilde~",
            &"x".repeat(65),
        ] {
            assert!(Alias::parse(s).is_err(), "{s}");
            assert!(FieldId::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn serde_checks_too() {
        assert!(serde_json::from_str::<Alias>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<Alias>("\"not ok\"").is_err());
        let id = FieldId::parse("email").expect("valid");
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some("\"email\"")
        );
    }
}
