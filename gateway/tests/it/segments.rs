//! Segments (SPEC §6) end to end on both stores: a contact enters when its third `order-paid`
//! within the window arrives, leaves when a field changes or the window passes, a segment
//! created later takes in existing contacts, each transition is delivered once and signed, and
//! a segment starts a workflow. Protection of what segments read (409 naming the segment), and
//! every condition shape refused with its path.
//!
//! Bad inputs tried: no name or conditions; 21 conditions; an unknown `match`; a condition on
//! both a contact field and events, or on neither; an unknown property; a bad field name; an
//! unknown op; a value with `exists`, none with `eq`, an object as value; `contains` with a
//! number; `op` without `field`; windows `0s`, `3650d`, `30w`; counts above 10,000, negative,
//! or with `contains`; an unknown event type, a send type, another store's type; a field the
//! type lacks; `gt` on text, `contains` on a decimal, `eq` on a checkbox; a value its field
//! refuses; a contact field that a segment-started workflow writes, and the reverse; a value
//! of 1,025 characters, a name of 256; a 101st segment in a store.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{wait_until, TestGateway};
use crate::on_both_stores;
use crate::receiver::{Answer, Received, Receiver};
use crate::webhooks::{fast, order_type, post_order};

const WAIT: Duration = Duration::from_secs(20);

