//! Segments (SPEC §6): a definition of which contacts belong, by their fields and their
//! activities, and the evaluation of one contact against it. The gateway checks and stores
//! definitions; the consumer evaluates them as events arrive and as windows pass, and keeps
//! the members in [`members`].
//!
//! Values are compared by kind: numbers as numbers (and a decimal's exact text against a number
//! as a number), strings that are both RFC 3339 instants as
//! instants (event dates are stored normalised to UTC), other strings as text (case matters),
//! booleans and arrays as they are. A comparison needs a value: a contact field or event field
//! that is absent satisfies only `notExists`.

pub mod members;

use std::cmp::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Most conditions a segment has.
pub const MAX_CONDITIONS: usize = 20;
/// The longest window a condition may look back over.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);
/// The most a count condition may ask for.
pub const MAX_COUNT: u64 = 10_000;
/// Most recent activities of the types a contact's segments name that an evaluation reads: a
/// count is counted among these, so a contact with more is judged on its latest.
pub const MAX_ACTIVITIES_READ: i64 = 10_000;

/// A segment's stored and answered definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentDefinition {
    pub name: String,
    #[serde(rename = "match")]
    pub matching: Match,
    pub conditions: Vec<Condition>,
}

/// Whether every condition must hold, or one is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    All,
    Any,
}

impl Match {
    pub fn parse(text: &str) -> Option<Match> {
        match text {
            "all" => Some(Match::All),
            "any" => Some(Match::Any),
            _ => None,
        }
    }
}

/// One condition: on a contact field, or on the contact's events of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    Event { event: EventCondition },
    Contact(ContactCondition),
}

/// `{contactField, op, value?}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactCondition {
    pub contact_field: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// `{customEventTypeId, field?, op?, value?, within?, count?}`: the contact has (by default at
/// least one) events of this type, whose field matches when one is named, received within
/// the window when one is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCondition {
    pub custom_event_type_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountRule>,
}

/// How many matching events the condition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountRule {
    pub op: Op,
    pub value: u64,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    Exists,
    NotExists,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Contains,
        Op::Exists,
        Op::NotExists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Contains => "contains",
            Op::Exists => "exists",
            Op::NotExists => "notExists",
        }
    }

    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// Whether the op compares with a value (all but `exists` and `notExists`).
    pub fn takes_value(self) -> bool {
        !matches!(self, Op::Exists | Op::NotExists)
    }

    /// Whether `ordering` (actual against expected) satisfies this op; false for the ops that
    /// do not compare.
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering.is_eq(),
            Op::Ne => ordering.is_ne(),
            Op::Gt => ordering.is_gt(),
            Op::Gte => ordering.is_ge(),
            Op::Lt => ordering.is_lt(),
            Op::Lte => ordering.is_le(),
            Op::Contains | Op::Exists | Op::NotExists => false,
        }
    }
}

/// `30d`, `12h`, `15m`, `90s`: a whole number and a unit.
pub fn parse_window(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    Some(Duration::from_secs(number.checked_mul(seconds)?))
}

/// One of the contact's events, as an evaluation reads it.
#[derive(Debug, Clone)]
pub struct Fact {
    pub event_type_id: String,
    pub received_at: OffsetDateTime,
    pub fields: Map<String, Value>,
}

/// What an evaluation found: whether the contact belongs, and when the answer may change with
/// no new event because a counted event leaves its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub member: bool,
    pub recheck_at: Option<OffsetDateTime>,
}

