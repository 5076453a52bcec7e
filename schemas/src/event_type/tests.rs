//! Creation rules: one test per rule that a body breaking it gets a violation at the exact
//! path, plus happy paths and a body breaking many rules at once.

use serde_json::{json, Value as Json};

use super::*;
use crate::{decode, Violation};

fn parse(body: &Json) -> Result<EventTypeDefinition, Vec<Violation>> {
    let mut buf = serde_json::to_vec(body).expect("test body serialises");
    let value = decode(&mut buf).expect("test body is JSON");
    EventTypeDefinition::parse(&value)
}

fn receive(receive_type: &str) -> Json {
    json!({
        "name": "Order paid",
        "category": "receive",
        "alias": "order-paid",
        "receiveType": receive_type,
        "icon": "cart",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true,
             "jsonPointerPath": "/customer/email"},
            {"id": "total", "name": "Total", "type": "decimal", "required": false},
            {"id": "phone", "name": "Phone", "type": "phone", "required": false, "defaultCountryCode": "34"},
            {"id": "size", "name": "Size", "type": "radio", "required": false,
             "options": [{"id": "s", "label": "Small"}, {"id": "l", "label": "Large"}]}
        ]
    })
}

fn send() -> Json {
    json!({
        "name": "Notify ERP",
        "category": "send",
        "webhookUrl": "https://erp.example.com/hooks/sluice",
        "webhookHeaders": [{"name": "X-Token", "value": "abc 123"}],
        "fields": [{"id": "sku", "name": "SKU", "type": "text", "required": true}]
    })
}

/// Sets (or with `None` removes) the property at `pointer`, creating it in its parent object.
fn with(mut body: Json, pointer: &str, value: Option<Json>) -> Json {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    match body.pointer_mut(parent).expect("parent exists") {
        Json::Object(object) => {
            match value {
                Some(value) => object.insert(key.to_owned(), value),
                None => object.remove(key),
            };
        }
        Json::Array(items) => {
            let index: usize = key.parse().expect("array index");
            match value {
                Some(value) => items[index] = value,
                None => drop(items.remove(index)),
            }
        }
        _ => panic!("parent of {pointer} is not a container"),
    }
    body
}

/// Asserts the body is refused with a violation at `path` whose message contains `message`.
#[track_caller]
fn refused(body: &Json, path: &str, message: &str) {
    let violations = parse(body).expect_err("body should be refused");
    assert!(
        violations
            .iter()
            .any(|v| v.path == path && v.message.contains(message)),
        "no violation {path:?} containing {message:?} in {violations:#?}"
    );
}

#[test]
fn accepts_each_receive_type_and_send() {
    for receive_type in ["webhook", "api", "web/mobile-app"] {
        let def = parse(&receive(receive_type)).expect("valid receive type");
        assert_eq!(def.alias.as_ref().map(Alias::as_str), Some("order-paid"));
        assert_eq!(def.fields.len(), 4);
        assert_eq!(def.fields[2].default_country_code.as_deref(), Some("34"));
    }
    let def = parse(&send()).expect("valid send type");
    assert_eq!(def.category, Category::Send);
    assert_eq!(def.webhook_headers[0].name, "X-Token");
}

#[test]
fn sdk_types_need_no_primary_key() {
    let body = with(receive("web/mobile-app"), "/fields/0/isPrimaryKey", None);
    assert!(parse(&body).is_ok());
}

#[test]
fn serialises_back_without_absent_properties() {
    let def = parse(&send()).expect("valid");
    let echoed = serde_json::to_value(&def).expect("serialises");
    assert_eq!(echoed.get("alias"), None);
    assert_eq!(echoed.get("receiveType"), None);
    assert_eq!(echoed["fields"][0]["type"], "text");
    assert_eq!(echoed["fields"][0].get("options"), None);
    let back: EventTypeDefinition = serde_json::from_value(echoed).expect("deserialises");
    assert_eq!(back, def);
    let receive_def = parse(&receive("web/mobile-app")).expect("valid");
    let echoed = serde_json::to_value(&receive_def).expect("serialises");
    assert_eq!(echoed["receiveType"], "web/mobile-app");
    assert_eq!(echoed.get("webhookHeaders"), None);
}

