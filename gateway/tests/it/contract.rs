//! Edges of the API contract that Schemathesis (run by scripts/test against gateway/openapi.json)
//! found, held here by name: `null` means absent everywhere, a patched name is never empty, and
//! paging links work for any email.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::wait_until;
use crate::on_both_stores;
use crate::webhooks::order_type;

on_both_stores! {
    async fn null_means_absent_in_every_body(gw: TestGateway) {
        // Properties a receive type or a non-choice field does not use, sent as null.
        let mut definition = order_type();
        definition["alias"] = json!("nulls");
        definition["webhookUrl"] = json!(null);
        definition["webhookHeaders"] = json!(null);
        definition["fields"][1]["options"] = json!(null);
        definition["fields"][1]["defaultCountryCode"] = json!(null);
        let created = gw.event_type(definition).await;
        // Sent with a value, they are still refused.
        let integration = gw.integration().await;
        let mut wrong = order_type();
        wrong["alias"] = json!("not-nulls");
        wrong["webhookUrl"] = json!("https://example.com/hook");
        let reply = gw.post(
            &format!("/v1/custom-integrations/{integration}/custom-event-types/"),
            &gw.admin_key,
            wrong,
        ).await;
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.violation_paths(), ["/webhookUrl"]);

        let workflow = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "Nulls", "trigger": {"customEventTypeId": created["id"]},
            "actions": [{"type": "setContactFields", "customEventTypeId": null,
                         "fields": {"last": "{{event.orderId}}"}}]
        })).await;
        assert_eq!(workflow.status, StatusCode::CREATED, "{}", workflow.body);
        let path = format!("/v1/workflows/{}", workflow.body["id"].as_str().expect("id"));
        let patched = gw.call(Method::PATCH, &path, Some(&gw.admin_key),
            Some(&json!({"trigger": null, "status": "paused"}))).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        assert_eq!(patched.body["trigger"]["customEventTypeId"], created["id"]);
        let named = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "Named", "trigger": {"customEventTypeId": created["id"]},
            "actions": [{"type": "setContactFields", "customEventTypeId": created["id"],
                         "fields": {"last": "{{event.orderId}}"}}]
        })).await;
        named.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(named.violation_paths(), ["/actions/0/customEventTypeId"]);
    }

    async fn a_patched_name_is_never_empty(gw: TestGateway) {
        let integration = gw.integration().await;
        let path = format!("/v1/custom-integrations/{integration}");
        let reply = gw.call(Method::PATCH, &path, Some(&gw.admin_key), Some(&json!({"name": ""}))).await;
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.violation_paths(), ["/name"]);
        let trigger = gw.event_type(order_type()).await;
        let workflow = gw.post("/v1/workflows", &gw.admin_key, json!({
            "name": "W", "trigger": {"customEventTypeId": trigger["id"]},
            "actions": [{"type": "setContactFields", "fields": {"last": "{{event.orderId}}"}}]
        })).await;
        let path = format!("/v1/workflows/{}", workflow.body["id"].as_str().expect("id"));
        let reply = gw.call(Method::PATCH, &path, Some(&gw.admin_key), Some(&json!({"name": ""}))).await;
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.violation_paths(), ["/name"]);
    }

    async fn activity_pages_link_to_the_next_for_any_email(gw: TestGateway) {
        gw.event_type(order_type()).await;
        // `?`, `#` and `/` are all allowed in an address's local part.
        let email = "a?b#c/d@example.com";
        for order in ["o-1", "o-2", "o-3"] {
            crate::webhooks::post_order(&gw, email, order, 1.0).await;
        }
        let first = "/v1/contacts/a%3Fb%23c%2Fd%40example.com/activities";
        wait_until(Duration::from_secs(20), "three activities", || async {
            let page = gw.get(first, &gw.admin_key).await;
            (page.body["results"].as_array().map(Vec::len) == Some(3)).then_some(())
        })
        .await;
        let mut next = Some(format!("{first}?limit=1"));
        let mut seen = Vec::new();
        while let Some(path) = next.take() {
            let page = gw.get(&path, &gw.admin_key).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
            for activity in page.body["results"].as_array().expect("results") {
                seen.push(activity["fields"]["orderId"].clone());
            }
            next = page.body["links"]["next"].as_str().map(str::to_owned);
            assert!(seen.len() <= 3, "{seen:?}");
        }
        assert_eq!(seen, [json!("o-3"), json!("o-2"), json!("o-1")]);
    }
}
