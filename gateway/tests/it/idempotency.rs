//! Idempotency keys (SPEC §5) as a hostile sender would use them: a key is scoped to the store,
//! path, alias and caller, so nobody can pre-claim another sender's key; a key reused with a
//! different body is refused with E0601; a repeat gets the first id; keys expire after a day.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestGateway;
use crate::ingest::{api_type, sdk_type, webhook_path, webhook_type};
use crate::on_both_stores;

async fn send(
    gw: &TestGateway,
    path: &str,
    key: Option<&str>,
    idempotency_key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", gw.base))
        .header("idempotency-key", idempotency_key)
        .json(body);
    if let Some(key) = key {
        request = request.header("authorization", format!("apiKey {key}"));
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_both_stores! {
    async fn no_sender_can_claim_another_senders_key(gw: TestGateway) {
        gw.event_type(sdk_type()).await;
        gw.event_type(api_type()).await;
        gw.event_type(webhook_type()).await;
        let sdk = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
        let api = "/v1/custom-events/alias/invoice-paid?createContact=true";
        // Bad input: an anonymous SDK request claims `order-123` first.
        let (status, squatter) = send(&gw, &sdk, None, "order-123", &json!({"_trackerId": "t-1", "url": "/"})).await;
        assert_eq!(status, StatusCode::CREATED);
        // The server's own api event with that key is a different event, and it is stored.
        let writer = gw.key_with(&["customEvents:write", "contacts:read"]).await;
        let event = json!({"email": "owner@example.com", "amount": 10});
        let (status, owned) = send(&gw, api, Some(&writer), "order-123", &event).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_ne!(owned["id"], squatter["id"]);
        // Another API key of the same store with the same key: its own event too.
        let other_writer = gw.key_with(&["customEvents:write"]).await;
        let (status, other) = send(&gw, api, Some(&other_writer), "order-123", &json!({"email": "owner@example.com", "amount": 11})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_ne!(other["id"], owned["id"]);
        // The webhook URL with the same key: yet another.
        let (status, hook) = send(&gw, &webhook_path(&gw), None, "order-123", &json!({"customer": {"email": "owner@example.com"}, "order": {"total": 1}})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_ne!(hook["id"], owned["id"]);
        let activities = gw.activities_eventually("owner@example.com", 3).await;
        let ids: Vec<&Value> = activities.iter().map(|a| &a["eventId"]).collect();
        for id in [&owned["id"], &other["id"], &hook["id"]] {
            assert!(ids.contains(&id), "{id} was not stored: {ids:?}");
        }
    }

    async fn a_key_reused_with_another_body_is_refused_and_a_repeat_gets_the_first_id(gw: TestGateway) {
        gw.event_type(api_type()).await;
        let writer = gw.key_with(&["customEvents:write"]).await;
        let api = "/v1/custom-events/alias/invoice-paid?createContact=true";
        let first = json!({"email": "kim@example.com", "amount": 10});
        let (status, created) = send(&gw, api, Some(&writer), "inv-9", &first).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, repeat) = send(&gw, api, Some(&writer), "inv-9", &first).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(repeat["id"], created["id"]);
        // Bad input: the same key with a different amount.
        let (status, problem) = send(&gw, api, Some(&writer), "inv-9", &json!({"email": "kim@example.com", "amount": 99})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["code"], "E0601");
        // A later unkeyed event: the queue is ordered, so once it is stored anything the
        // repeat or the refused body could have caused would be stored too.
        let (status, _) = send(&gw, api, Some(&writer), "marker-1", &json!({"email": "kim@example.com", "amount": 77})).await;
        assert_eq!(status, StatusCode::CREATED);
        let activities = gw.activities_eventually("kim@example.com", 2).await;
        let mut amounts: Vec<&str> = activities.iter().map(|a| a["fields"]["amount"].as_str().expect("amount")).collect();
        amounts.sort();
        assert_eq!(amounts, ["10", "77"], "one event for inv-9, none for the refused body");
        // A batch keyed the same way: the same body twice gives the same item ids.
        let batch = "/v1/custom-events/alias/invoice-paid/batch?createContact=true";
        let items = json!([{"email": "kim@example.com", "amount": 1}, {"email": "lee@example.com", "amount": 2}]);
        let (status, one) = send(&gw, batch, Some(&writer), "inv-9", &items).await;
        assert_eq!(status, StatusCode::OK);
        let (_, two) = send(&gw, batch, Some(&writer), "inv-9", &items).await;
        assert_eq!(one["results"], two["results"]);
        assert_ne!(one["results"][0]["id"], created["id"]);
        let (status, _) = send(&gw, batch, Some(&writer), "inv-9", &json!([{"email": "kim@example.com", "amount": 5}])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // A keyed batch refused whole (not JSON) claims nothing: the corrected retry goes through.
        let refused = reqwest::Client::new()
            .post(format!("{}{batch}", gw.base))
            .header("authorization", format!("apiKey {writer}"))
            .header("idempotency-key", "fresh-key")
            .header("content-type", "application/json")
            .body("[{not json")
            .send()
            .await
            .expect("sent");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let (status, fixed) = send(&gw, batch, Some(&writer), "fresh-key", &items).await;
        assert_eq!(status, StatusCode::OK, "{fixed}");
        assert_eq!(fixed["results"][0]["status"], 201);
    }

    async fn a_key_past_its_day_makes_a_new_event(gw: TestGateway) {
        gw.event_type(api_type()).await;
        let writer = gw.key_with(&["customEvents:write"]).await;
        let api = "/v1/custom-events/alias/invoice-paid?createContact=true";
        let event = json!({"email": "old@example.com", "amount": 1});
        let (_, first) = send(&gw, api, Some(&writer), "monthly", &event).await;
        // Age every claim past the 24 h window, as a day's wait would.
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(gw.storage.database_url.as_deref().expect("url")).await.expect("db");
        sqlx::query("UPDATE idempotency_keys SET created_at = '2000-01-01T00:00:00.000Z'")
            .execute(&db)
            .await
            .expect("age");
        let (status, second) = send(&gw, api, Some(&writer), "monthly", &event).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_ne!(second["id"], first["id"]);
        assert_eq!(gw.activities_eventually("old@example.com", 2).await.len(), 2);
        db.close().await;
    }
}
