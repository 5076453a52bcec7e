//! Workflows (SPEC §6) end to end: an event triggers a workflow that sets contact fields and
//! sends a custom event to a real receiver with the send type's headers, signed. Bad inputs
//! tried: a missing name, trigger and actions; an unknown status; a trigger on an unknown type
//! and on a send type; an unknown action type; empty fields; a malformed template; setting
//! the contact's email; a send action naming a receive type and a field the send type lacks,
//! leaving out a field it requires, or fixing a value its field's type refuses; and at run time
//! a rendered value of the wrong type and a required value that renders as null.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::TestGateway;
use crate::on_both_stores;
use crate::receiver::{Answer, Receiver};
use crate::webhooks::{fast, order_type, post_order};

const WAIT: Duration = Duration::from_secs(20);

fn crm_type(url: &str) -> Value {
    json!({
        "name": "CRM sync", "category": "send", "webhookUrl": url,
        "webhookHeaders": [{"name": "X-Api-Key", "value": "k-123"}],
        "fields": [
            {"id": "orderId", "name": "Order", "type": "text", "required": true},
            {"id": "total", "name": "Total", "type": "decimal", "required": false},
            {"id": "note", "name": "Note", "type": "text", "required": false},
            {"id": "quantity", "name": "Quantity", "type": "integer", "required": false}
        ]
    })
}

/// The outbox rows of a send type, oldest first: `(status, attempts, last_error, payload)`.
/// The outbox has no API for send types, so the test reads the store itself.
async fn send_deliveries(
    gw: &TestGateway,
    type_id: &str,
) -> Vec<(String, i64, Option<String>, String)> {
    sqlx::any::install_default_drivers();
    let url = gw.storage.database_url.as_deref().expect("database url");
    let pool = sqlx::AnyPool::connect(url)
        .await
        .expect("connect to the store");
    let rows = sqlx::query_as(
        "SELECT status, attempts, last_error, payload FROM deliveries WHERE event_type_id = $1 ORDER BY id",
    )
    .bind(type_id)
    .fetch_all(&pool)
    .await
    .expect("deliveries");
    pool.close().await;
    rows
}

async fn contact_fields(gw: &TestGateway, email: &str) -> Value {
    let reply = gw
        .get(&format!("/v1/contacts/{email}"), &gw.admin_key)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["fields"].clone()
}

