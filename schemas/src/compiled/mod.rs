//! An event type compiled for ingest: pointers parsed and options collected once when the
//! type is loaded, so checking each event is lookups and comparisons only.

mod event;
mod field;
mod values;

#[cfg(test)]
mod tests;

use simd_json::prelude::*;

pub use event::{ContactKey, ValidatedEvent};
use field::CompiledField;

use crate::{pointer, EventTypeDefinition, ReceiveType, Value, Violation};

/// The top-level property SDK events use to identify an anonymous visitor.
const TRACKER_KEY: &str = "_trackerId";
const TRACKER_MAX_LEN: usize = 128;

/// A receive type ready to validate events. Immutable; callers share it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct CompiledEventType {
    receive_type: ReceiveType,
    fields: Vec<CompiledField>,
    primary_key: Option<usize>,
}

impl CompiledEventType {
    /// Compiles a receive type. A definition without `receiveType` (a send type) compiles as
    /// `api`: strict, which suits checking values Sluice itself builds.
    pub fn compile(def: &EventTypeDefinition) -> Self {
        let receive_type = def.receive_type.unwrap_or(ReceiveType::Api);
        let strict = receive_type == ReceiveType::Api;
        Self {
            receive_type,
            fields: def
                .fields
                .iter()
                .map(|f| CompiledField::new(f, strict))
                .collect(),
            primary_key: def.fields.iter().position(|f| f.is_primary_key),
        }
    }

    /// How events of this type arrive, which sets how strictly they are checked.
    pub fn receive_type(&self) -> ReceiveType {
        self.receive_type
    }

    /// Checks and normalises one event body, reporting every violation.
    ///
    /// `api` is strict: the body is an object of field ids with exactly typed values.
    /// `webhook` and `web/mobile-app` are lenient: values are found by each field's pointer,
    /// anything else is ignored, and string forms of numbers and booleans are accepted.
    pub fn validate(&self, body: &Value<'_>) -> Result<ValidatedEvent, Vec<Violation>> {
        let mut violations = Vec::new();
        let strict = self.receive_type == ReceiveType::Api;
        if strict && !self.check_strict_shape(body, &mut violations) {
            return Err(violations);
        }
        let tracker = match self.receive_type {
            ReceiveType::WebMobileApp => read_tracker(body, &mut violations),
            _ => None,
        };
        let mut fields = serde_json::Map::new();
        let mut email = None;
        let mut key_reported = false;
        for (i, field) in self.fields.iter().enumerate() {
            let is_key = self.primary_key == Some(i);
            let found = pointer::resolve(body, &field.tokens).filter(|v| !v.is_null());
            let Some(raw) = found else {
                // An SDK visitor with a tracker id may stay anonymous even when the type has
                // a primary key.
                let excused = is_key && tracker.is_some();
                if field.required && !excused {
                    violations.push(field.violation("is required"));
                    key_reported |= is_key;
                }
                continue;
            };
            match field.coerce(raw, strict) {
                Ok(value) => {
                    if is_key {
                        email = value.as_str().map(str::to_owned);
                    }
                    fields.insert(field.id.clone(), value);
                }
                Err(message) => {
                    violations.push(field.violation(message));
                    key_reported |= is_key;
                }
            }
        }
        let contact = email
            .map(ContactKey::Email)
            .or(tracker.map(ContactKey::Tracker));
        match contact {
            Some(contact) if violations.is_empty() => Ok(ValidatedEvent { contact, fields }),
            Some(_) => Err(violations),
            None => {
                if !key_reported {
                    violations.push(Violation::new("", self.missing_contact_message()));
                }
                Err(violations)
            }
        }
    }

    /// Strict mode: an object whose every property is a field id. False when it is not an
    /// object, since nothing else can then be checked.
    fn check_strict_shape(&self, body: &Value<'_>, violations: &mut Vec<Violation>) -> bool {
        let object = match body {
            Value::Object(object) if crate::decode::number_text(body).is_none() => object,
            _ => {
                violations.push(Violation::new("", "must be an object"));
                return false;
            }
        };
        let mut unknown: Vec<&str> = object
            .keys()
            .map(|k| k.as_ref())
            .filter(|k| !self.fields.iter().any(|f| f.id == *k))
            .collect();
        unknown.sort_unstable();
        for key in unknown {
            violations.push(Violation::new(
                format!("/{}", pointer::escape(key)),
                "unknown field",
            ));
        }
        true
    }

    fn missing_contact_message(&self) -> &'static str {
        match self.receive_type {
            ReceiveType::WebMobileApp => "an email primary key or _trackerId is required",
            _ => "an email primary key is required",
        }
    }
}

/// `_trackerId`: when present (not null), a string of 1–128 characters.
fn read_tracker(body: &Value<'_>, violations: &mut Vec<Violation>) -> Option<String> {
    let raw = body.get(TRACKER_KEY).filter(|v| !v.is_null())?;
    match raw.as_str() {
        Some(s) if !s.is_empty() && s.chars().count() <= TRACKER_MAX_LEN => Some(s.to_owned()),
        _ => {
            let message = format!("must be a string of 1 to {TRACKER_MAX_LEN} characters");
            violations.push(Violation::new(format!("/{TRACKER_KEY}"), message));
            None
        }
    }
}