#[test]
fn body_must_be_an_object() {
    refused(&json!([1]), "", "must be an object");
    refused(&json!("x"), "", "must be an object");
}

#[test]
fn unknown_properties_are_refused_at_every_level() {
    refused(
        &with(receive("api"), "/colour", Some(json!(1))),
        "/colour",
        "unknown property",
    );
    refused(
        &with(receive("api"), "/fields/0/extra", Some(json!(1))),
        "/fields/0/extra",
        "unknown property",
    );
    let body = with(receive("api"), "/fields/3/options/1/x", Some(json!(1)));
    refused(&body, "/fields/3/options/1/x", "unknown property");
    refused(
        &with(send(), "/webhookHeaders/0/x", Some(json!(1))),
        "/webhookHeaders/0/x",
        "unknown property",
    );
    refused(
        &with(receive("api"), "/a~b", Some(json!(1))),
        "/a~0b",
        "unknown property",
    );
}

#[test]
fn null_optional_properties_count_as_absent() {
    let body = with(receive("api"), "/icon", Some(Json::Null));
    assert_eq!(parse(&body).map(|d| d.icon), Ok(None));
}

#[test]
fn name_rules() {
    refused(&with(receive("api"), "/name", None), "/name", "is required");
    refused(
        &with(receive("api"), "/name", Some(json!(""))),
        "/name",
        "must not be empty",
    );
    refused(
        &with(receive("api"), "/name", Some(json!("n".repeat(256)))),
        "/name",
        "at most 255",
    );
    assert!(parse(&with(receive("api"), "/name", Some(json!("é".repeat(255))))).is_ok());
    refused(
        &with(receive("api"), "/icon", Some(json!("i".repeat(256)))),
        "/icon",
        "at most 255",
    );
}

#[test]
fn category_rules() {
    refused(
        &with(receive("api"), "/category", None),
        "/category",
        "is required",
    );
    refused(
        &with(receive("api"), "/category", Some(json!("both"))),
        "/category",
        "must be one of",
    );
}

#[test]
fn alias_rules() {
    refused(
        &with(receive("api"), "/alias", None),
        "/alias",
        "is required",
    );
    refused(
        &with(send(), "/alias", Some(json!("a"))),
        "/alias",
        "not allowed when category is send",
    );
    for bad in ["order paid", "order.paid", "ordér", "a/b"] {
        refused(
            &with(receive("api"), "/alias", Some(json!(bad))),
            "/alias",
            "may only contain",
        );
    }
    refused(
        &with(receive("api"), "/alias", Some(json!("a".repeat(65)))),
        "/alias",
        "at most 64",
    );
    refused(
        &with(receive("api"), "/alias", Some(json!(""))),
        "/alias",
        "must not be empty",
    );
}

#[test]
fn receive_type_rules() {
    refused(
        &with(receive("api"), "/receiveType", None),
        "/receiveType",
        "is required",
    );
    refused(
        &with(send(), "/receiveType", Some(json!("api"))),
        "/receiveType",
        "not allowed when category is send",
    );
    refused(&receive("email"), "/receiveType", "must be one of");
}

#[test]
fn fields_array_rules() {
    refused(
        &with(receive("api"), "/fields", None),
        "/fields",
        "is required",
    );
    refused(
        &with(receive("api"), "/fields", Some(json!({}))),
        "/fields",
        "must be an array",
    );
    refused(
        &with(receive("api"), "/fields", Some(json!([]))),
        "/fields",
        "at least 1 field",
    );
    let many: Vec<Json> = (0..101)
        .map(|i| json!({"id": format!("f{i}"), "name": "F", "type": "email", "required": true, "isPrimaryKey": i == 0}))
        .collect();
    refused(
        &with(receive("api"), "/fields", Some(Json::Array(many))),
        "/fields",
        "at most 100 fields",
    );
    refused(
        &with(receive("api"), "/fields/1", Some(json!("total"))),
        "/fields/1",
        "must be an object",
    );
}

