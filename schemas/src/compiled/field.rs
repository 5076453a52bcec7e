//! One field compiled for ingest, and how each field type accepts and normalises a value.
//! Strict mode (api) wants the JSON type itself; lenient modes (webhook, SDK) also take the
//! string forms that form posts and loosely typed senders produce.

use serde_json::Value as Json;
use simd_json::prelude::*;
use simd_json::StaticNode;

use crate::normalise::DecimalError;
use crate::{decode, normalise, pointer, Field, FieldType, Value, Violation};

const MAX_TEXT_CHARS: usize = 65_536;

#[derive(Debug, Clone)]
pub(super) struct CompiledField {
    pub(super) id: String,
    kind: FieldType,
    pub(super) required: bool,
    /// Where the value is looked up, unescaped.
    pub(super) tokens: Vec<String>,
    /// The same place as pointer text, for violations.
    path: String,
    country_code: String,
    options: Vec<String>,
}

impl CompiledField {
    /// Strict mode always reads `/{id}`; lenient modes use `jsonPointerPath` when set.
    pub(super) fn new(field: &Field, strict: bool) -> Self {
        let id = field.id.as_str().to_owned();
        let configured = field.json_pointer_path.as_deref().filter(|_| !strict);
        // A definition that passed `parse` has a valid pointer; one that somehow did not falls
        // back to the default rather than failing every event.
        let (path, tokens) = match configured.map(|p| (p, pointer::parse(p))) {
            Some((p, Ok(tokens))) => (p.to_owned(), tokens),
            _ => (format!("/{}", pointer::escape(&id)), vec![id.clone()]),
        };
        Self {
            id,
            kind: field.kind,
            required: field.required,
            tokens,
            path,
            country_code: field.default_country_code.clone().unwrap_or_default(),
            options: field.options.iter().map(|o| o.id.clone()).collect(),
        }
    }

    /// A violation at this field's lookup path, naming the field.
    pub(super) fn violation(&self, message: impl std::fmt::Display) -> Violation {
        Violation::new(
            self.path.clone(),
            format!("field \"{}\" {message}", self.id),
        )
    }

    /// The normalised value, or what is wrong with `raw`.
    pub(super) fn coerce(&self, raw: &Value<'_>, strict: bool) -> Result<Json, String> {
        let lenient = !strict;
        let fail = |m: &str| Err(m.to_owned());
        match self.kind {
            FieldType::Text => match text(raw, lenient) {
                Some(s) if s.chars().count() > MAX_TEXT_CHARS => {
                    Err(format!("must be at most {MAX_TEXT_CHARS} characters"))
                }
                Some(s) => Ok(Json::String(s)),
                None => fail("must be a string"),
            },
            FieldType::Email => match raw.as_str().and_then(normalise::email) {
                Some(email) => Ok(Json::String(email)),
                None => fail("must be a valid email address"),
            },
            FieldType::Integer => integer(raw, lenient).map(Json::from).map_err(str::to_owned),
            FieldType::Decimal => decimal(raw).map(Json::String).map_err(str::to_owned),
            FieldType::Boolean => match boolean(raw, lenient) {
                Some(b) => Ok(Json::Bool(b)),
                None => fail("must be a boolean"),
            },
            FieldType::Date => match raw.as_str().and_then(normalise::date) {
                Some(date) => Ok(Json::String(date)),
                None => fail("must be a date (YYYY-MM-DD) or a date-time with a time zone offset"),
            },
            FieldType::Phone => {
                let raw = text(raw, lenient);
                match raw.and_then(|p| normalise::phone(&p, &self.country_code)) {
                    Some(phone) => Ok(Json::String(phone)),
                    None => fail("must be a phone number"),
                }
            }
            FieldType::Radio => match text(raw, lenient) {
                Some(id) if self.options.contains(&id) => Ok(Json::String(id)),
                Some(_) => fail("must be one of the field's option ids"),
                None => fail("must be a string option id"),
            },
            FieldType::Checkbox => self.checkbox(raw, lenient),
        }
    }

