//! One field of an event type: its model, and the rules that apply to a single field
//! (cross-field rules such as unique ids live in `parse.rs`).

use serde::{Deserialize, Serialize};

use super::{Category, FieldId};
use crate::{pointer, ObjectReader, Value, Violation};

const MAX_OPTIONS: usize = 500;

/// A field of an event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// Unique within the type; the key of the value in events.
    pub id: FieldId,
    /// Display name, 1–255 characters.
    pub name: String,
    /// What values are accepted and how they are normalised.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether every event must carry a value.
    pub required: bool,
    /// Whether the value identifies the contact (an email field).
    #[serde(default)]
    pub is_primary_key: bool,
    /// Where lenient modes look for the value; `/{id}` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_pointer_path: Option<String>,
    /// Calling code (1–3 digits) for phone numbers given without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_country_code: Option<String>,
    /// Allowed values of checkbox and radio fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<FieldOption>,
}

/// An allowed value of a checkbox or radio field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldOption {
    /// The value sent in events, 1–64 characters.
    pub id: String,
    /// What people see, 1–255 characters.
    pub label: String,
}

/// The kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Free text up to 65536 characters.
    Text,
    /// An email address, lower-cased.
    Email,
    /// A finite floating-point number.
    Decimal,
    /// A 64-bit signed integer.
    Integer,
    /// A date or date-time, stored as RFC 3339 UTC.
    Date,
    /// A phone number, stored as E.164.
    Phone,
    /// True or false.
    Boolean,
    /// Any number of option ids.
    Checkbox,
    /// Exactly one option id.
    Radio,
}

impl FieldType {
    const ALL: [Self; 9] = [
        Self::Text,
        Self::Email,
        Self::Decimal,
        Self::Integer,
        Self::Date,
        Self::Phone,
        Self::Boolean,
        Self::Checkbox,
        Self::Radio,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Email => "email",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::Date => "date",
            Self::Phone => "phone",
            Self::Boolean => "boolean",
            Self::Checkbox => "checkbox",
            Self::Radio => "radio",
        }
    }

    fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn has_options(self) -> bool {
        matches!(self, Self::Checkbox | Self::Radio)
    }
}

/// What the cross-field rules need from a field, even one that broke its own rules.
#[derive(Debug, Default)]
pub(super) struct ParsedField {
    pub(super) id: Option<FieldId>,
    pub(super) is_primary_key: bool,
    pub(super) field: Option<Field>,
}

/// Checks `fields[i]`. `category` is None when the body's own category was unusable, in which
/// case category-dependent rules are skipped rather than guessed.
pub(super) fn parse_field(
    value: &Value<'_>,
    path: &str,
    category: Option<Category>,
    violations: &mut Vec<Violation>,
) -> ParsedField {
    let start = violations.len();
    let Some(mut r) = ObjectReader::new(value, path, violations) else {
        return ParsedField::default();
    };
    let id = r.string("id", true, usize::MAX).and_then(|s| {
        let parsed = FieldId::parse(&s).map_err(|m| r.violate("id", m)).ok()?;
        if s == "_trackerId" {
            r.violate("id", "is reserved for the visitor's tracker id");
            return None;
        }
        Some(parsed)
    });
    let name = r.string("name", true, 255);
    let kind = r.string("type", true, usize::MAX).and_then(|s| {
        let kind = FieldType::from_wire(&s);
        if kind.is_none() {
            r.violate("type", "must be one of: text, email, decimal, integer, date, phone, boolean, checkbox, radio");
        }
        kind
    });
    let required = r.bool("required", true);
    let is_primary_key = r.bool("isPrimaryKey", false).unwrap_or(false);
    let json_pointer_path = read_pointer(&mut r, category);
    let default_country_code = read_country_code(&mut r, kind);
    let options = read_options(&mut r, kind);

    if is_primary_key {
        if kind.is_some_and(|k| k != FieldType::Email) {
            r.violate("type", "must be email because the field is the primary key");
        }
        if required == Some(false) {
            r.violate(
                "required",
                "must be true because the field is the primary key",
            );
        }
    }
    r.finish();
    // Any violation means the field is refused as a whole; what the reads returned is then
    // only used for the cross-field rules.
    let clean = violations.len() == start;
    let field = match (id.clone(), name, kind, required) {
        (Some(id), Some(name), Some(kind), Some(required)) if clean => Some(Field {
            id,
            name,
            kind,
            required,
            is_primary_key,
            json_pointer_path,
            default_country_code,
            options,
        }),
        _ => None,
    };
    ParsedField {
        id,
        is_primary_key,
        field,
    }
}

/// `jsonPointerPath`: a valid RFC 6901 pointer of at most 1024 characters; receive types only.
fn read_pointer(r: &mut ObjectReader<'_, '_>, category: Option<Category>) -> Option<String> {
    const KEY: &str = "jsonPointerPath";
    if category == Some(Category::Send) {
        if r.has(KEY) {
            r.violate(KEY, "not allowed when category is send");
        }
        return None;
    }
    let text = r.string(KEY, false, 1024)?;
    match pointer::parse(&text) {
        Ok(_) => Some(text),
        Err(message) => {
            r.violate(KEY, message);
            None
        }
    }
}

/// `defaultCountryCode`: 1–3 digits, required for phone fields and refused for the others.
fn read_country_code(r: &mut ObjectReader<'_, '_>, kind: Option<FieldType>) -> Option<String> {
    const KEY: &str = "defaultCountryCode";
    if kind.is_some_and(|k| k != FieldType::Phone) {
        if r.has(KEY) {
            r.violate(KEY, "only allowed for phone fields");
        }
        return None;
    }
    let code = r.string(KEY, kind == Some(FieldType::Phone), usize::MAX)?;
    let digits = code.bytes().all(|b| b.is_ascii_digit());
    if !(1..=3).contains(&code.len()) || !digits || code.starts_with('0') {
        r.violate(KEY, "must be 1 to 3 digits, not starting with 0");
        return None;
    }
    Some(code)
}

/// `options`: required and non-empty for checkbox and radio fields, refused for the others;
/// option ids unique.
fn read_options(r: &mut ObjectReader<'_, '_>, kind: Option<FieldType>) -> Vec<FieldOption> {
    const KEY: &str = "options";
    if kind.is_some_and(|k| !k.has_options()) {
        if r.has(KEY) {
            r.violate(KEY, "only allowed for checkbox and radio fields");
        }
        return Vec::new();
    }
    let Some(items) = r.array(KEY, kind.is_some_and(FieldType::has_options)) else {
        return Vec::new();
    };
    if items.is_empty() {
        r.violate(KEY, "must contain at least 1 option");
    } else if items.len() > MAX_OPTIONS {
        r.violate(KEY, format!("must contain at most {MAX_OPTIONS} options"));
    }
    let base = r.child_path(KEY);
    let mut options: Vec<FieldOption> = Vec::with_capacity(items.len());
    let mut seen: Vec<String> = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let path = format!("{base}/{j}");
        let Some(mut o) = ObjectReader::new(item, &path, r.violations()) else {
            continue;
        };
        let id = o.string("id", true, 64);
        let label = o.string("label", true, 255);
        if let Some(id) = &id {
            if seen.contains(id) {
                o.violate("id", "duplicate option id");
            }
            seen.push(id.clone());
        }
        o.finish();
        if let (Some(id), Some(label)) = (id, label) {
            options.push(FieldOption { id, label });
        }
    }
    options
}