#[test]
fn field_id_rules() {
    refused(
        &with(receive("api"), "/fields/1/id", None),
        "/fields/1/id",
        "is required",
    );
    refused(
        &with(receive("api"), "/fields/1/id", Some(json!("to tal"))),
        "/fields/1/id",
        "may only contain",
    );
    refused(
        &with(receive("api"), "/fields/1/id", Some(json!("a/b"))),
        "/fields/1/id",
        "may only contain",
    );
    refused(
        &with(receive("api"), "/fields/1/id", Some(json!("t".repeat(65)))),
        "/fields/1/id",
        "at most 64",
    );
    refused(
        &with(receive("api"), "/fields/1/id", Some(json!("_trackerId"))),
        "/fields/1/id",
        "reserved",
    );
    refused(
        &with(receive("api"), "/fields/2/id", Some(json!("total"))),
        "/fields/2/id",
        "duplicate field id",
    );
}

#[test]
fn field_name_type_and_required_rules() {
    refused(
        &with(receive("api"), "/fields/1/name", None),
        "/fields/1/name",
        "is required",
    );
    refused(
        &with(
            receive("api"),
            "/fields/1/name",
            Some(json!("n".repeat(256))),
        ),
        "/fields/1/name",
        "at most 255",
    );
    refused(
        &with(receive("api"), "/fields/1/type", None),
        "/fields/1/type",
        "is required",
    );
    refused(
        &with(receive("api"), "/fields/1/type", Some(json!("money"))),
        "/fields/1/type",
        "must be one of",
    );
    refused(
        &with(receive("api"), "/fields/1/required", None),
        "/fields/1/required",
        "is required",
    );
}

#[test]
fn primary_key_rules() {
    let two = with(
        receive("api"),
        "/fields/1",
        Some(
            json!({"id": "e2", "name": "E", "type": "email", "required": true, "isPrimaryKey": true}),
        ),
    );
    refused(&two, "/fields/1/isPrimaryKey", "only one field");
    refused(
        &with(receive("api"), "/fields/0/type", Some(json!("text"))),
        "/fields/0/type",
        "must be email",
    );
    refused(
        &with(receive("api"), "/fields/0/required", Some(json!(false))),
        "/fields/0/required",
        "must be true",
    );
    for receive_type in ["webhook", "api"] {
        refused(
            &with(receive(receive_type), "/fields/0/isPrimaryKey", None),
            "/fields",
            "primary key",
        );
        refused(
            &with(
                receive(receive_type),
                "/fields/0/isPrimaryKey",
                Some(json!(false)),
            ),
            "/fields",
            "primary key",
        );
    }
}

#[test]
fn country_code_rules() {
    refused(
        &with(receive("api"), "/fields/2/defaultCountryCode", None),
        "/fields/2/defaultCountryCode",
        "is required",
    );
    for bad in ["+34", "1234", "3a", "034", ""] {
        refused(
            &with(
                receive("api"),
                "/fields/2/defaultCountryCode",
                Some(json!(bad)),
            ),
            "/fields/2/defaultCountryCode",
            "must",
        );
    }
    let on_text = with(
        receive("api"),
        "/fields/1/defaultCountryCode",
        Some(json!("34")),
    );
    refused(
        &on_text,
        "/fields/1/defaultCountryCode",
        "only allowed for phone",
    );
}

