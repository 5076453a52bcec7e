//! Checking values Sluice builds itself, such as a workflow's send event, against a type's
//! fields. Values come from templates, which render text, so each is checked and normalised the
//! way lenient ingest checks it (`"42"` fills an integer field as `42`); the set of values is
//! held to the type's field list as strict ingest holds it, and no contact is looked for.

use serde_json::{Map, Value as Json};

use super::CompiledEventType;
use crate::{pointer, Value, Violation};

impl CompiledEventType {
    /// Checks and normalises `values`, keyed by field id, reporting every violation: a value
    /// for no field of the type, a required field without a value (null counts as none), a
    /// value its field's type refuses. Optional fields without a value are left out.
    pub fn check_values(
        &self,
        values: &Map<String, Json>,
    ) -> Result<Map<String, Json>, Vec<Violation>> {
        let mut violations: Vec<Violation> = values
            .keys()
            .filter(|key| !self.fields.iter().any(|f| f.id == **key))
            .map(|key| {
                let message = format!("field \"{key}\" is not a field of the type");
                Violation::new(format!("/{}", pointer::escape(key)), message)
            })
            .collect();
        let mut checked = Map::new();
        for field in &self.fields {
            match values.get(&field.id).filter(|v| !v.is_null()) {
                None if field.required => violations.push(field.violation("is required")),
                None => {}
                Some(value) => match self.check_value(&field.id, value) {
                    Some(Ok(normal)) => {
                        checked.insert(field.id.clone(), normal);
                    }
                    Some(Err(message)) => violations.push(field.violation(message)),
                    None => {}
                },
            }
        }
        if violations.is_empty() {
            Ok(checked)
        } else {
            Err(violations)
        }
    }

    /// The normalised form of one value of the field `field_id`, or what is wrong with it;
    /// None when the type has no such field.
    pub fn check_value(&self, field_id: &str, value: &Json) -> Option<Result<Json, String>> {
        let field = self.fields.iter().find(|f| f.id == field_id)?;
        let Ok(raw) = Value::try_from(value.clone()) else {
            return Some(Err("is not a value JSON can carry".to_owned()));
        };
        Some(field.coerce(&raw, false))
    }

    /// The ids of the fields a value is required for.
    pub fn required_fields(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::EventTypeDefinition;

    fn crm() -> CompiledEventType {
        let mut body = json!({
            "name": "CRM", "category": "send", "webhookUrl": "https://crm.example.com/in",
            "fields": [
                {"id": "orderId", "name": "Order", "type": "text", "required": true},
                {"id": "total", "name": "Total", "type": "decimal", "required": false},
                {"id": "count", "name": "Count", "type": "integer", "required": false},
                {"id": "email", "name": "Email", "type": "email", "required": false}
            ]
        })
        .to_string()
        .into_bytes();
        let value = crate::decode(&mut body).expect("json");
        let definition = EventTypeDefinition::parse(&value).expect("a valid send type");
        CompiledEventType::compile(&definition)
    }

    fn values(value: Json) -> Map<String, Json> {
        let Json::Object(map) = value else {
            panic!("an object")
        };
        map
    }

    #[test]
    fn rendered_text_is_normalised_to_the_field_type() {
        let checked = crm()
            .check_values(&values(json!({
                "orderId": "o-1", "total": "12.5", "count": "3", "email": "Ann@Example.com"
            })))
            .expect("valid");
        assert_eq!(
            Json::Object(checked),
            json!({"orderId": "o-1", "total": "12.5", "count": 3, "email": "ann@example.com"})
        );
    }

    #[test]
    fn missing_required_wrong_typed_and_unknown_values_are_all_reported() {
        let violations = crm()
            .check_values(&values(json!({
                "orderId": null, "total": "lots", "count": 1.5, "coupon": "x"
            })))
            .expect_err("invalid");
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/coupon", "/orderId", "/total", "/count"],
            "{violations:?}"
        );
        assert!(violations[1].message.contains("\"orderId\" is required"));
    }

    #[test]
    fn optional_fields_without_a_value_are_left_out() {
        let checked = crm()
            .check_values(&values(json!({"orderId": "o-1", "total": null})))
            .expect("valid");
        assert_eq!(Json::Object(checked), json!({"orderId": "o-1"}));
        assert_eq!(crm().required_fields().collect::<Vec<_>>(), ["orderId"]);
        assert!(crm().check_value("coupon", &json!("x")).is_none());
    }
}
