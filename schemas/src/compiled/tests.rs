//! Ingest validation in each receive mode and for each field type.

use serde_json::{json, Value as Json};

use super::*;
use crate::decode;

fn compile(receive_type: &str, pointers: bool) -> CompiledEventType {
    let pointer = |p: &str| if pointers { json!(p) } else { Json::Null };
    let body = json!({
        "name": "T", "category": "receive", "alias": "t", "receiveType": receive_type,
        "fields": [
            {"id": "email", "name": "E", "type": "email", "required": true, "isPrimaryKey": true,
             "jsonPointerPath": pointer("/customer/email")},
            {"id": "age", "name": "A", "type": "integer", "required": false},
            {"id": "total", "name": "T", "type": "decimal", "required": false, "jsonPointerPath": pointer("/order/total")},
            {"id": "vip", "name": "V", "type": "boolean", "required": false},
            {"id": "born", "name": "B", "type": "date", "required": false},
            {"id": "phone", "name": "P", "type": "phone", "required": false, "defaultCountryCode": "34"},
            {"id": "size", "name": "S", "type": "radio", "required": false,
             "options": [{"id": "s", "label": "S"}, {"id": "l", "label": "L"}]},
            {"id": "tags", "name": "G", "type": "checkbox", "required": false, "jsonPointerPath": pointer("/order/tags/0"),
             "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "c", "label": "C"}]},
            {"id": "note", "name": "N", "type": "text", "required": false}
        ]
    });
    let mut buf = serde_json::to_vec(&body).expect("serialises");
    let value = decode(&mut buf).expect("json");
    let def = EventTypeDefinition::parse(&value).expect("valid definition");
    CompiledEventType::compile(&def)
}

fn validate(compiled: &CompiledEventType, body: Json) -> Result<ValidatedEvent, Vec<Violation>> {
    let mut buf = serde_json::to_vec(&body).expect("serialises");
    let value = decode(&mut buf).expect("json");
    compiled.validate(&value)
}

#[track_caller]
fn refused(compiled: &CompiledEventType, body: Json, path: &str, message: &str) {
    let violations = validate(compiled, body).expect_err("should be refused");
    assert!(
        violations
            .iter()
            .any(|v| v.path == path && v.message.contains(message)),
        "no violation {path:?} containing {message:?} in {violations:#?}"
    );
}

#[test]
fn api_accepts_and_normalises_every_type() {
    let api = compile("api", false);
    assert_eq!(api.receive_type(), ReceiveType::Api);
    let event = validate(
        &api,
        json!({
            "email": " John@Example.ORG ", "age": 42, "total": 12.5, "vip": true,
            "born": "1990-05-17", "phone": "666 777 888", "size": "l", "tags": ["b", "a", "b"],
            "note": "hi", "_ignored_null": null
        }),
    );
    let violations = event.as_ref().err().cloned().unwrap_or_default();
    assert_eq!(
        violations,
        vec![Violation::new("/_ignored_null", "unknown field")]
    );

    let event = validate(&api, json!({
        "email": " John@Example.ORG ", "age": 42.0, "total": 3, "vip": false,
        "born": "1990-05-17T23:30:00-02:00", "phone": "+1 (202) 555-0143", "size": "s", "tags": [], "note": null
    }))
    .expect("valid");
    assert_eq!(event.contact, ContactKey::Email("john@example.org".into()));
    assert_eq!(
        Json::Object(event.fields),
        json!({"email": "john@example.org", "age": 42, "total": "3", "vip": false,
               "born": "1990-05-18T01:30:00Z", "phone": "+12025550143", "size": "s", "tags": []})
    );
}

#[test]
fn api_refuses_unknown_fields_and_non_objects() {
    let api = compile("api", false);
    refused(
        &api,
        json!({"email": "a@b.co", "colour": "red"}),
        "/colour",
        "unknown field",
    );
    refused(
        &api,
        json!({"email": "a@b.co", "_trackerId": "t"}),
        "/_trackerId",
        "unknown field",
    );
    refused(&api, json!(["a@b.co"]), "", "must be an object");
}

#[test]
fn api_refuses_string_forms() {
    let api = compile("api", false);
    let cases = [
        ("age", json!("42"), "must be an integer"),
        ("total", json!("4.5 EUR"), "must be a number"),
        ("vip", json!("true"), "must be a boolean"),
        ("tags", json!("a,b"), "must be an array of option ids"),
        ("note", json!(5), "must be a string"),
        ("phone", json!(34666777888u64), "must be a phone number"),
        ("size", json!(1), "must be a string option id"),
    ];
    for (id, value, message) in cases {
        let mut body = json!({"email": "a@b.co"});
        body[id] = value;
        refused(&api, body, &format!("/{id}"), message);
    }
}

#[test]
fn required_fields_missing_or_null() {
    let api = compile("api", false);
    refused(&api, json!({}), "/email", "field \"email\" is required");
    refused(&api, json!({"email": null}), "/email", "is required");
    let webhook = compile("webhook", true);
    refused(
        &webhook,
        json!({"email": "a@b.co"}),
        "/customer/email",
        "is required",
    );
}

#[test]
fn wrong_values_name_the_field() {
    let api = compile("api", false);
    let cases = [
        (
            "email",
            json!("not-an-email"),
            "field \"email\" must be a valid email address",
        ),
        ("age", json!(42.5), "must be an integer"),
        ("age", json!(1e30), "is out of range"),
        ("age", json!(u64::MAX), "is out of range"),
        ("born", json!("17/05/1990"), "must be a date"),
        ("born", json!("1990-05-17T10:00:00"), "must be a date"),
        ("phone", json!("12"), "must be a phone number"),
        ("phone", json!("call me"), "must be a phone number"),
        ("size", json!("xl"), "option ids"),
        (
            "tags",
            json!(["a", "z"]),
            "not one of the field's option ids",
        ),
        ("tags", json!(["a", 1]), "must be an array of option ids"),
        (
            "note",
            json!("n".repeat(65_537)),
            "at most 65536 characters",
        ),
    ];
    for (id, value, message) in cases {
        let mut body = json!({"email": "a@b.co"});
        body[id] = value;
        refused(&api, body, &format!("/{id}"), message);
    }
}

#[test]
fn webhook_reads_pointers_and_accepts_string_forms() {
    let webhook = compile("webhook", true);
    let event = validate(
        &webhook,
        json!({
            "customer": {"email": "A@B.CO", "name": "ignored"},
            "order": {"total": "4.50", "tags": ["c, a ,c"]},
            "age": " 42 ", "vip": "TRUE", "born": "2024-01-02T10:00:00.250+01:00",
            "phone": 666777888, "size": "s", "note": 12.5, "unrelated": {"deep": [1, 2]}
        }),
    )
    .expect("valid");
    assert_eq!(event.contact, ContactKey::Email("a@b.co".into()));
    assert_eq!(
        Json::Object(event.fields),
        json!({"email": "a@b.co", "total": "4.5", "tags": ["c", "a"], "age": 42, "vip": true,
               "born": "2024-01-02T09:00:00.25Z", "phone": "+34666777888", "size": "s", "note": "12.5"})
    );
}

#[test]
fn webhook_refuses_values_that_are_wrong_even_as_strings() {
    let webhook = compile("webhook", true);
    let cases = [
        (json!({"age": "4.5"}), "/age", "must be an integer"),
        (json!({"vip": "yes"}), "/vip", "must be a boolean"),
        (
            json!({"order": {"total": "NaN"}}),
            "/order/total",
            "must be a number",
        ),
        (
            json!({"order": {"tags": ["a,z"]}}),
            "/order/tags/0",
            "option ids",
        ),
    ];
    for (mut body, path, message) in cases {
        body["customer"] = json!({"email": "a@b.co"});
        refused(&webhook, body, path, message);
    }
}

#[test]
fn form_bodies_are_flat_strings() {
    // What the gateway makes of application/x-www-form-urlencoded: every value a string.
    let webhook = compile("webhook", false);
    let event = validate(&webhook, json!({
        "email": "a@b.co", "age": "7", "total": "1e2", "vip": "false", "tags": "a,b", "size": "l"
    }))
    .expect("valid");
    assert_eq!(event.fields["total"], json!("100"));
    assert_eq!(event.fields["tags"], json!(["a", "b"]));
}

#[test]
fn sdk_events_use_the_tracker_id() {
    let sdk = compile("web/mobile-app", false);
    let event =
        validate(&sdk, json!({"_trackerId": "trk-1", "age": 3})).expect("anonymous visitor");
    assert_eq!(event.contact, ContactKey::Tracker("trk-1".into()));
    assert!(!event.fields.contains_key("_trackerId"));

    let event =
        validate(&sdk, json!({"_trackerId": "trk-1", "email": "a@b.co"})).expect("known visitor");
    assert_eq!(event.contact, ContactKey::Email("a@b.co".into()));

    refused(
        &sdk,
        json!({"_trackerId": "", "email": "a@b.co"}),
        "/_trackerId",
        "1 to 128",
    );
    refused(
        &sdk,
        json!({"_trackerId": 5, "email": "a@b.co"}),
        "/_trackerId",
        "1 to 128",
    );
    refused(
        &sdk,
        json!({"_trackerId": "t".repeat(129), "email": "a@b.co"}),
        "/_trackerId",
        "1 to 128",
    );
    refused(&sdk, json!({"age": 3}), "/email", "is required");
}

#[test]
fn sdk_type_without_primary_key_needs_a_tracker() {
    let body = json!({"name": "T", "category": "receive", "alias": "t", "receiveType": "web/mobile-app",
        "fields": [{"id": "page", "name": "P", "type": "text", "required": false}]});
    let mut buf = serde_json::to_vec(&body).expect("serialises");
    let value = decode(&mut buf).expect("json");
    let sdk = CompiledEventType::compile(&EventTypeDefinition::parse(&value).expect("valid"));
    let violations = validate(&sdk, json!({"page": "/home"})).expect_err("no contact");
    assert_eq!(
        violations,
        vec![Violation::new(
            "",
            "an email primary key or _trackerId is required"
        )]
    );
    assert!(validate(&sdk, json!({"page": "/home", "_trackerId": "x"})).is_ok());
}

/// Validates a body given as raw JSON text, so numbers reach decode exactly as written.
fn validate_text(
    compiled: &CompiledEventType,
    body: &str,
) -> Result<ValidatedEvent, Vec<Violation>> {
    let mut buf = body.as_bytes().to_vec();
    let value = decode(&mut buf).expect("json");
    compiled.validate(&value)
}

#[test]
fn integers_outside_i64_are_out_of_range_naming_the_field() {
    let api = compile("api", false);
    for age in [
        "18446744073709551616",
        "-9223372036854775809",
        "9223372036854775808",
        "1e19",
    ] {
        let body = format!(r#"{{"email": "a@b.co", "age": {age}}}"#);
        let violations = validate_text(&api, &body).expect_err(age);
        assert_eq!(violations.len(), 1, "{age}: {violations:?}");
        assert_eq!(violations[0].path, "/age");
        assert!(
            violations[0]
                .message
                .starts_with("field \"age\" is out of range"),
            "{age}"
        );
    }
    for (age, want) in [
        ("-9223372036854775808", i64::MIN),
        ("9223372036854775807", i64::MAX),
        ("1.5e2", 150),
    ] {
        let body = format!(r#"{{"email": "a@b.co", "age": {age}}}"#);
        let event = validate_text(&api, &body).expect(age);
        assert_eq!(event.fields["age"], json!(want), "{age}");
    }
    let webhook = compile("webhook", true);
    let body = r#"{"customer": {"email": "a@b.co"}, "age": "18446744073709551616"}"#;
    let violations = validate_text(&webhook, body).expect_err("string form out of range");
    assert!(
        violations[0].message.contains("out of range"),
        "{violations:?}"
    );
}

#[test]
fn decimals_keep_their_exact_canonical_text() {
    let api = compile("api", false);
    let cases = [
        ("19.99", "19.99"),
        ("19.990", "19.99"),
        (
            "0.1000000000000000055511151231257827",
            "0.1000000000000000055511151231257827",
        ),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        ("18446744073709551616", "18446744073709551616"),
        ("-1.25e-3", "-0.00125"),
        ("-0.0", "0"),
        ("7", "7"),
    ];
    for (total, want) in cases {
        let body = format!(r#"{{"email": "a@b.co", "total": {total}}}"#);
        let event = validate_text(&api, &body).expect(total);
        assert_eq!(event.fields["total"], json!(want), "{total}");
    }
    // Decimals are answered as text, so strict mode takes decimal text back, canonicalised;
    // anything else in a string is refused.
    let event = validate_text(&api, r#"{"email": "a@b.co", "total": "019.990"}"#).expect("text");
    assert_eq!(event.fields["total"], json!("19.99"));
    refused(
        &api,
        json!({"email": "a@b.co", "total": "19,99"}),
        "/total",
        "must be a number",
    );
}

#[test]
fn lenient_decimals_from_strings_are_canonical_and_bounded() {
    let webhook = compile("webhook", true);
    let event = validate_text(
        &webhook,
        r#"{"customer": {"email": "a@b.co"}, "order": {"total": " +0019.9900 "}}"#,
    )
    .expect("valid");
    assert_eq!(event.fields["total"], json!("19.99"));
    let violations = validate_text(
        &webhook,
        r#"{"customer": {"email": "a@b.co"}, "order": {"total": "1e400"}}"#,
    )
    .expect_err("out of range");
    assert_eq!(violations[0].path, "/order/total");
    assert!(violations[0].message.contains("out of range"));
}

#[test]
fn numbers_kept_as_text_are_not_strings_or_objects() {
    let api = compile("api", false);
    // A long number where a string belongs is still not a string.
    let violations = validate_text(&api, r#"{"email": 12345678901234567890}"#).expect_err("number");
    assert!(violations
        .iter()
        .any(|v| v.path == "/email" && v.message.contains("valid email")));
    let violations = validate_text(&api, "1e5").expect_err("not an object");
    assert_eq!(violations, vec![Violation::new("", "must be an object")]);
    // Lenient text fields write the number's exact text.
    let webhook = compile("webhook", false);
    let event = validate_text(
        &webhook,
        r#"{"email": "a@b.co", "note": 1234567890123456789012}"#,
    )
    .expect("valid");
    assert_eq!(event.fields["note"], json!("1234567890123456789012"));
}
