//! Workflow templates: text with `{{event.<fieldId>}}` and `{{contact.<field>}}` placeholders.
//! A template that is one placeholder and nothing else keeps the value's JSON type, so
//! `{{event.total}}` copies a number as a number; anything else renders as text.

use serde_json::{Map, Value};

/// Longest template accepted.
pub const MAX_LEN: usize = 2048;
const MAX_NAME: usize = 64;

/// What a placeholder reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Event,
    Contact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Source, String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template reads when rendered.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub event: &'a Map<String, Value>,
    pub contact: &'a Map<String, Value>,
}

impl Template {
    /// Parses a template, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.chars().count() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        let unopened = || "has a }} without its opening {{".to_owned();
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if rest[..open].contains("}}") {
                return Err(unopened());
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "has a {{ without its closing }}".to_owned())?;
            parts.push(placeholder(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err(unopened());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The text of a template without placeholders, which renders the same for every run;
    /// None when it reads a value.
    pub fn literal(&self) -> Option<String> {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Text(literal) => text.push_str(literal),
                Part::Value(..) => return None,
            }
        }
        Some(text)
    }

    /// The template's value for one event and contact. A missing value renders as null when
    /// it is the whole template, and as nothing inside text.
    pub fn render(&self, scope: Scope<'_>) -> Value {
        let lookup = |source: &Source, name: &str| match source {
            Source::Event => scope.event.get(name),
            Source::Contact => scope.contact.get(name),
        };
        if let [Part::Value(source, name)] = self.parts.as_slice() {
            return lookup(source, name).cloned().unwrap_or(Value::Null);
        }
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Text(literal) => text.push_str(literal),
                Part::Value(source, name) => match lookup(source, name) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => text.push_str(s),
                    Some(other) => text.push_str(&other.to_string()),
                },
            }
        }
        Value::String(text)
    }
}

fn placeholder(inner: &str) -> Result<Part, String> {
    let (source, name) = inner
        .split_once('.')
        .ok_or_else(|| format!("{{{{{inner}}}}} must be event.<field> or contact.<field>"))?;
    let source = match source {
        "event" => Source::Event,
        "contact" => Source::Contact,
        _ => return Err(format!("{{{{{inner}}}}} must read event. or contact.")),
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "{{{{{inner}}}}} must name a field of 1 to {MAX_NAME} letters, digits, _ or -"
        ));
    }
    Ok(Part::Value(source, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, event: Value, contact: Value) -> Value {
        let (Value::Object(event), Value::Object(contact)) = (event, contact) else {
            panic!("objects expected")
        };
        Template::parse(template).expect("parses").render(Scope {
            event: &event,
            contact: &contact,
        })
    }

    #[test]
    fn a_lone_placeholder_keeps_the_json_type() {
        assert_eq!(
            render("{{event.total}}", json!({"total": 12.5}), json!({})),
            json!(12.5)
        );
        assert_eq!(
            render("{{ event.tags }}", json!({"tags": ["a"]}), json!({})),
            json!(["a"])
        );
        assert_eq!(
            render("{{event.missing}}", json!({}), json!({})),
            Value::Null
        );
    }

    #[test]
    fn text_interpolates_values_and_skips_missing_ones() {
        assert_eq!(
            render(
                "Hi {{contact.name}}, order {{event.orderId}} = {{event.total}}{{event.none}}!",
                json!({"orderId": "o-1", "total": 3}),
                json!({"name": "Ann"})
            ),
            json!("Hi Ann, order o-1 = 3!")
        );
        assert_eq!(render("plain", json!({}), json!({})), json!("plain"));
    }

    #[test]
    fn only_templates_without_placeholders_are_literals() {
        let literal = |text: &str| Template::parse(text).expect("parses").literal();
        assert_eq!(literal("12.5"), Some("12.5".to_owned()));
        assert_eq!(literal(""), Some(String::new()));
        assert_eq!(literal("{{event.total}}"), None);
        assert_eq!(literal("total: {{event.total}}"), None);
    }

    #[test]
    fn refuses_malformed_templates() {
        for bad in [
            "{{event.total",
            "total}}",
            "{{total}}",
            "{{order.total}}",
            "{{event.}}",
            "{{event.a b}}",
            "{{contact.a!}}",
            "a}}{{event.x}}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::parse(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