on_both_stores! {
    with fast;

    async fn a_workflow_sets_fields_and_sends_a_signed_custom_event(gw: TestGateway) {
        let trigger = gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Ok).await;
        let crm = gw.event_type(crm_type(&receiver.url)).await;
        let secret = crm["signingSecret"].as_str().expect("a send type shows its secret once").to_owned();
        let crm_id = crm["id"].as_str().expect("id");
        let read = gw.get(&format!("/v1/custom-event-types/{crm_id}"), &gw.admin_key).await;
        assert!(read.body.get("signingSecret").is_none(), "{}", read.body);

        let created = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "Sync paid orders", "status": "active",
            "trigger": {"customEventTypeId": trigger["id"]},
            "actions": [
                {"type": "setContactFields", "fields": {
                    "lastOrder": "{{event.orderId}}", "lastTotal": "{{event.total}}",
                    "greeting": "Hi {{contact.email}}"}},
                {"type": "sendCustomEvent", "customEventTypeId": crm_id, "fields": {
                    "orderId": "{{event.orderId}}", "total": "{{event.total}}",
                    "note": "{{contact.lastOrder}} for {{contact.email}}", "quantity": "2"}}
            ]
        })).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let workflow = created.body["id"].as_str().expect("id").to_owned();

        post_order(&gw, "ann@example.com", "o-1", 12.5).await;
        let sent = receiver.wait_for(1, WAIT, |_| true).await;
        assert_eq!(sent[0].header("x-api-key"), "k-123");
        assert_eq!(sent[0].header("x-sluice-event"), "custom_event.sent");
        standardwebhooks::Webhook::new(&secret).expect("secret")
            .verify(&sent[0].body, &sent[0].headers).expect("signed with the send type's secret");
        let body = sent[0].json();
        assert_eq!(body["data"]["customEventTypeId"], crm_id);
        assert_eq!(body["data"]["workflowId"], workflow.as_str());
        assert_eq!(body["data"]["contact"], json!({"email": "ann@example.com"}));
        // Actions run in order: the note reads the field the first action just set.
        // Values are sent as the send type's field types have them: "2" becomes an integer.
        assert_eq!(body["data"]["fields"], json!({"orderId": "o-1", "total": "12.5", "note": "o-1 for ann@example.com", "quantity": 2}));
        assert_eq!(
            contact_fields(&gw, "ann@example.com").await,
            json!({"lastOrder": "o-1", "lastTotal": "12.5", "greeting": "Hi ann@example.com"})
        );

        // One contact's runs follow its events' order.
        for n in 2..=6 {
            post_order(&gw, "ann@example.com", &format!("o-{n}"), f64::from(n)).await;
        }
        let all = receiver.wait_for(6, WAIT, |_| true).await;
        let orders: Vec<String> = all.iter().map(|r| r.json()["data"]["fields"]["orderId"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(orders.len(), 6);
        assert_eq!(orders.iter().collect::<std::collections::HashSet<_>>().len(), 6, "{orders:?}");
        assert_eq!(contact_fields(&gw, "ann@example.com").await["lastOrder"], "o-6");

        // Paused, it does nothing.
        let paused = gw.call(Method::PATCH, &format!("/v1/workflows/{workflow}"), Some(&gw.admin_key),
                             Some(&json!({"status": "paused"}))).await;
        assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
        assert_eq!(paused.body["status"], "paused");
        post_order(&gw, "ann@example.com", "o-7", 7.0).await;
        gw.activities_eventually("ann@example.com", 7).await;
        assert_eq!(contact_fields(&gw, "ann@example.com").await["lastOrder"], "o-6");
        assert_eq!(receiver.received().len(), 6);

        let metrics = gw.call(Method::GET, "/metrics", None, None).await;
        let text = metrics.body.as_str().expect("text");
        assert!(text.contains("sluice_workflow_runs_total{outcome=\"completed\"}"), "{text}");

        let listed = gw.get("/v1/workflows", &gw.admin_key).await;
        assert_eq!(listed.body["results"].as_array().map(Vec::len), Some(1));
        let deleted = gw.call(Method::DELETE, &format!("/v1/workflows/{workflow}"), Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        gw.get(&format!("/v1/workflows/{workflow}"), &gw.admin_key).await.problem(StatusCode::NOT_FOUND);
    }

    async fn workflow_definitions_are_checked(gw: TestGateway) {
        let trigger = gw.event_type(order_type()).await;
        let crm = gw.event_type(crm_type("https://crm.example.com/in")).await;
        let (trigger_id, crm_id) = (trigger["id"].as_str().expect("id"), crm["id"].as_str().expect("id"));
        let check = |body: Value, paths: &'static [&'static str]| {
            let gw = &gw;
            async move {
                let reply = gw.post("/v1/workflows", &gw.admin_key, body).await;
                reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
                let found = reply.violation_paths();
                for path in paths {
                    assert!(found.contains(&(*path).to_owned()), "{path}: {}", reply.body);
                }
            }
        };
        let set = |fields: Value| json!([{"type": "setContactFields", "fields": fields}]);
        check(json!({}), &["/name", "/trigger", "/actions"]).await;
        check(json!({"name": "w", "status": "on", "trigger": {"customEventTypeId": trigger_id},
                     "actions": set(json!({"a": "b"}))}), &["/status"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": "nope"}, "actions": set(json!({"a": "b"}))}),
              &["/trigger/customEventTypeId"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": crm_id}, "actions": set(json!({"a": "b"}))}),
              &["/trigger/customEventTypeId"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": trigger_id},
                     "actions": [{"type": "sendEmail", "fields": {"a": "b"}}]}), &["/actions/0/type"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": trigger_id}, "actions": set(json!({}))}),
              &["/actions/0/fields"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": trigger_id},
                     "actions": set(json!({"a": "{{event.total", "email": "x"}))}),
              &["/actions/0/fields/a", "/actions/0/fields/email"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": trigger_id}, "actions": [
                {"type": "sendCustomEvent", "customEventTypeId": trigger_id, "fields": {"orderId": "x"}}]}),
              &["/actions/0/customEventTypeId"]).await;
        check(json!({"name": "w", "trigger": {"customEventTypeId": trigger_id}, "actions": [
                {"type": "sendCustomEvent", "customEventTypeId": crm_id, "fields": {"coupon": "x"}}]}),
              &["/actions/0/fields/coupon"]).await;

        let reader = gw.key_with(&["webhooks:read"]).await;
        gw.get("/v1/workflows", &reader).await.problem(StatusCode::FORBIDDEN);
    }

    async fn send_actions_set_every_required_field_with_values_that_fit(gw: TestGateway) {
        let trigger = gw.event_type(order_type()).await;
        let crm = gw.event_type(crm_type("https://crm.example.com/in")).await;
        let (trigger_id, crm_id) = (trigger["id"].as_str().expect("id"), crm["id"].as_str().expect("id"));
        let workflow = |fields: Value| json!({
            "name": "w", "trigger": {"customEventTypeId": trigger_id},
            "actions": [{"type": "sendCustomEvent", "customEventTypeId": crm_id, "fields": fields}]
        });
        let refused = |fields: Value, paths: &'static [&'static str]| {
            let gw = &gw;
            let body = workflow(fields);
            async move {
                let reply = gw.post("/v1/workflows", &gw.admin_key, body).await;
                let mut found = reply.violation_paths();
                found.sort();
                assert_eq!(found, paths, "{}", reply.body);
            }
        };
        // orderId is required by the send type.
        refused(json!({"total": "{{event.total}}"}), &["/actions/0/fields/orderId"]).await;
        // Fixed values that cannot be the field's type; a template's value is checked when sent.
        refused(json!({"orderId": "o", "total": "lots", "quantity": "1.5"}),
                &["/actions/0/fields/quantity", "/actions/0/fields/total"]).await;
        // A value read from the event is checked when a run sends it, not here.
        let created = gw.post("/v1/workflows", &gw.admin_key,
                              workflow(json!({"orderId": "{{event.orderId}}", "quantity": "{{event.total}}"}))).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().expect("id");
        let fixed = gw.post("/v1/workflows", &gw.admin_key,
                            workflow(json!({"orderId": "fixed", "total": "12.5", "quantity": "3"}))).await;
        assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.body);
        // A change is held to the same rules.
        let patched = gw.call(Method::PATCH, &format!("/v1/workflows/{id}"), Some(&gw.admin_key), Some(&json!({
            "actions": [{"type": "sendCustomEvent", "customEventTypeId": crm_id, "fields": {"note": "x"}}]
        }))).await;
        assert_eq!(patched.violation_paths(), vec!["/actions/0/fields/orderId".to_owned()], "{}", patched.body);
    }

    async fn a_send_event_that_does_not_fit_its_type_fails_the_run_and_is_not_sent(gw: TestGateway) {
        let trigger = gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Ok).await;
        let crm = gw.event_type(crm_type(&receiver.url)).await;
        let (trigger_id, crm_id) = (trigger["id"].as_str().expect("id"), crm["id"].as_str().expect("id"));
        let create = |name: &str, actions: Value| {
            let gw = &gw;
            let body = json!({"name": name, "trigger": {"customEventTypeId": trigger_id}, "actions": actions});
            async move {
                let reply = gw.post("/v1/workflows", &gw.admin_key, body).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            }
        };
        let send = |fields: Value| json!({"type": "sendCustomEvent", "customEventTypeId": crm_id, "fields": fields});
        // The order id renders as text, which a decimal field refuses; the earlier action of
        // the same run must not take effect either.
        create("wrong type", json!([
            {"type": "setContactFields", "fields": {"flag": "set by a failed run"}},
            send(json!({"orderId": "{{event.orderId}}", "total": "{{event.orderId}}"}))
        ])).await;
        // The contact has no such field, so the required orderId renders as null.
        create("missing required", json!([send(json!({"orderId": "{{contact.crmId}}"}))])).await;
        create("fits", json!([send(json!({"orderId": "{{event.orderId}}", "total": "{{event.total}}"}))])).await;

        post_order(&gw, "ivy@example.com", "o-1", 12.5).await;
        let sent = receiver.wait_for(1, WAIT, |_| true).await;
        assert_eq!(sent[0].json()["data"]["fields"], json!({"orderId": "o-1", "total": "12.5"}));
        // All three runs were stored with the event; once nothing of the send type is pending,
        // nothing more can be sent.
        let rows = crate::harness::wait_until(WAIT, "no send delivery left pending", || async {
            let rows = send_deliveries(&gw, crm_id).await;
            rows.iter().all(|(status, ..)| status != "pending").then_some(rows)
        }).await;
        assert_eq!(receiver.received().len(), 1, "only the run whose values fit sent its event");
        let mut failed: Vec<String> = rows.iter()
            .filter(|(status, ..)| status == "failed")
            .map(|(_, attempts, error, _)| {
                assert_eq!(*attempts, 0, "refused before any attempt");
                error.clone().expect("the reason is recorded")
            })
            .collect();
        failed.sort();
        assert_eq!(failed.len(), 2, "{rows:?}");
        assert!(failed[0].contains("field \"orderId\" is required"), "{failed:?}");
        assert!(failed[1].contains("field \"total\" must be a number"), "{failed:?}");
        assert_eq!(rows.iter().filter(|(status, ..)| status == "delivered").count(), 1, "{rows:?}");
        assert!(contact_fields(&gw, "ivy@example.com").await.get("flag").is_none());

        let metrics = gw.call(Method::GET, "/metrics", None, None).await;
        let text = metrics.body.as_str().expect("text");
        assert!(text.contains("sluice_workflow_runs_total{outcome=\"failed\"}"), "{text}");
    }
}