    /// Known option ids, deduplicated, in the order given. Lenient modes also take one string
    /// of comma-separated ids (or a single id that itself contains a comma).
    fn checkbox(&self, raw: &Value<'_>, lenient: bool) -> Result<Json, String> {
        let given: Vec<&str> = match raw {
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str())
                .collect::<Option<_>>()
                .ok_or("must be an array of option ids")?,
            Value::String(s) if lenient => {
                if self.options.iter().any(|o| o == s.as_ref()) {
                    vec![s.as_ref()]
                } else {
                    s.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .collect()
                }
            }
            _ => return Err("must be an array of option ids".into()),
        };
        let mut chosen: Vec<Json> = Vec::with_capacity(given.len());
        for id in given {
            if !self.options.iter().any(|o| o == id) {
                return Err("contains a value that is not one of the field's option ids".into());
            }
            if !chosen.iter().any(|c| c.as_str() == Some(id)) {
                chosen.push(Json::String(id.to_owned()));
            }
        }
        Ok(Json::Array(chosen))
    }
}

/// A string; lenient modes also write numbers as text, in canonical decimal form.
fn text(raw: &Value<'_>, lenient: bool) -> Option<String> {
    match raw.as_str() {
        Some(s) => Some(s.to_owned()),
        None if lenient => number_text(raw),
        None => None,
    }
}

/// The canonical decimal text of a JSON number. Decode hands over as text the numbers a float
/// might not hold exactly; the integers and floats it does hand over hold their token exactly
/// (at most 15 significant digits), so the shortest text that reads back as the same float is
/// that token's value.
fn number_text(raw: &Value<'_>) -> Option<String> {
    if let Some(text) = decode::number_text(raw) {
        return Some(text.to_owned());
    }
    match raw {
        Value::Static(StaticNode::I64(i)) => Some(i.to_string()),
        Value::Static(StaticNode::U64(u)) => Some(u.to_string()),
        // `-0.0` prints as "-0"; the canonical form has no negative zero.
        Value::Static(StaticNode::F64(f)) if *f == 0.0 => Some("0".to_owned()),
        Value::Static(StaticNode::F64(f)) if f.is_finite() => Some(f.to_string()),
        _ => None,
    }
}

const NOT_AN_INTEGER: &str = "must be an integer";
const INTEGER_OUT_OF_RANGE: &str =
    "is out of range: integers must be within -9223372036854775808..=9223372036854775807";

/// A JSON number with no fractional part (`42.0` counts) within i64; lenient modes also parse
/// strings the way [`normalise::decimal`] does.
fn integer(raw: &Value<'_>, lenient: bool) -> Result<i64, &'static str> {
    if let Some(i) = raw.as_i64() {
        return Ok(i);
    }
    let text = match (number_text(raw), raw.as_str()) {
        (Some(text), _) => text,
        (None, Some(s)) if lenient => normalise::decimal(s).map_err(|e| match e {
            DecimalError::NotANumber => NOT_AN_INTEGER,
            DecimalError::OutOfRange => INTEGER_OUT_OF_RANGE,
        })?,
        _ => return Err(NOT_AN_INTEGER),
    };
    if text.contains('.') {
        return Err(NOT_AN_INTEGER);
    }
    // Canonical text without a point is an optional `-` and digits: only range can fail.
    text.parse().map_err(|_| INTEGER_OUT_OF_RANGE)
}

/// A number as its exact canonical decimal text. Decimal text in a string is taken in every
/// mode, strict ones too: decimals are answered as strings (to stay exact), and what Sluice
/// answers must be accepted back.
fn decimal(raw: &Value<'_>) -> Result<String, &'static str> {
    const NOT_A_NUMBER: &str = "must be a number";
    if let Some(text) = number_text(raw) {
        return Ok(text);
    }
    match raw.as_str() {
        Some(s) => normalise::decimal(s).map_err(|e| match e {
            DecimalError::NotANumber => NOT_A_NUMBER,
            DecimalError::OutOfRange => {
                "is out of range: numbers must be within what a 64-bit float can hold"
            }
        }),
        _ => Err(NOT_A_NUMBER),
    }
}

/// A JSON boolean; lenient modes also take `"true"`/`"false"` in any case.
fn boolean(raw: &Value<'_>, lenient: bool) -> Option<bool> {
    if let Some(b) = raw.as_bool() {
        return Some(b);
    }
    let s = raw.as_str().filter(|_| lenient)?.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
