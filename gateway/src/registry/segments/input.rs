//! The body of `POST /v1/segments` and `PUT /v1/segments/{id}`: the shape of every condition.
//! Whether the event types and fields they name exist, and whether each op and value fits the
//! field's type, is checked by the handler against the store.

use schemas::reader::{is_null, scalar};
use schemas::{ObjectReader, Violation};
use store::segments::{
    parse_window, Condition, ContactCondition, CountRule, EventCondition, Match, Op,
    SegmentDefinition, MAX_CONDITIONS, MAX_COUNT, MAX_WINDOW,
};

use super::super::read_object;
use crate::contacts::is_field_name;
use crate::error::ApiError;

/// Longest text a condition compares with.
const MAX_VALUE_CHARS: usize = 1024;

/// A whole definition; `match` defaults to `all`.
pub(crate) fn definition(value: &schemas::Value<'_>) -> Result<SegmentDefinition, ApiError> {
    let read = read_object(value, |reader| {
        let name = reader.text("name", true, 1, 255);
        let matching = match reader.string("match", false, 8) {
            None => Some(Match::All),
            Some(text) => {
                let parsed = Match::parse(&text);
                if parsed.is_none() {
                    reader.violate("match", "must be all or any");
                }
                parsed
            }
        };
        let conditions = match reader.array("conditions", true) {
            None => None,
            Some(items) if items.is_empty() || items.len() > MAX_CONDITIONS => {
                reader.violate(
                    "conditions",
                    format!("must hold 1 to {MAX_CONDITIONS} conditions"),
                );
                None
            }
            Some(items) => {
                let base = reader.child_path("conditions");
                let read: Vec<Option<Condition>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| condition(item, &format!("{base}/{i}"), reader.violations()))
                    .collect();
                read.into_iter().collect()
            }
        };
        (name, matching, conditions)
    })?;
    match read {
        (Some(name), Some(matching), Some(conditions)) => Ok(SegmentDefinition {
            name,
            matching,
            conditions,
        }),
        // Reading reported what is missing or wrong; this is not reached.
        _ => Err(ApiError::BadRequest(
            "name and conditions are required".into(),
        )),
    }
}

/// `{contactField, op, value?}` or `{event: {…}}`.
fn condition(
    value: &schemas::Value<'_>,
    path: &str,
    violations: &mut Vec<Violation>,
) -> Option<Condition> {
    let mut reader = ObjectReader::new(value, path, violations)?;
    let read = match (reader.has("contactField"), reader.has("event")) {
        (true, true) => {
            reader.violate(
                "event",
                "a condition is on a contact field or on events, not both",
            );
            None
        }
        (false, false) => {
            let path = reader.path().to_owned();
            (reader.violations())
                .push(Violation::new(path, "must name a contactField or an event"));
            None
        }
        (true, false) => contact_condition(&mut reader),
        (false, true) => {
            let path = reader.child_path("event");
            match reader.value("event") {
                Some(event) => match ObjectReader::new(event, &path, reader.violations()) {
                    Some(mut event) => {
                        let read = event_condition(&mut event);
                        event.finish();
                        read.map(|event| Condition::Event { event })
                    }
                    None => None,
                },
                None => None,
            }
        }
    };
    reader.finish();
    read
}

fn contact_condition(reader: &mut ObjectReader<'_, '_>) -> Option<Condition> {
    let field = reader.string("contactField", true, 64);
    if field.as_deref().is_some_and(|f| !is_field_name(f)) {
        reader.violate(
            "contactField",
            "names a field with 1 to 64 letters, digits, _ or -",
        );
    }
    let op = read_op(reader, "op", true);
    let value = match op {
        Some(op) => read_value(reader, op),
        // The op is wrong or missing, which is reported; the value is not unknown.
        None => reader.value("value").and(None),
    };
    if let (Some(Op::Contains), Some(value)) = (op, &value) {
        if !value.is_string() {
            reader.violate("value", "contains compares with text");
        }
    }
    Some(Condition::Contact(ContactCondition {
        contact_field: field.filter(|f| is_field_name(f))?,
        op: op?,
        value,
    }))
}