#[test]
fn option_rules() {
    refused(
        &with(receive("api"), "/fields/3/options", None),
        "/fields/3/options",
        "is required",
    );
    refused(
        &with(receive("api"), "/fields/3/options", Some(json!([]))),
        "/fields/3/options",
        "at least 1 option",
    );
    let checkbox = with(receive("api"), "/fields/3/type", Some(json!("checkbox")));
    refused(
        &with(checkbox, "/fields/3/options", None),
        "/fields/3/options",
        "is required",
    );
    refused(
        &with(receive("api"), "/fields/3/options/1/id", Some(json!("s"))),
        "/fields/3/options/1/id",
        "duplicate option id",
    );
    refused(
        &with(
            receive("api"),
            "/fields/3/options/1/id",
            Some(json!("o".repeat(65))),
        ),
        "/fields/3/options/1/id",
        "at most 64",
    );
    refused(
        &with(receive("api"), "/fields/3/options/1/label", None),
        "/fields/3/options/1/label",
        "is required",
    );
    refused(
        &with(receive("api"), "/fields/3/options/0", Some(json!("s"))),
        "/fields/3/options/0",
        "must be an object",
    );
    let on_text = with(
        receive("api"),
        "/fields/1/options",
        Some(json!([{"id": "a", "label": "A"}])),
    );
    refused(
        &on_text,
        "/fields/1/options",
        "only allowed for checkbox and radio",
    );
}

#[test]
fn json_pointer_rules() {
    for bad in ["customer/email", "/a~2b", "/a~"] {
        refused(
            &with(
                receive("webhook"),
                "/fields/0/jsonPointerPath",
                Some(json!(bad)),
            ),
            "/fields/0/jsonPointerPath",
            "JSON pointer",
        );
    }
    let long = format!("/{}", "p".repeat(1024));
    refused(
        &with(
            receive("webhook"),
            "/fields/0/jsonPointerPath",
            Some(json!(long)),
        ),
        "/fields/0/jsonPointerPath",
        "at most 1024",
    );
    let on_send = with(send(), "/fields/0/jsonPointerPath", Some(json!("/sku")));
    refused(
        &on_send,
        "/fields/0/jsonPointerPath",
        "not allowed when category is send",
    );
    for good in ["", "/", "/a~0b/c~1d/0"] {
        assert!(
            parse(&with(
                receive("webhook"),
                "/fields/0/jsonPointerPath",
                Some(json!(good))
            ))
            .is_ok(),
            "{good:?}"
        );
    }
}

#[test]
fn webhook_url_rules() {
    refused(
        &with(send(), "/webhookUrl", None),
        "/webhookUrl",
        "is required",
    );
    refused(
        &with(
            receive("api"),
            "/webhookUrl",
            Some(json!("https://x.example")),
        ),
        "/webhookUrl",
        "not allowed when category is receive",
    );
    for bad in [
        "not a url",
        "ftp://x.example/a",
        "/relative",
        "mailto:a@b.co",
        "https://",
    ] {
        refused(
            &with(send(), "/webhookUrl", Some(json!(bad))),
            "/webhookUrl",
            "absolute http or https URL",
        );
    }
    let long = format!("https://x.example/{}", "p".repeat(2048));
    refused(
        &with(send(), "/webhookUrl", Some(json!(long))),
        "/webhookUrl",
        "at most 2048",
    );
    assert!(parse(&with(
        send(),
        "/webhookUrl",
        Some(json!("http://10.0.0.1:8080/x"))
    ))
    .is_ok());
}

#[test]
fn webhook_header_rules() {
    let header = |name: &str, value: &str| json!({"name": name, "value": value});
    refused(
        &with(
            receive("api"),
            "/webhookHeaders",
            Some(json!([header("A", "b")])),
        ),
        "/webhookHeaders",
        "not allowed when category is receive",
    );
    let six: Vec<Json> = (0..6).map(|i| header(&format!("X-{i}"), "v")).collect();
    refused(
        &with(send(), "/webhookHeaders", Some(Json::Array(six))),
        "/webhookHeaders",
        "at most 5",
    );
    let set = |headers: Json| with(send(), "/webhookHeaders", Some(headers));
    refused(
        &set(json!([header("Bad Header", "v")])),
        "/webhookHeaders/0/name",
        "valid HTTP header name",
    );
    refused(
        &set(json!([header(&"h".repeat(129), "v")])),
        "/webhookHeaders/0/name",
        "at most 128",
    );
    refused(
        &set(json!([header("X-A", "1"), header("x-a", "2")])),
        "/webhookHeaders/1/name",
        "duplicate header name",
    );
    refused(
        &set(json!([header("Content-Type", "text/plain")])),
        "/webhookHeaders/0/name",
        "cannot be overridden",
    );
    refused(
        &set(json!([header("X-A", "line\nbreak")])),
        "/webhookHeaders/0/value",
        "visible ASCII",
    );
    refused(
        &set(json!([header("X-A", &"v".repeat(1025))])),
        "/webhookHeaders/0/value",
        "at most 1024",
    );
    refused(
        &set(json!([{"name": "X-A"}])),
        "/webhookHeaders/0/value",
        "is required",
    );
    assert!(parse(&set(json!([header("X-Empty", "")]))).is_ok());
}

