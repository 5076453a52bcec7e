//! Ingest over HTTP (SPEC §5): the three receive paths and the batch route, every status code
//! with its body, normalised values as stored, idempotent repeats and rate limits. Bad inputs
//! tried: unknown store, unknown alias, an alias of another receive type, wrong content types,
//! malformed JSON, a missing required field, wrong values, an unknown field on the strict path,
//! bodies over the size limit (declared and streamed), a missing/under-scoped key, an unknown
//! contact with createContact=false, a bad createContact value, an oversize Idempotency-Key,
//! a batch with mixed items, a malformed NDJSON line and too many items.

use std::num::NonZeroU32;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Backend, TestGateway};
use crate::on_both_stores;

pub(crate) fn webhook_type() -> Value {
    json!({
        "name": "Order shipped", "category": "receive", "alias": "order-shipped",
        "receiveType": "webhook",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true,
             "isPrimaryKey": true, "jsonPointerPath": "/customer/email"},
            {"id": "phone", "name": "Phone", "type": "phone", "required": false,
             "defaultCountryCode": "34", "jsonPointerPath": "/customer/phone"},
            {"id": "total", "name": "Total", "type": "decimal", "required": true,
             "jsonPointerPath": "/order/total"},
            {"id": "items", "name": "Items", "type": "integer", "required": false,
             "jsonPointerPath": "/order/count"},
            {"id": "shippedAt", "name": "Shipped at", "type": "date", "required": false,
             "jsonPointerPath": "/order/shippedAt"},
            {"id": "gift", "name": "Gift", "type": "boolean", "required": false,
             "jsonPointerPath": "/order/gift"}
        ]
    })
}

pub(crate) fn api_type() -> Value {
    json!({
        "name": "Invoice paid", "category": "receive", "alias": "invoice-paid",
        "receiveType": "api",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
            {"id": "amount", "name": "Amount", "type": "decimal", "required": true},
            {"id": "plan", "name": "Plan", "type": "radio", "required": false,
             "options": [{"id": "basic", "label": "Basic"}, {"id": "pro", "label": "Pro"}]}
        ]
    })
}

pub(crate) fn sdk_type() -> Value {
    json!({
        "name": "Page viewed", "category": "receive", "alias": "page-viewed",
        "receiveType": "web/mobile-app",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
            {"id": "url", "name": "URL", "type": "text", "required": true}
        ]
    })
}

pub(crate) fn webhook_path(gw: &TestGateway) -> String {
    format!("/v1/{}/custom-events/alias/order-shipped", gw.store_id)
}