impl SegmentDefinition {
    /// The event types the conditions name.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.conditions.iter().filter_map(|c| match c {
            Condition::Event { event } => Some(event.custom_event_type_id.as_str()),
            Condition::Contact(_) => None,
        })
    }

    /// The contact fields the conditions name.
    pub fn contact_fields(&self) -> impl Iterator<Item = &str> {
        self.conditions.iter().filter_map(|c| match c {
            Condition::Contact(contact) => Some(contact.contact_field.as_str()),
            Condition::Event { .. } => None,
        })
    }

    /// The (event type, field) pairs the conditions name.
    pub fn event_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.conditions.iter().filter_map(|c| match c {
            Condition::Event { event } => event
                .field
                .as_deref()
                .map(|field| (event.custom_event_type_id.as_str(), field)),
            Condition::Contact(_) => None,
        })
    }

    /// The oldest receipt time an evaluation at `now` needs to read; None when some condition
    /// counts all of a contact's events.
    pub fn reads_since(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut oldest = Some(now);
        for condition in &self.conditions {
            if let Condition::Event { event } = condition {
                match event.window() {
                    Some(window) => oldest = oldest.map(|o| o.min(now - window)),
                    None => return None,
                }
            }
        }
        oldest
    }

    /// Judges a contact, with `fields` as they stand and `facts` its most recent events of the
    /// types the conditions name, at `now`.
    pub fn evaluate(
        &self,
        fields: &Map<String, Value>,
        facts: &[Fact],
        now: OffsetDateTime,
    ) -> Verdict {
        let mut recheck_at: Option<OffsetDateTime> = None;
        // Every condition is evaluated (no short cut) so the recheck time sees every window.
        let results: Vec<bool> = self
            .conditions
            .iter()
            .map(|condition| match condition {
                Condition::Contact(c) => {
                    holds(c.op, fields.get(&c.contact_field), c.value.as_ref())
                }
                Condition::Event { event } => {
                    let (held, leaves_at) = event.evaluate(facts, now);
                    if let Some(at) = leaves_at {
                        recheck_at = Some(recheck_at.map_or(at, |r| r.min(at)));
                    }
                    held
                }
            })
            .collect();
        let member = match self.matching {
            Match::All => results.iter().all(|r| *r),
            Match::Any => results.iter().any(|r| *r),
        };
        Verdict { member, recheck_at }
    }
}

impl EventCondition {
    /// The window, when one is set (checked when the segment was saved).
    pub fn window(&self) -> Option<Duration> {
        self.within.as_deref().and_then(parse_window)
    }

    /// Whether the condition holds at `now`, and when the oldest event it counted leaves the
    /// window (the result may change then).
    fn evaluate(&self, facts: &[Fact], now: OffsetDateTime) -> (bool, Option<OffsetDateTime>) {
        let since = self.window().map(|w| now - w);
        let mut matching = 0u64;
        let mut oldest: Option<OffsetDateTime> = None;
        for fact in facts {
            if fact.event_type_id != self.custom_event_type_id
                || since.is_some_and(|since| fact.received_at < since)
            {
                continue;
            }
            if let (Some(field), Some(op)) = (&self.field, self.op) {
                if !holds(op, fact.fields.get(field), self.value.as_ref()) {
                    continue;
                }
            }
            matching += 1;
            oldest = Some(oldest.map_or(fact.received_at, |o| o.min(fact.received_at)));
        }
        let rule = self.count.unwrap_or(CountRule {
            op: Op::Gte,
            value: 1,
        });
        let held = rule.op.accepts(matching.cmp(&rule.value));
        let leaves_at = match (self.window(), oldest) {
            (Some(window), Some(oldest)) => Some(oldest + window),
            _ => None,
        };
        (held, leaves_at)
    }
}

/// Whether `actual` (absent or null: no value) satisfies `op` against `expected`.
pub fn holds(op: Op, actual: Option<&Value>, expected: Option<&Value>) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    match op {
        Op::Exists => actual.is_some(),
        Op::NotExists => actual.is_none(),
        Op::Contains => match (actual, expected) {
            (Some(Value::String(text)), Some(Value::String(part))) => text.contains(part.as_str()),
            (Some(Value::Array(items)), Some(item)) => items
                .iter()
                .any(|i| compare(i, item).is_some_and(Ordering::is_eq)),
            _ => false,
        },
        _ => match (actual, expected) {
            (Some(actual), Some(expected)) => match compare(actual, expected) {
                Some(ordering) => op.accepts(ordering),
                // Values of different kinds are never equal, and never ordered.
                None => op == Op::Ne,
            },
            _ => false,
        },
    }
}

/// Orders two values of the same kind; None when they cannot be compared.
fn compare(actual: &Value, expected: &Value) -> Option<Ordering> {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        // Decimals are stored as exact text; a number compares with them as a number.
        (Value::String(a), Value::Number(b)) => {
            a.trim().parse::<f64>().ok()?.partial_cmp(&b.as_f64()?)
        }
        (Value::Number(a), Value::String(b)) => {
            a.as_f64()?.partial_cmp(&b.trim().parse::<f64>().ok()?)
        }
        (Value::String(a), Value::String(b)) => match (instant(a), instant(b)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(a.as_str().cmp(b.as_str())),
        },
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(Ordering::Equal),
        _ => None,
    }
}

/// An RFC 3339 instant; only strings of that shape are tried.
fn instant(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() >= 20 && bytes[4] == b'-' && bytes[10] == b'T';
    shaped.then(|| crate::clock::parse(text)).flatten()
}

#[cfg(test)]
mod tests;
