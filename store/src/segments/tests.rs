use serde_json::json;
use time::macros::datetime;

use super::*;

fn definition(value: Value) -> SegmentDefinition {
    serde_json::from_value(value).expect("definition")
}

fn fact(type_id: &str, at: OffsetDateTime, fields: Value) -> Fact {
    let Value::Object(fields) = fields else {
        panic!("object")
    };
    Fact {
        event_type_id: type_id.to_owned(),
        received_at: at,
        fields,
    }
}

const NOW: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);

#[test]
fn a_third_order_within_thirty_days_enters_and_the_oldest_leaving_is_the_recheck() {
    let segment = definition(json!({"name": "loyal", "match": "all", "conditions": [
        {"event": {"customEventTypeId": "paid", "within": "30d", "count": {"op": "gte", "value": 3}}}
    ]}));
    let day = time::Duration::days(1);
    let mut facts = vec![
        fact("paid", NOW - day * 20, json!({})),
        fact("paid", NOW - day * 5, json!({})),
        // Outside the window, and another type: neither counts.
        fact("paid", NOW - day * 40, json!({})),
        fact("other", NOW - day, json!({})),
    ];
    let verdict = segment.evaluate(&Map::new(), &facts, NOW);
    assert!(!verdict.member);
    assert_eq!(verdict.recheck_at, Some(NOW - day * 20 + day * 30));
    facts.push(fact("paid", NOW, json!({})));
    let verdict = segment.evaluate(&Map::new(), &facts, NOW);
    assert!(verdict.member);
    // Ten days on, the order of day -20 has left the window: two remain.
    let later = NOW + day * 10 + time::Duration::SECOND;
    assert!(!segment.evaluate(&Map::new(), &facts, later).member);
    assert_eq!(segment.reads_since(NOW), Some(NOW - day * 30));
}

#[test]
fn event_fields_and_contact_fields_compare_by_kind() {
    let segment = definition(json!({"name": "big", "match": "any", "conditions": [
        {"event": {"customEventTypeId": "paid", "field": "total", "op": "gt", "value": 100}},
        {"contactField": "tier", "op": "eq", "value": "gold"}
    ]}));
    let small = [fact("paid", NOW, json!({"total": 99.5}))];
    let big = [fact("paid", NOW, json!({"total": 100.25}))];
    assert!(!segment.evaluate(&Map::new(), &small, NOW).member);
    assert!(segment.evaluate(&Map::new(), &big, NOW).member);
    let Value::Object(gold) = json!({"tier": "gold"}) else {
        unreachable!()
    };
    assert!(segment.evaluate(&gold, &small, NOW).member);
    assert_eq!(
        segment.reads_since(NOW),
        None,
        "no window: every event counts"
    );
}

#[test]
fn comparisons_need_a_value_and_values_of_another_kind_never_match() {
    assert!(!holds(Op::Eq, None, Some(&json!(1))));
    assert!(!holds(Op::Ne, None, Some(&json!(1))));
    assert!(!holds(Op::Ne, Some(&Value::Null), Some(&json!(1))));
    assert!(holds(Op::NotExists, Some(&Value::Null), None));
    assert!(holds(Op::Exists, Some(&json!(false)), None));
    assert!(holds(Op::Ne, Some(&json!("one")), Some(&json!(1))));
    assert!(!holds(Op::Gt, Some(&json!("two")), Some(&json!(1))));
    assert!(holds(Op::Ne, Some(&json!(true)), Some(&json!("true"))));
    assert!(holds(Op::Eq, Some(&json!(2)), Some(&json!(2.0))));
    // A decimal's text against a number: numerically, never as text ("30" > "100" as text).
    assert!(!holds(Op::Gte, Some(&json!("30")), Some(&json!(100))));
    assert!(holds(Op::Gte, Some(&json!("250.5")), Some(&json!(100))));
    assert!(!holds(Op::Gte, Some(&json!("many")), Some(&json!(100))));
    assert!(holds(
        Op::Contains,
        Some(&json!("Hello there")),
        Some(&json!("lo t"))
    ));
    assert!(!holds(
        Op::Contains,
        Some(&json!("Hello")),
        Some(&json!("hello"))
    ));
    assert!(holds(
        Op::Contains,
        Some(&json!(["red", "blue"])),
        Some(&json!("blue"))
    ));
    assert!(!holds(Op::Contains, Some(&json!(12)), Some(&json!("1"))));
}

#[test]
fn instants_compare_as_instants_whatever_their_precision() {
    // As text, "…00.5Z" sorts before "…00Z"; as instants it is later.
    let later = json!("2026-01-01T00:00:00.5Z");
    let earlier = json!("2026-01-01T00:00:00Z");
    assert!(holds(Op::Gt, Some(&later), Some(&earlier)));
    assert!(holds(Op::Lt, Some(&json!("apple")), Some(&json!("banana"))));
}

#[test]
fn at_most_counts_hold_with_no_events_and_windows_parse_strictly() {
    let segment = definition(json!({"name": "quiet", "match": "all", "conditions": [
        {"event": {"customEventTypeId": "login", "within": "7d", "count": {"op": "lte", "value": 0}}}
    ]}));
    assert_eq!(
        segment.evaluate(&Map::new(), &[], NOW),
        Verdict {
            member: true,
            recheck_at: None
        }
    );
    assert_eq!(parse_window("30d"), Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(parse_window("90s"), Some(Duration::from_secs(90)));
    for bad in [
        "",
        "d",
        "30",
        "30w",
        "-1d",
        "1.5h",
        "30 d",
        "9999999999d",
        "٣d",
    ] {
        assert_eq!(parse_window(bad), None, "{bad}");
    }
}

#[test]
fn stored_definitions_read_back_as_written() {
    let text = json!({"name": "n", "match": "any", "conditions": [
        {"contactField": "plan", "op": "exists"},
        {"event": {"customEventTypeId": "t", "field": "f", "op": "notExists", "within": "1h", "count": {"op": "eq", "value": 2}}}
    ]});
    let segment = definition(text.clone());
    assert_eq!(serde_json::to_value(&segment).expect("json"), text);
    assert_eq!(segment.event_types().collect::<Vec<_>>(), ["t"]);
    assert_eq!(segment.contact_fields().collect::<Vec<_>>(), ["plan"]);
    assert_eq!(segment.event_fields().collect::<Vec<_>>(), [("t", "f")]);
}