on_both_stores! {
    async fn webhook_events_become_contacts_and_activities_with_normalised_values(gw: TestGateway) {
        gw.event_type(webhook_type()).await;
        let reply = gw
            .call(Method::POST, &webhook_path(&gw), None, Some(&json!({
                "customer": {"email": "  Ann.Lee@Example.COM ", "phone": "612 34 56 78"},
                "order": {"total": "12.50", "count": "3", "shippedAt": "2026-11-20T10:30:00+02:00",
                          "gift": "true", "ignored": [1, 2, 3]},
                "unrelated": {"deep": true}
            })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let id = reply.body["id"].as_str().expect("id").to_owned();
        let activities = gw.activities_eventually("ann.lee@example.com", 1).await;
        assert_eq!(activities[0]["eventId"], id.as_str());
        assert_eq!(activities[0]["alias"], "order-shipped");
        assert_eq!(activities[0]["fields"], json!({
            "email": "ann.lee@example.com", "phone": "+34612345678", "total": "12.5",
            "items": 3, "shippedAt": "2026-11-20T08:30:00Z", "gift": true
        }));
        let contact = gw.get("/v1/contacts/ANN.LEE@example.com", &gw.admin_key).await;
        assert_eq!(contact.status, StatusCode::OK, "{}", contact.body);
        assert_eq!(contact.body["email"], "ann.lee@example.com");
        assert!(contact.body["createdAt"].is_string());

        // A form-encoded webhook: a repeated name is a checkbox's options.
        gw.event_type(json!({
            "name": "Signed up", "category": "receive", "alias": "signed-up", "receiveType": "webhook",
            "fields": [
                {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
                {"id": "plan", "name": "Plan", "type": "checkbox", "required": false,
                 "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]},
                {"id": "age", "name": "Age", "type": "integer", "required": false}
            ]
        })).await;
        let form = gw
            .call_raw(Method::POST, &format!("/v1/{}/custom-events/alias/signed-up", gw.store_id), None,
                      "application/x-www-form-urlencoded", "email=Zoe%40Example.com&plan=a&plan=b&age=42")
            .await;
        assert_eq!(form.status, StatusCode::CREATED, "{}", form.body);
        let activities = gw.activities_eventually("zoe@example.com", 1).await;
        assert_eq!(activities[0]["fields"], json!({"email": "zoe@example.com", "plan": ["a", "b"], "age": 42}));
    }

    async fn webhook_status_codes(gw: TestGateway) {
        gw.event_type(webhook_type()).await;
        gw.event_type(api_type()).await;
        let good = json!({"customer": {"email": "a@example.com"}, "order": {"total": 1}});
        // Unknown store, unknown alias, an api type on the webhook path.
        gw.call(Method::POST, "/v1/no-such-store/custom-events/alias/order-shipped", None, Some(&good))
            .await.problem(StatusCode::NOT_FOUND);
        gw.call(Method::POST, &format!("/v1/{}/custom-events/alias/nope", gw.store_id), None, Some(&good))
            .await.problem(StatusCode::NOT_FOUND);
        gw.call(Method::POST, &format!("/v1/{}/custom-events/alias/invoice-paid", gw.store_id), None, Some(&good))
            .await.problem(StatusCode::NOT_FOUND);
        // Wrong content type, malformed JSON, empty body.
        gw.call_raw(Method::POST, &webhook_path(&gw), None, "text/xml", "<a/>")
            .await.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        gw.call_raw(Method::POST, &webhook_path(&gw), None, "application/json", "{\"customer\": {")
            .await.problem(StatusCode::BAD_REQUEST);
        gw.call_raw(Method::POST, &webhook_path(&gw), None, "application/json", "")
            .await.problem(StatusCode::BAD_REQUEST);
        // Missing required field and wrong values: every one named.
        let reply = gw
            .call(Method::POST, &webhook_path(&gw), None, Some(&json!({
                "customer": {"email": "not-an-email", "phone": "12"},
                "order": {"count": 2.5, "shippedAt": "yesterday", "gift": "maybe"}
            })))
            .await;
        let mut paths = reply.violation_paths();
        paths.sort();
        assert_eq!(paths, ["/customer/email", "/customer/phone", "/order/count", "/order/gift", "/order/shippedAt", "/order/total"]);
        // An oversize Idempotency-Key.
        let reply = reqwest::Client::new()
            .post(format!("{}{}", gw.base, webhook_path(&gw)))
            .header("idempotency-key", "k".repeat(300))
            .json(&good)
            .send().await.expect("sent");
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
        // Nothing above reached the store.
        let good_reply = gw.call(Method::POST, &webhook_path(&gw), None, Some(&good)).await;
        assert_eq!(good_reply.status, StatusCode::CREATED);
        gw.activities_eventually("a@example.com", 1).await;
        gw.get("/v1/contacts/not-an-email", &gw.admin_key).await.problem(StatusCode::BAD_REQUEST);
    }

    async fn api_path_auth_strictness_and_create_contact(gw: TestGateway) {
        gw.event_type(api_type()).await;
        let path = "/v1/custom-events/alias/invoice-paid";
        let event = json!({"email": "Bob@Example.com", "amount": 10.5, "plan": "pro"});
        gw.call(Method::POST, path, None, Some(&event)).await.problem(StatusCode::UNAUTHORIZED);
        let reader = gw.key_with(&["contacts:read"]).await;
        gw.post(path, &reader, event.clone()).await.problem(StatusCode::FORBIDDEN);
        let writer = gw.key_with(&["customEvents:write"]).await;
        // createContact defaults to false: an unknown contact is E0501.
        let reply = gw.post(path, &writer, event.clone()).await;
        assert_eq!(reply.problem(StatusCode::BAD_REQUEST)["code"], "E0501");
        gw.post(&format!("{path}?createContact=maybe"), &writer, event.clone())
            .await.problem(StatusCode::BAD_REQUEST);
        // Strict: an unknown field, a string for a number, an unknown option.
        let mut paths = gw
            .post(&format!("{path}?createContact=true"), &writer,
                  json!({"email": "bob@example.com", "amount": "ten", "plan": "gold", "extra": 1}))
            .await
            .violation_paths();
        paths.sort();
        assert_eq!(paths, ["/amount", "/extra", "/plan"]);
        gw.call_raw(Method::POST, &format!("{path}?createContact=true"), Some(&writer),
                    "application/x-www-form-urlencoded", "email=bob%40example.com&amount=1")
            .await.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // A webhook alias on the api path is unknown there.
        gw.event_type(webhook_type()).await;
        gw.post("/v1/custom-events/alias/order-shipped", &writer, event.clone())
            .await.problem(StatusCode::NOT_FOUND);
        // createContact=true creates it; afterwards createContact=false is accepted.
        let created = gw.post(&format!("{path}?createContact=true"), &writer, event.clone()).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        gw.activities_eventually("bob@example.com", 1).await;
        let again = gw.post(&format!("{path}?createContact=false"), &writer, event.clone()).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        let activities = gw.activities_eventually("bob@example.com", 2).await;
        assert_eq!(activities[0]["eventId"], again.body["id"], "newest first");
        assert_eq!(activities[1]["fields"], json!({"email": "bob@example.com", "amount": "10.5", "plan": "pro"}));
        // Paging through activities.
        let page = gw.get("/v1/contacts/bob@example.com/activities?limit=1", &gw.admin_key).await;
        assert_eq!(page.body["results"].as_array().expect("results").len(), 1);
        let next = page.body["links"]["next"].as_str().expect("next").to_owned();
        let rest = gw.get(&next, &gw.admin_key).await;
        assert_eq!(rest.body["results"][0]["eventId"], created.body["id"]);
        assert_eq!(rest.body["links"]["next"], Value::Null);
        gw.get("/v1/contacts/bob@example.com/activities?limit=1001", &gw.admin_key)
            .await.problem(StatusCode::BAD_REQUEST);
        gw.get("/v1/contacts/nobody@example.com", &gw.admin_key).await.problem(StatusCode::NOT_FOUND);
        gw.get("/v1/contacts/bob@example.com", &writer).await.problem(StatusCode::FORBIDDEN);
    }

    async fn sdk_path_anonymous_visitors_and_cors(gw: TestGateway) {
        gw.event_type(sdk_type()).await;
        let path = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
        let preflight = gw.call(Method::OPTIONS, &path, None, None).await;
        assert_eq!(preflight.status, StatusCode::NO_CONTENT);
        assert_eq!(preflight.headers["access-control-allow-origin"], "*");
        assert!(preflight.headers["access-control-allow-methods"].to_str().expect("str").contains("POST"));
        let anonymous = gw
            .call_raw(Method::POST, &path, None, "text/plain", r#"{"_trackerId": "visitor-1", "url": "/pricing"}"#)
            .await;
        assert_eq!(anonymous.status, StatusCode::CREATED, "{}", anonymous.body);
        assert_eq!(anonymous.headers["access-control-allow-origin"], "*");
        let known = gw.call(Method::POST, &path, None, Some(&json!({"email": "Cy@Example.com", "url": "/"}))).await;
        assert_eq!(known.status, StatusCode::CREATED, "{}", known.body);
        gw.activities_eventually("cy@example.com", 1).await;
        // Neither an email nor a tracker: 422, still with CORS so the browser can read it.
        let nobody = gw.call(Method::POST, &path, None, Some(&json!({"url": "/"}))).await;
        nobody.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(nobody.headers["access-control-allow-origin"], "*");
    }

    async fn a_beacon_carries_its_idempotency_key_in_the_query(gw: TestGateway) {
        // sendBeacon cannot set headers: the Web SDK puts the key in the query, and the same
        // event sent again by fetch with the header is recognised.
        gw.event_type(sdk_type()).await;
        let path = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
        let body = r#"{"email": "bea@example.com", "url": "/left"}"#;
        let beacon = gw.call_raw(Method::POST, &format!("{path}?idempotencyKey=evt-1"), None, "text/plain", body).await;
        assert_eq!(beacon.status, StatusCode::CREATED, "{}", beacon.body);
        let again = reqwest::Client::new().post(format!("{}{path}", gw.base))
            .header("content-type", "application/json").header("idempotency-key", "evt-1")
            .body(body).send().await.expect("sent");
        assert_eq!(again.status(), StatusCode::CREATED);
        let again: Value = again.json().await.expect("json");
        assert_eq!(again["id"], beacon.body["id"]);
        gw.activities_eventually("bea@example.com", 1).await;
        for bad in ["", "two%20words", "%E2%82%AC"] {
            let reply = gw.call_raw(Method::POST, &format!("{path}?idempotencyKey={bad}"), None, "text/plain", body).await;
            reply.problem(StatusCode::BAD_REQUEST);
        }
        // Only the SDK path reads it: elsewhere a query parameter is no key.
        gw.event_type(webhook_type()).await;
        let hook = format!("{}?idempotencyKey=evt-2", webhook_path(&gw));
        let event = json!({"customer": {"email": "bea@example.com"}, "order": {"total": 5}});
        let first = gw.call(Method::POST, &hook, None, Some(&event)).await;
        let second = gw.call(Method::POST, &hook, None, Some(&event)).await;
        assert_ne!(first.body["id"], second.body["id"]);
    }

    async fn idempotent_repeats_have_one_effect(gw: TestGateway) {
        gw.event_type(webhook_type()).await;
        let url = format!("{}{}", gw.base, webhook_path(&gw));
        let event = json!({"customer": {"email": "dee@example.com"}, "order": {"total": 5}});
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        for header in ["idempotency-key", "idempotency-key", "webhook-id"] {
            let reply = client.post(&url).header(header, "msg_2Kx9").json(&event).send().await.expect("sent");
            assert_eq!(reply.status(), StatusCode::CREATED);
            let body: Value = reply.json().await.expect("json");
            ids.push(body["id"].as_str().expect("id").to_owned());
        }
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
        // A different key is a different event; the queue is ordered, so once it is stored the
        // repeats before it have been applied too.
        let other = client.post(&url).header("idempotency-key", "msg_other").json(&event).send().await.expect("sent");
        let other: Value = other.json().await.expect("json");
        assert_ne!(other["id"], ids[0].as_str());
        let activities = gw.activities_eventually("dee@example.com", 2).await;
        let mut stored: Vec<&str> = activities.iter().map(|a| a["eventId"].as_str().expect("id")).collect();
        stored.sort();
        let mut expected = vec![ids[0].as_str(), other["id"].as_str().expect("id")];
        expected.sort();
        assert_eq!(stored, expected);
    }

    async fn batch_answers_each_item(gw: TestGateway) {
        gw.event_type(api_type()).await;
        let writer = gw.key_with(&["customEvents:write"]).await;
        let path = "/v1/custom-events/alias/invoice-paid/batch?createContact=true";
        let reply = gw.post(path, &writer, json!([
            {"email": "e1@example.com", "amount": 1},
            {"email": "e2@example.com"},
            {"email": "E3@example.com", "amount": 3, "plan": "basic"},
            "not an object",
            {"email": "e1@example.com", "amount": 2, "bogus": true}
        ])).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let results = reply.body["results"].as_array().expect("results");
        let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().expect("status")).collect();
        assert_eq!(statuses, [201, 422, 201, 422, 422]);
        assert!(results[0]["id"].is_string() && results[2]["id"].is_string());
        assert_eq!(results[1]["error"]["errors"][0]["path"], "/amount");
        assert_eq!(results[4]["error"]["errors"][0]["path"], "/bogus");
        assert_eq!(results[3]["index"], 3);
        gw.activities_eventually("e3@example.com", 1).await;
        gw.activities_eventually("e1@example.com", 1).await;

        // NDJSON with a malformed line and an unknown contact (createContact defaults to false).
        let ndjson = "{\"email\": \"e1@example.com\", \"amount\": 4}\n{oops\n\n{\"email\": \"new@example.com\", \"amount\": 1}\n";
        let reply = gw
            .call_raw(Method::POST, "/v1/custom-events/alias/invoice-paid/batch", Some(&writer), "application/x-ndjson", ndjson)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let results = reply.body["results"].as_array().expect("results");
        let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().expect("status")).collect();
        assert_eq!(statuses, [201, 400, 400]);
        assert_eq!(results[2]["error"]["code"], "E0501");
        gw.activities_eventually("e1@example.com", 2).await;

        // Whole-request refusals.
        let too_many: Vec<Value> = (0..1001).map(|n| json!({"email": format!("x{n}@example.com"), "amount": 1})).collect();
        gw.post(path, &writer, Value::Array(too_many)).await.problem(StatusCode::PAYLOAD_TOO_LARGE);
        gw.post(path, &writer, json!({"email": "a@example.com"})).await.problem(StatusCode::BAD_REQUEST);
        gw.call_raw(Method::POST, path, Some(&writer), "text/csv", "a,b").await.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    async fn a_type_change_reaches_another_gateway_within_seconds(gw: TestGateway) {
        let other = gw.beside(|_| {}).await;
        let event = json!({"customer": {"email": "g@example.com"}, "order": {"total": 1}});
        // The other gateway learns the alias does not exist (and caches that)…
        other.call(Method::POST, &webhook_path(&other), None, Some(&event)).await.problem(StatusCode::NOT_FOUND);
        // …then it is created through this one, and the other starts accepting it.
        gw.event_type(webhook_type()).await;
        crate::harness::wait_until(std::time::Duration::from_secs(10), "the change to reach the other gateway", || async {
            let reply = other.call(Method::POST, &webhook_path(&other), None, Some(&event)).await;
            if reply.status != StatusCode::CREATED {
                assert_eq!(reply.status, StatusCode::NOT_FOUND);
            }
            (reply.status == StatusCode::CREATED).then_some(())
        }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused_before_being_read() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        config.max_event_bytes = NonZeroU32::new(1024).expect("non-zero");
    })
    .await;
    gw.event_type(webhook_type()).await;
    let big = json!({"customer": {"email": "a@example.com"}, "order": {"total": 1}, "pad": "x".repeat(2000)});
    let reply = gw
        .call(Method::POST, &webhook_path(&gw), None, Some(&big))
        .await;
    reply.problem(StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed in chunks with no declared length: refused once the limit is crossed.
    let address = gw.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        webhook_path(&gw)
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096));
    let framed = format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    // The server may answer and close before reading everything; a failed write is fine.
    let _ = stream.write_all(framed.as_bytes()).await;
    let mut answer = vec![0u8; 512];
    let read = stream.read(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_over_the_limit_get_429_with_headers() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        config.rate_limit_webhook = NonZeroU32::new(3).expect("non-zero");
    })
    .await;
    gw.event_type(webhook_type()).await;
    let event = json!({"customer": {"email": "f@example.com"}, "order": {"total": 1}});
    let mut limited = None;
    let mut accepted = 0;
    for _ in 0..10 {
        let reply = gw
            .call(Method::POST, &webhook_path(&gw), None, Some(&event))
            .await;
        match reply.status {
            StatusCode::CREATED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => limited = Some(reply),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!((3..10).contains(&accepted), "accepted {accepted}");
    let limited = limited.expect("some requests over the limit");
    limited.problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["ratelimit-limit"], "3");
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    assert!(
        limited.headers["retry-after"]
            .to_str()
            .expect("str")
            .parse::<u64>()
            .expect("secs")
            >= 1
    );
    assert!(limited.headers.contains_key("ratelimit-reset"));
    let metrics = gw.call(Method::GET, "/metrics", None, None).await;
    assert!(metrics
        .body
        .as_str()
        .expect("text")
        .contains("sluice_rate_limited_total{receive_type=\"webhook\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_can_read_when_to_retry_a_limited_sdk_event() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        config.rate_limit_sdk = NonZeroU32::new(1).expect("non-zero");
    })
    .await;
    gw.event_type(sdk_type()).await;
    let path = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
    let event = json!({"_trackerId": "t-9", "url": "/"});
    let mut limited = None;
    for _ in 0..5 {
        let reply = gw.call(Method::POST, &path, None, Some(&event)).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
        }
    }
    let limited = limited.expect("over the limit of 1/s");
    limited.problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["access-control-allow-origin"], "*");
    let exposed = limited.headers["access-control-expose-headers"]
        .to_str()
        .expect("str")
        .to_ascii_lowercase();
    for header in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(exposed.contains(header), "{exposed}");
    }
}

