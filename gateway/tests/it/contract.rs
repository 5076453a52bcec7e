//! Edges of the API contract, several found by Schemathesis (run by scripts/test against
//! gateway/openapi.json) and held here by name: `null` means absent everywhere, a patched name
//! is never empty, paging links work for any email; and the contacts listing.

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

    async fn contacts_are_listed_known_and_anonymous_a_page_at_a_time(gw: TestGateway) {
        gw.event_type(crate::ingest::sdk_type()).await;
        let path = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
        for body in [
            json!({"email": "b@example.com", "url": "/"}),
            json!({"email": "a@example.com", "url": "/"}),
            json!({"_trackerId": "visitor-1", "url": "/pricing"}),
        ] {
            let reply = gw.call(Method::POST, &path, None, Some(&body)).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }
        let all = wait_until(Duration::from_secs(20), "three contacts", || async {
            let page = gw.get("/v1/contacts", &gw.admin_key).await;
            (page.body["results"].as_array().map(Vec::len) == Some(3)).then_some(page.body)
        })
        .await;
        assert_eq!(all["links"]["next"], json!(null));
        let anonymous = all["results"].as_array().expect("results").iter()
            .find(|c| c["trackerId"] == "visitor-1").expect("the anonymous visitor is listed");
        assert!(anonymous.get("email").is_none(), "{anonymous}");
        assert!(anonymous["createdAt"].is_string());

        // One at a time, each once, in the same order.
        let mut next = Some("/v1/contacts?limit=1".to_owned());
        let mut paged = Vec::new();
        while let Some(path) = next.take() {
            let page = gw.get(&path, &gw.admin_key).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            paged.extend(page.body["results"].as_array().expect("results").iter().cloned());
            next = page.body["links"]["next"].as_str().map(str::to_owned);
            assert!(paged.len() <= 3, "{paged:?}");
        }
        assert_eq!(json!(paged), all["results"]);

        for bad in ["/v1/contacts?limit=0", "/v1/contacts?limit=1001", "/v1/contacts?cursor=%FF%FE"] {
            gw.get(bad, &gw.admin_key).await.problem(StatusCode::BAD_REQUEST);
        }
        gw.get("/v1/contacts?segmentId=0196b0a5-7e4c-7cc1-9d3b-2f1b7c9e8a01", &gw.admin_key)
            .await
            .problem(StatusCode::NOT_FOUND);
        let writer = gw.key_with(&["customEvents:write"]).await;
        gw.get("/v1/contacts", &writer).await.problem(StatusCode::FORBIDDEN);
        // Another store's contacts are not listed.
        let other = gateway::create_store(&gw.storage, "other").await.expect("store");
        let theirs = gw.get("/v1/contacts", &other.api_key).await;
        assert_eq!(theirs.body["results"], json!([]));
    }

    async fn a_contacts_fields_are_set_and_removed(gw: TestGateway) {
        gw.event_type(order_type()).await;
        crate::webhooks::post_order(&gw, "pat@example.com", "o-1", 1.0).await;
        gw.activities_eventually("pat@example.com", 1).await;
        let path = "/v1/contacts/Pat@Example.com";
        let set = gw.call(Method::PATCH, path, Some(&gw.admin_key), Some(&json!({
            "fields": {"plan": "pro", "seats": 12, "ratio": 0.25, "trial": true, "note": ""}
        }))).await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        assert_eq!(set.body["email"], "pat@example.com");
        assert_eq!(set.body["fields"], json!({"plan": "pro", "seats": 12, "ratio": 0.25, "trial": true, "note": ""}));
        let removed = gw.call(Method::PATCH, path, Some(&gw.admin_key), Some(&json!({
            "fields": {"trial": null, "absent": null, "seats": 13}
        }))).await;
        assert_eq!(removed.body["fields"], json!({"plan": "pro", "seats": 13, "ratio": 0.25, "note": ""}));
        let read = gw.get(path, &gw.admin_key).await;
        assert_eq!(read.body["fields"], removed.body["fields"]);

        // The contact's later events leave the fields as they are.
        crate::webhooks::post_order(&gw, "pat@example.com", "o-2", 2.0).await;
        gw.activities_eventually("pat@example.com", 2).await;
        assert_eq!(gw.get(path, &gw.admin_key).await.body["fields"], removed.body["fields"]);

        let reader = gw.key_with(&["contacts:read"]).await;
        gw.call(Method::PATCH, path, Some(&reader), Some(&json!({"fields": {"a": 1}})))
            .await
            .problem(StatusCode::FORBIDDEN);
        gw.call(Method::PATCH, "/v1/contacts/nobody@example.com", Some(&gw.admin_key),
            Some(&json!({"fields": {"a": 1}}))).await.problem(StatusCode::NOT_FOUND);
        let many: serde_json::Map<String, serde_json::Value> =
            (0..51).map(|i| (format!("f{i}"), json!(i))).collect();
        for (body, at) in [
            (json!({}), "/fields"),
            (json!({"fields": []}), "/fields"),
            (json!({"fields": {}}), "/fields"),
            (json!({"fields": many}), "/fields"),
            (json!({"fields": {"a": [1]}}), "/fields/a"),
            (json!({"fields": {"a": {"b": 1}}}), "/fields/a"),
            (json!({"fields": {"a b": 1}}), "/fields/a b"),
            (json!({"fields": {"email": "x@example.com"}}), "/fields/email"),
            (json!({"fields": {"trackerId": "t"}}), "/fields/trackerId"),
            (json!({"fields": {"a": "x".repeat(1025)}}), "/fields/a"),
            (json!({"fields": {"a": 1}, "other": 1}), "/other"),
        ] {
            let reply = gw.call(Method::PATCH, path, Some(&gw.admin_key), Some(&body)).await;
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
            assert!(reply.violation_paths().contains(&at.to_owned()), "{body}: {:?}", reply.violation_paths());
        }
        // A contact holds at most 100 fields: two changes of 50 fill it, one more is refused.
        for round in 0..2 {
            let fields: serde_json::Map<String, serde_json::Value> =
                (0..50).map(|i| (format!("r{round}_{i}"), json!(i))).collect();
            let reply = gw.call(Method::PATCH, path, Some(&gw.admin_key), Some(&json!({"fields": fields}))).await;
            if round == 0 {
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            } else {
                // 4 fields were there already: 104 would be too many.
                reply.problem(StatusCode::CONFLICT);
            }
        }
    }
}