async fn create_segment(gw: &TestGateway, body: Value) -> String {
    let reply = gw.post("/v1/segments", &gw.admin_key, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["size"], 0);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// The segment messages received so far, as (type, segment id, email).
fn transitions(receiver: &Receiver) -> Vec<(String, String, String)> {
    receiver
        .received()
        .iter()
        .map(Received::json)
        .map(|m| {
            (
                m["type"].as_str().unwrap_or_default().to_owned(),
                m["data"]["segmentId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                m["data"]["contact"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

async fn wait_for_transition(receiver: &Receiver, kind: &str, segment: &str, email: &str) {
    let wanted = (kind.to_owned(), segment.to_owned(), email.to_owned());
    wait_until(WAIT, format!("{kind} {segment} for {email}"), || async {
        transitions(receiver).contains(&wanted).then_some(())
    })
    .await;
}

async fn members(gw: &TestGateway, segment: &str) -> Vec<String> {
    let reply = gw
        .get(&format!("/v1/segments/{segment}/contacts"), &gw.admin_key)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| c["email"].as_str().unwrap_or_default().to_owned())
        .collect()
}

on_both_stores! {
    with fast;

    async fn contacts_enter_and_leave_segments_once_per_transition(gw: TestGateway) {
        let paid = gw.event_type(order_type()).await;
        let paid_id = paid["id"].as_str().expect("id").to_owned();
        let receiver = Receiver::start(Answer::Ok).await;
        let hook = gw.post("/v1/webhooks", &gw.admin_key, json!({
            "targetUrl": receiver.url, "types": ["segment.entered", "segment.exited"]
        })).await;
        assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
        let secret = hook.body["secret"].as_str().expect("secret").to_owned();

        let loyal = create_segment(&gw, json!({
            "name": "Loyal", "match": "all", "conditions": [
                {"event": {"customEventTypeId": paid_id, "within": "30d", "count": {"op": "gte", "value": 3}}},
                {"contactField": "optedOut", "op": "notExists"}
            ]
        })).await;
        let burst = create_segment(&gw, json!({
            "name": "Burst", "conditions": [
                {"event": {"customEventTypeId": paid_id, "within": "3s", "count": {"op": "gte", "value": 2}}}
            ]
        })).await;
        let big = create_segment(&gw, json!({
            "name": "Big spender", "match": "any", "conditions": [
                {"event": {"customEventTypeId": paid_id, "field": "total", "op": "gte", "value": "100"}}
            ]
        })).await;
        // A workflow the Loyal segment starts, reading the segment's name.
        let workflow = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "Welcome loyal", "trigger": {"segmentEntered": loyal},
            "actions": [{"type": "setContactFields", "fields": {"loyalty": "{{event.segmentName}}"}}]
        })).await;
        assert_eq!(workflow.status, StatusCode::CREATED, "{}", workflow.body);

        post_order(&gw, "ann@example.com", "o-1", 10.0).await;
        post_order(&gw, "bob@example.com", "b-1", 250.0).await;
        post_order(&gw, "ann@example.com", "o-2", 20.0).await;
        wait_for_transition(&receiver, "segment.entered", &burst, "ann@example.com").await;
        wait_for_transition(&receiver, "segment.entered", &big, "bob@example.com").await;
        assert!(members(&gw, &loyal).await.is_empty(), "two orders are not three");

        post_order(&gw, "ann@example.com", "o-3", 30.0).await;
        wait_for_transition(&receiver, "segment.entered", &loyal, "ann@example.com").await;
        assert_eq!(members(&gw, &loyal).await, ["ann@example.com"]);
        let seg = gw.get(&format!("/v1/segments/{loyal}"), &gw.admin_key).await;
        assert_eq!(seg.body["size"], 1, "{}", seg.body);
        let ann = wait_until(WAIT, "the segment's workflow", || async {
            let reply = gw.get("/v1/contacts/ann@example.com", &gw.admin_key).await;
            (reply.body["fields"]["loyalty"] == "Loyal").then_some(reply.body)
        }).await;
        assert_eq!(ann["fields"], json!({"loyalty": "Loyal"}));
        let of_ann = gw.get("/v1/contacts/ann@example.com/segments", &gw.admin_key).await;
        let ids: Vec<&str> = of_ann.body["results"].as_array().expect("results").iter()
            .map(|s| s["id"].as_str().unwrap_or_default()).collect();
        assert!(ids.contains(&loyal.as_str()), "{}", of_ann.body);
        let filtered = gw.get(&format!("/v1/contacts?segmentId={big}"), &gw.admin_key).await;
        assert_eq!(filtered.body["results"][0]["email"], "bob@example.com", "{}", filtered.body);
        assert_eq!(filtered.body["results"].as_array().map(Vec::len), Some(1));

        // A field change through the API: Ann leaves Loyal within seconds.
        let patched = gw.call(Method::PATCH, "/v1/contacts/ann@example.com", Some(&gw.admin_key),
            Some(&json!({"fields": {"optedOut": true}}))).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        wait_for_transition(&receiver, "segment.exited", &loyal, "ann@example.com").await;
        // The window passes: Ann leaves Burst with no new event.
        wait_for_transition(&receiver, "segment.exited", &burst, "ann@example.com").await;

        // A segment created now takes in the contacts that already fit.
        let any_order = create_segment(&gw, json!({
            "name": "Customers", "conditions": [{"event": {"customEventTypeId": paid_id}}]
        })).await;
        wait_for_transition(&receiver, "segment.entered", &any_order, "ann@example.com").await;
        wait_for_transition(&receiver, "segment.entered", &any_order, "bob@example.com").await;

        // Settled: every transition arrived exactly once, signed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut seen = transitions(&receiver);
        seen.sort();
        let mut expected = vec![
            ("segment.entered".to_owned(), burst.clone(), "ann@example.com".to_owned()),
            ("segment.exited".to_owned(), burst.clone(), "ann@example.com".to_owned()),
            ("segment.entered".to_owned(), big.clone(), "bob@example.com".to_owned()),
            ("segment.entered".to_owned(), loyal.clone(), "ann@example.com".to_owned()),
            ("segment.exited".to_owned(), loyal.clone(), "ann@example.com".to_owned()),
            ("segment.entered".to_owned(), any_order.clone(), "ann@example.com".to_owned()),
            ("segment.entered".to_owned(), any_order.clone(), "bob@example.com".to_owned()),
        ];
        expected.sort();
        assert_eq!(seen, expected);
        let verifier = standardwebhooks::Webhook::new(&secret).expect("secret");
        for message in receiver.received() {
            verifier.verify(&message.body, &message.headers).expect("signed");
            assert_eq!(message.header("x-sluice-event"), message.json()["type"].as_str().unwrap_or_default());
        }

        // Protection: what a segment reads cannot be taken away.
        let integration = paid["integrationId"].as_str().expect("integration");
        let refused = gw.call(Method::DELETE, &format!("/v1/custom-integrations/{integration}"),
            Some(&gw.admin_key), None).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap_or_default().contains("Loyal")
            || refused.body["detail"].as_str().unwrap_or_default().contains("Burst"), "{}", refused.body);
        let refused = gw.call(Method::DELETE, &format!("/v1/custom-event-types/{paid_id}"),
            Some(&gw.admin_key), None).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        let mut without_total = order_type();
        without_total["fields"].as_array_mut().expect("fields").retain(|f| f["id"] != "total");
        let refused = gw.call(Method::PUT, &format!("/v1/custom-event-types/{paid_id}"),
            Some(&gw.admin_key), Some(&without_total)).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap_or_default().contains("Big spender"), "{}", refused.body);
        // A change that keeps what segments read is fine.
        let mut renamed = order_type();
        renamed["name"] = json!("Order paid (v2)");
        let kept = gw.call(Method::PUT, &format!("/v1/custom-event-types/{paid_id}"),
            Some(&gw.admin_key), Some(&renamed)).await;
        assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);

        // Deleting the segments frees the type; the workflow the segment started stays.
        for segment in [&loyal, &burst, &big, &any_order] {
            let deleted = gw.call(Method::DELETE, &format!("/v1/segments/{segment}"), Some(&gw.admin_key), None).await;
            assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        }
        let gone = gw.get(&format!("/v1/segments/{loyal}/contacts"), &gw.admin_key).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        let deleted = gw.call(Method::DELETE, &format!("/v1/custom-integrations/{integration}"),
            Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    }

    async fn every_wrong_condition_is_refused_with_its_path(gw: TestGateway) {
        let paid = gw.event_type(order_type()).await;
        let paid_id = paid["id"].as_str().expect("id").to_owned();
        let mut choices = order_type();
        choices["alias"] = json!("survey");
        choices["fields"].as_array_mut().expect("fields").extend([
            json!({"id": "colours", "name": "Colours", "type": "checkbox", "required": false,
                   "options": [{"id": "red", "label": "Red"}, {"id": "blue", "label": "Blue"}]}),
        ]);
        let survey = gw.event_type(choices).await;
        let survey_id = survey["id"].as_str().expect("id").to_owned();
        let send = gw.event_type(json!({
            "name": "Out", "category": "send", "webhookUrl": "https://crm.example.com/in",
            "fields": [{"id": "x", "name": "X", "type": "text", "required": false}]
        })).await;
        let send_id = send["id"].as_str().expect("id").to_owned();
        let ev = |extra: Value| {
            let mut event = json!({"customEventTypeId": paid_id});
            for (k, v) in extra.as_object().expect("object") {
                event[k] = v.clone();
            }
            json!({"name": "s", "conditions": [{"event": event}]})
        };
        let many: Vec<Value> = (0..21).map(|_| json!({"contactField": "a", "op": "exists"})).collect();
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "/name"),
            (json!({"name": "s"}), "/conditions"),
            (json!({"name": "s", "conditions": many}), "/conditions"),
            (json!({"name": "s", "conditions": []}), "/conditions"),
            (json!({"name": "s", "match": "some", "conditions": [{"contactField": "a", "op": "exists"}]}), "/match"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "exists", "event": {"customEventTypeId": paid_id}}]}), "/conditions/0/event"),
            (json!({"name": "s", "conditions": [{"op": "exists"}]}), "/conditions/0"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "exists", "extra": 1}]}), "/conditions/0/extra"),
            (json!({"name": "s", "conditions": [{"contactField": "a b", "op": "exists"}]}), "/conditions/0/contactField"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "like", "value": "x"}]}), "/conditions/0/op"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "exists", "value": 1}]}), "/conditions/0/value"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "eq"}]}), "/conditions/0/value"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "eq", "value": {"x": 1}}]}), "/conditions/0/value"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "contains", "value": 3}]}), "/conditions/0/value"),
            (json!({"name": "s", "conditions": [{"contactField": "a", "op": "eq", "value": "x".repeat(1025)}]}), "/conditions/0/value"),
            (json!({"name": "n".repeat(256), "conditions": [{"contactField": "a", "op": "exists"}]}), "/name"),
            (ev(json!({"op": "eq", "value": 1})), "/conditions/0/event/op"),
            (ev(json!({"within": "0s"})), "/conditions/0/event/within"),
            (ev(json!({"within": "3650d"})), "/conditions/0/event/within"),
            (ev(json!({"within": "30w"})), "/conditions/0/event/within"),
            (ev(json!({"count": {"op": "gte", "value": 10001}})), "/conditions/0/event/count/value"),
            (ev(json!({"count": {"op": "gte", "value": -1}})), "/conditions/0/event/count/value"),
            (ev(json!({"count": {"op": "contains", "value": 1}})), "/conditions/0/event/count/op"),
            (json!({"name": "s", "conditions": [{"event": {"customEventTypeId": "0193a5b2-0000-7000-8000-000000000000"}}]}), "/conditions/0/event/customEventTypeId"),
            (json!({"name": "s", "conditions": [{"event": {"customEventTypeId": send_id}}]}), "/conditions/0/event/customEventTypeId"),
            (ev(json!({"field": "nope", "op": "exists"})), "/conditions/0/event/field"),
            (ev(json!({"field": "orderId", "op": "gt", "value": "a"})), "/conditions/0/event/op"),
            (ev(json!({"field": "total", "op": "contains", "value": "1"})), "/conditions/0/event/op"),
            (ev(json!({"field": "total", "op": "gt", "value": "lots"})), "/conditions/0/event/value"),
            (json!({"name": "s", "conditions": [{"event": {"customEventTypeId": survey_id, "field": "colours", "op": "eq", "value": "red"}}]}), "/conditions/0/event/op"),
            (json!({"name": "s", "conditions": [{"event": {"customEventTypeId": survey_id, "field": "colours", "op": "contains", "value": "green"}}]}), "/conditions/0/event/value"),
        ];
        for (body, path) in cases {
            let reply = gw.post("/v1/segments", &gw.admin_key, body.clone()).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.body);
            let paths: Vec<&str> = reply.body["errors"].as_array().expect("errors").iter()
                .map(|e| e["path"].as_str().unwrap_or_default()).collect();
            assert!(paths.contains(&path), "{body}: expected {path} in {}", reply.body);
        }
        // A checkbox condition names one option; it is stored as that option.
        let ok = gw.post("/v1/segments", &gw.admin_key, json!({"name": "Reds", "conditions": [
            {"event": {"customEventTypeId": survey_id, "field": "colours", "op": "contains", "value": "red"}}
        ]})).await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
        assert_eq!(ok.body["conditions"][0]["event"]["value"], "red");
        assert_eq!(ok.body["match"], "all");

        // Another store's type is unknown here.
        let other = gateway::create_store(&gw.storage, "other").await.expect("store").api_key;
        let reply = gw.post("/v1/segments", &other, json!({"name": "s", "conditions": [
            {"event": {"customEventTypeId": paid_id}}]})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);

        // A store holds at most 100 segments: the 101st is a 409, whatever it names.
        let existing = gw.get("/v1/segments?limit=200", &gw.admin_key).await.body["results"]
            .as_array().map_or(0, Vec::len);
        for n in existing..100 {
            let made = gw.post("/v1/segments", &gw.admin_key, json!({"name": format!("s{n}"),
                "conditions": [{"contactField": format!("f{n}"), "op": "exists"}]})).await;
            assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        }
        gw.post("/v1/segments", &gw.admin_key, json!({"name": "one too many",
            "conditions": [{"contactField": "g", "op": "exists"}]})).await
            .problem(StatusCode::CONFLICT);
        let listed = gw.get("/v1/segments?limit=200", &gw.admin_key).await;
        assert_eq!(listed.body["results"].as_array().map(Vec::len), Some(100));
        let first = listed.body["results"][0]["id"].as_str().expect("id").to_owned();
        let deleted = gw.call(Method::DELETE, &format!("/v1/segments/{first}"), Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);

        // Segments and segment-started workflows never read what the other writes.
        let reads = gw.post("/v1/segments", &gw.admin_key, json!({"name": "Tiered", "conditions": [
            {"contactField": "tier", "op": "eq", "value": "gold"}]})).await;
        assert_eq!(reads.status, StatusCode::CREATED, "{}", reads.body);
        let refused = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "w", "trigger": {"segmentEntered": reads.body["id"]},
            "actions": [{"type": "setContactFields", "fields": {"tier": "silver"}}]})).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert_eq!(refused.body["errors"][0]["path"], "/actions/0/fields/tier");
        let writes = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "w", "trigger": {"segmentEntered": reads.body["id"]},
            "actions": [{"type": "setContactFields", "fields": {"badge": "yes"}}]})).await;
        assert_eq!(writes.status, StatusCode::CREATED, "{}", writes.body);
        let refused = gw.post("/v1/segments", &gw.admin_key, json!({"name": "Badged", "conditions": [
            {"contactField": "badge", "op": "exists"}]})).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        let unknown = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "w", "trigger": {"segmentEntered": "nope"},
            "actions": [{"type": "setContactFields", "fields": {"badge": "yes"}}]})).await;
        assert_eq!(unknown.body["errors"][0]["path"], "/trigger/segmentEntered", "{}", unknown.body);
    }
    async fn erasing_a_contact_takes_everything_stored_about_it(gw: TestGateway) {
        let paid = gw.event_type(order_type()).await;
        // Deliveries stay in the outbox: the receiver refuses them.
        let receiver = Receiver::start(Answer::Status(503)).await;
        let hook = gw.post("/v1/webhooks", &gw.admin_key, json!({"targetUrl": receiver.url})).await;
        assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
        let hook_id = hook.body["id"].as_str().expect("id").to_owned();
        let segment = create_segment(&gw, json!({"name": "Buyers", "conditions": [
            {"event": {"customEventTypeId": paid["id"]}}]})).await;
        post_order(&gw, "ann@example.com", "a-1", 5.0).await;
        post_order(&gw, "bob@example.com", "b-1", 6.0).await;
        gw.activities_eventually("ann@example.com", 1).await;
        wait_until(WAIT, "both members", || async {
            (members(&gw, &segment).await.len() == 2).then_some(())
        }).await;
        // Whom each message is about, from what the receiver was sent (each is tried at once).
        let whom = wait_until(WAIT, "three messages about each contact", || async {
            let mut whom = std::collections::HashMap::new();
            for message in receiver.received() {
                let body = message.json();
                let data = &body["data"];
                let email = data["contact"]["email"].as_str().or(data["email"].as_str());
                whom.insert(message.header("webhook-id").to_owned(), email.unwrap_or_default().to_owned());
            }
            let of = |e: &str| whom.values().filter(|v| v.as_str() == e).count();
            (of("ann@example.com") >= 3 && of("bob@example.com") >= 3).then_some(whom)
        }).await;
        let about = |email: &'static str| {
            let gw = &gw;
            let hook_id = hook_id.clone();
            let whom = whom.clone();
            async move {
                let reply = gw.get(&format!("/v1/webhooks/{hook_id}/deliveries?limit=100"), &gw.admin_key).await;
                reply.body["results"].as_array().expect("results").iter()
                    .filter(|d| whom.get(d["messageId"].as_str().unwrap_or_default()).is_some_and(|e| e == email))
                    .count()
            }
        };
        assert!(about("ann@example.com").await >= 3, "received, contact.created and segment.entered");

        let erased = gw.call(Method::DELETE, "/v1/contacts/Ann@Example.com", Some(&gw.admin_key), None).await;
        assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.body);
        gw.get("/v1/contacts/ann@example.com", &gw.admin_key).await.problem(StatusCode::NOT_FOUND);
        gw.get("/v1/contacts/ann@example.com/activities", &gw.admin_key).await.problem(StatusCode::NOT_FOUND);
        assert_eq!(members(&gw, &segment).await, ["bob@example.com"]);
        assert_eq!(about("ann@example.com").await, 0);
        assert!(about("bob@example.com").await >= 3, "Bob's deliveries stay");
        // Twice: there is nothing left to erase.
        gw.call(Method::DELETE, "/v1/contacts/ann@example.com", Some(&gw.admin_key), None)
            .await
            .problem(StatusCode::NOT_FOUND);
        // A key that may only read contacts may not erase them.
        let reader = gw.key_with(&["contacts:read"]).await;
        gw.call(Method::DELETE, "/v1/contacts/bob@example.com", Some(&reader), None)
            .await
            .problem(StatusCode::FORBIDDEN);
        // A later event makes a new contact, with only its own activity.
        post_order(&gw, "ann@example.com", "a-2", 7.0).await;
        let activities = gw.activities_eventually("ann@example.com", 1).await;
        assert_eq!(activities[0]["fields"]["orderId"], "a-2");
    }
}