/// Statuses of SDK events sent with these `X-Forwarded-For` values, in order, from loopback.
async fn sdk_statuses_forwarded_for(gw: &TestGateway, forwarded: &[&str]) -> Vec<StatusCode> {
    let client = reqwest::Client::new();
    let url = format!(
        "{}/v1/{}/sdk/custom-events/alias/page-viewed",
        gw.base, gw.store_id
    );
    let mut statuses = Vec::new();
    for (n, address) in forwarded.iter().enumerate() {
        let reply = client
            .post(&url)
            .header("x-forwarded-for", *address)
            .json(&json!({"_trackerId": format!("t-{n}"), "url": "/"}))
            .send()
            .await
            .expect("sent");
        statuses.push(reply.status());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_sdk_limit() {
    let limit_of_one = |config: &mut gateway::Config| {
        config.rate_limit_sdk = NonZeroU32::new(1).expect("non-zero");
    };
    // The test connects from 127.0.0.1: named as a proxy, its X-Forwarded-For is believed.
    let proxied = TestGateway::start_with(Backend::Sqlite, |config| {
        limit_of_one(config);
        config.trusted_proxies = "127.0.0.0/8".parse().expect("cidr");
    })
    .await;
    proxied.event_type(sdk_type()).await;
    let statuses = sdk_statuses_forwarded_for(
        &proxied,
        &[
            "203.0.113.1",
            "203.0.113.2",
            "spoofed, 203.0.113.3",
            "203.0.113.1",
        ],
    )
    .await;
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "three clients get a bucket each; the first one's second event is over its limit"
    );

    // Not named as a proxy: the header is the sender's own claim and changes nothing.
    let direct = TestGateway::start_with(Backend::Sqlite, limit_of_one).await;
    direct.event_type(sdk_type()).await;
    let statuses =
        sdk_statuses_forwarded_for(&direct, &["203.0.113.1", "203.0.113.2", "203.0.113.3"]).await;
    assert_eq!(statuses[0], StatusCode::CREATED);
    assert!(
        statuses[1..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "a forged X-Forwarded-For must not buy another bucket: {statuses:?}"
    );
}