fn event_condition(reader: &mut ObjectReader<'_, '_>) -> Option<EventCondition> {
    let type_id = reader.string("customEventTypeId", true, 64);
    let field = reader.string("field", false, 64);
    let op = read_op(reader, "op", field.is_some());
    let value = match (&field, op) {
        (Some(_), Some(op)) => read_value(reader, op),
        (None, _) => {
            for key in ["op", "value"] {
                if reader.has(key) {
                    reader.violate(key, "compares a field: name one in field");
                }
            }
            None
        }
        (Some(_), None) => reader.value("value").and(None),
    };
    let within = reader.string("within", false, 16);
    if let Some(text) = &within {
        match parse_window(text) {
            None => reader.violate(
                "within",
                "must be a whole number and a unit, s, m, h or d, as 30d",
            ),
            Some(window) if window.is_zero() || window > MAX_WINDOW => reader.violate(
                "within",
                format!("must be from 1s to {} days", MAX_WINDOW.as_secs() / 86_400),
            ),
            Some(_) => {}
        }
    }
    let count = read_count(reader);
    Some(EventCondition {
        custom_event_type_id: type_id?,
        field,
        op,
        value,
        within,
        count,
    })
}

fn read_op(reader: &mut ObjectReader<'_, '_>, key: &str, required: bool) -> Option<Op> {
    let text = reader.string(key, required, 16)?;
    let op = Op::parse(&text);
    if op.is_none() {
        reader.violate(
            key,
            "must be eq, ne, gt, gte, lt, lte, contains, exists or notExists",
        );
    }
    op
}

/// The value an op compares with: required by all but exists and notExists, refused by those;
/// a string, number or boolean.
fn read_value(reader: &mut ObjectReader<'_, '_>, op: Op) -> Option<serde_json::Value> {
    let present = reader.value("value").filter(|v| !is_null(v));
    match (present, op.takes_value()) {
        (None, true) => {
            reader.violate("value", format!("is required by {}", op.as_str()));
            None
        }
        (Some(_), false) => {
            reader.violate("value", format!("{} takes no value", op.as_str()));
            None
        }
        (None, false) => None,
        (Some(value), true) => match scalar(value) {
            Some(serde_json::Value::String(text)) if text.chars().count() > MAX_VALUE_CHARS => {
                reader.violate(
                    "value",
                    format!("must be at most {MAX_VALUE_CHARS} characters"),
                );
                None
            }
            Some(value) if !value.is_null() => Some(value),
            _ => {
                reader.violate("value", "must be a string, a number or a boolean");
                None
            }
        },
    }
}

/// `{op, value}`: an ordering op and a count from 0 to [`MAX_COUNT`].
fn read_count(reader: &mut ObjectReader<'_, '_>) -> Option<CountRule> {
    let path = reader.child_path("count");
    let value = reader.value("count").filter(|v| !is_null(v))?;
    let mut count = ObjectReader::new(value, &path, reader.violations())?;
    let op = read_op(&mut count, "op", true);
    if op.is_some_and(|op| !op.takes_value() || op == Op::Contains) {
        count.violate("op", "must be eq, ne, gt, gte, lt or lte");
    }
    let number = count
        .value("value")
        .filter(|v| !is_null(v))
        .and_then(scalar);
    let n = match number.as_ref().and_then(serde_json::Value::as_u64) {
        Some(n) if n <= MAX_COUNT => Some(n),
        _ => {
            count.violate(
                "value",
                format!("must be a whole number from 0 to {MAX_COUNT}"),
            );
            None
        }
    };
    count.finish();
    match (op, n) {
        (Some(op), Some(value)) if op.takes_value() && op != Op::Contains => {
            Some(CountRule { op, value })
        }
        _ => None,
    }
}