#[test]
fn wrong_types_are_reported_for_every_property() {
    let cases = [
        (receive("api"), "/name", json!(1), "must be a string"),
        (receive("api"), "/icon", json!(true), "must be a string"),
        (
            receive("api"),
            "/category",
            json!(["receive"]),
            "must be a string",
        ),
        (receive("api"), "/alias", json!(7), "must be a string"),
        (
            receive("api"),
            "/receiveType",
            json!({}),
            "must be a string",
        ),
        (receive("api"), "/fields/1/id", json!(1), "must be a string"),
        (
            receive("api"),
            "/fields/1/name",
            json!(1),
            "must be a string",
        ),
        (
            receive("api"),
            "/fields/1/type",
            json!(1),
            "must be a string",
        ),
        (
            receive("api"),
            "/fields/1/required",
            json!("yes"),
            "must be a boolean",
        ),
        (
            receive("api"),
            "/fields/1/isPrimaryKey",
            json!("true"),
            "must be a boolean",
        ),
        (
            receive("api"),
            "/fields/1/jsonPointerPath",
            json!(1),
            "must be a string",
        ),
        (
            receive("api"),
            "/fields/2/defaultCountryCode",
            json!(34),
            "must be a string",
        ),
        (
            receive("api"),
            "/fields/3/options",
            json!("s,l"),
            "must be an array",
        ),
        (
            receive("api"),
            "/fields/3/options/0/id",
            json!(1),
            "must be a string",
        ),
        (
            receive("api"),
            "/fields/3/options/0/label",
            json!(1),
            "must be a string",
        ),
        (send(), "/webhookUrl", json!(1), "must be a string"),
        (send(), "/webhookHeaders", json!({}), "must be an array"),
        (
            send(),
            "/webhookHeaders/0/name",
            json!(1),
            "must be a string",
        ),
        (
            send(),
            "/webhookHeaders/0/value",
            json!(1),
            "must be a string",
        ),
    ];
    for (body, path, value, message) in cases {
        refused(&with(body, path, Some(value)), path, message);
    }
}

#[test]
fn reports_every_violation_at_once() {
    let body = json!({
        "name": "",
        "category": "receive",
        "alias": "bad alias",
        "receiveType": "api",
        "webhookUrl": "https://x.example",
        "extra": 1,
        "fields": [
            {"id": "e", "name": "E", "type": "email", "required": false, "isPrimaryKey": true},
            {"id": "e", "name": "n".repeat(300), "type": "phone", "required": true},
            {"id": "c", "name": "C", "type": "checkbox", "required": "no", "options": []},
            {"id": "p", "name": "P", "type": "text", "required": true, "jsonPointerPath": "x"}
        ]
    });
    let violations = parse(&body).expect_err("refused");
    let mut paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/alias",
            "/extra",
            "/fields/0/required",
            "/fields/1/defaultCountryCode",
            "/fields/1/id",
            "/fields/1/name",
            "/fields/2/options",
            "/fields/2/required",
            "/fields/3/jsonPointerPath",
            "/name",
            "/webhookUrl",
        ]
    );
}

#[test]
fn unknown_category_does_not_cascade() {
    let body = json!({"name": "X", "alias": "bad alias", "fields": [{"id": "a", "name": "A", "type": "text", "required": true}]});
    let violations = parse(&body).expect_err("refused");
    let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["/category", "/alias"]);
}
