//! The whole-body rules of event type creation: the root properties, rules that depend on the
//! category, and rules across fields (unique ids, one primary key).

use super::field::{parse_field, ParsedField};
use super::webhook::{read_headers, read_url};
use super::{Alias, Category, EventTypeDefinition, ReceiveType};
use crate::{ObjectReader, Value, Violation};

const MAX_FIELDS: usize = 100;

impl EventTypeDefinition {
    /// Checks a creation body against every rule, reporting all violations with their paths
    /// rather than stopping at the first.
    pub fn parse(value: &Value<'_>) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        let definition = read(value, &mut violations);
        match definition {
            Some(definition) if violations.is_empty() => Ok(definition),
            _ => Err(violations),
        }
    }
}

fn read(value: &Value<'_>, violations: &mut Vec<Violation>) -> Option<EventTypeDefinition> {
    let mut r = ObjectReader::new(value, "", violations)?;
    let name = r.string("name", true, 255);
    let icon = r.string("icon", false, 255);
    let category = r.string("category", true, usize::MAX).and_then(|s| {
        let category = Category::from_wire(&s);
        if category.is_none() {
            r.violate("category", "must be one of: send, receive");
        }
        category
    });
    // None: category unknown, so category-dependent rules only check what is present.
    let receive = category.map(|c| c == Category::Receive);
    let alias = read_receive_only(&mut r, "alias", receive)
        .and_then(|s| Alias::parse(&s).map_err(|m| r.violate("alias", m)).ok());
    let receive_type = read_receive_only(&mut r, "receiveType", receive).and_then(|s| {
        let t = ReceiveType::from_wire(&s);
        if t.is_none() {
            r.violate(
                "receiveType",
                "must be one of: webhook, api, web/mobile-app",
            );
        }
        t
    });
    let webhook_url = read_url(&mut r, receive.map(|receive| !receive));
    let webhook_headers = read_headers(&mut r, receive.map(|receive| !receive));
    let fields = read_fields(&mut r, category, receive_type);
    let webhook = receive == Some(true) && receive_type == Some(ReceiveType::Webhook);
    let verification = super::verification::read(&mut r, webhook);
    r.finish();
    Some(EventTypeDefinition {
        name: name?,
        category: category?,
        alias,
        receive_type,
        fields: fields?,
        icon,
        webhook_url,
        webhook_headers,
        verification,
    })
}

/// A string property required for receive types and refused for send types.
fn read_receive_only(
    r: &mut ObjectReader<'_, '_>,
    key: &str,
    receive: Option<bool>,
) -> Option<String> {
    if receive == Some(false) {
        if r.has(key) {
            r.violate(key, "not allowed when category is send");
        }
        return None;
    }
    r.string(key, receive == Some(true), usize::MAX)
}

fn read_fields(
    r: &mut ObjectReader<'_, '_>,
    category: Option<Category>,
    receive_type: Option<ReceiveType>,
) -> Option<Vec<super::Field>> {
    let items = r.array("fields", true)?;
    if items.is_empty() {
        r.violate("fields", "must contain at least 1 field");
        return None;
    }
    if items.len() > MAX_FIELDS {
        r.violate(
            "fields",
            format!("must contain at most {MAX_FIELDS} fields"),
        );
    }
    let base = r.child_path("fields");
    let mut fields = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    let mut primary_key_seen = false;
    for (i, item) in items.iter().enumerate() {
        let path = format!("{base}/{i}");
        let ParsedField {
            id,
            is_primary_key,
            field,
        } = parse_field(item, &path, category, r.violations());
        if let Some(id) = id {
            if ids.contains(&id) {
                r.violations()
                    .push(Violation::new(format!("{path}/id"), "duplicate field id"));
            }
            ids.push(id);
        }
        if is_primary_key {
            if primary_key_seen {
                let message = "only one field may be the primary key";
                r.violations()
                    .push(Violation::new(format!("{path}/isPrimaryKey"), message));
            }
            primary_key_seen = true;
        }
        fields.extend(field);
    }
    let needs_key = category == Some(Category::Receive)
        && receive_type.is_some_and(ReceiveType::needs_primary_key);
    if needs_key && !primary_key_seen {
        r.violate(
            "fields",
            "must include a primary key email field when receiveType is webhook or api",
        );
    }
    (fields.len() == items.len()).then_some(fields)
}
