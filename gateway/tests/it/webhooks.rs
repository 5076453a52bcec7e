//! Outbound webhooks (SPEC §7) end to end: events posted over HTTP, deliveries received by a
//! real HTTP server in the test. Bad inputs tried: an `ftp:` and a relative target URL, a
//! loopback, a private and a metadata-service target without `--allow-private-targets`, an
//! unknown event type, a secret without the `whsec_` prefix and one too short, a filter on an
//! unknown integration, a malformed alias, an unknown alias and an alias of another
//! integration, an unknown property, a missing key and a key without the webhooks scopes,
//! another store's webhook, an unknown delivery to retry, a bad deliveries status filter and
//! limit, targets in 192.0.0.0/24 and on port 0, and send types whose `webhookUrl` is private.

use std::time::Duration;

use consumer::webhooks::RetrySchedule;
use gateway::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{wait_until, Backend, TestGateway};
use crate::on_both_stores;
use crate::receiver::{Answer, Received, Receiver};

const WAIT: Duration = Duration::from_secs(20);

/// Loopback receivers, and retries within a second so tests see several.
pub fn fast(config: &mut Config) {
    config.delivery.allow_private_targets = true;
    config.delivery.webhook_retry_schedule =
        Some(RetrySchedule::parse("100ms,200ms,300ms,400ms,500ms").expect("schedule"));
}

pub fn order_type() -> Value {
    json!({
        "name": "Order paid", "category": "receive", "alias": "order-paid",
        "receiveType": "webhook",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true,
             "isPrimaryKey": true, "jsonPointerPath": "/customer/email"},
            {"id": "orderId", "name": "Order", "type": "text", "required": true,
             "jsonPointerPath": "/order/id"},
            {"id": "total", "name": "Total", "type": "decimal", "required": true,
             "jsonPointerPath": "/order/total"}
        ]
    })
}

fn signup_type() -> Value {
    json!({
        "name": "Signed up", "category": "receive", "alias": "signup", "receiveType": "api",
        "fields": [{"id": "email", "name": "Email", "type": "email", "required": true,
                    "isPrimaryKey": true}]
    })
}

/// Posts one order-paid event to the webhook path and checks it was accepted.
pub async fn post_order(gw: &TestGateway, email: &str, order: &str, total: f64) {
    let path = format!("/v1/{}/custom-events/alias/order-paid", gw.store_id);
    let event = json!({"customer": {"email": email}, "order": {"id": order, "total": total}});
    let reply = gw.call(Method::POST, &path, None, Some(&event)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

/// Subscribes `body` and returns the created webhook.
async fn subscribe(gw: &TestGateway, body: Value) -> Value {
    let reply = gw.post("/v1/webhooks", &gw.admin_key, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

fn of_type(kind: &'static str) -> impl Fn(&Received) -> bool {
    move |r| r.header("x-sluice-event") == kind
}

/// Polls a webhook's deliveries until `done` accepts the list.
async fn deliveries_until(
    gw: &TestGateway,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_until(WAIT, "the deliveries to settle", || async {
        let reply = gw
            .get(&format!("/v1/webhooks/{webhook}/deliveries"), &gw.admin_key)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let found = reply.body["results"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        done(&found).then_some(found)
    })
    .await
}

on_both_stores! {
    with fast;

    async fn deliveries_are_signed_the_standard_webhooks_way(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Ok).await;
        let hook = subscribe(&gw, json!({"targetUrl": receiver.url})).await;
        let secret = hook["secret"].as_str().expect("secret shown at creation").to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");
        assert_eq!(hook["types"], json!([]));
        assert_eq!(hook["isActive"], true);
        assert_eq!(hook["status"], "enabled");
        let id = hook["id"].as_str().expect("id");
        let read = gw.get(&format!("/v1/webhooks/{id}"), &gw.admin_key).await;
        assert_eq!(read.status, StatusCode::OK);
        assert!(read.body.get("secret").is_none(), "the secret is shown only once: {}", read.body);

        post_order(&gw, "Ann@Example.com", "o-1", 12.5).await;
        let received = receiver.wait_for(2, WAIT, |_| true).await;
        // The Standard Webhooks project's own verifier, not our code, checks every signature.
        let verifier = standardwebhooks::Webhook::new(&secret).expect("secret parses");
        for request in &received {
            verifier.verify(&request.body, &request.headers).expect("a valid signature");
            let body = request.json();
            assert_eq!(request.header("webhook-id"), body["id"].as_str().expect("id"));
            assert_eq!(request.header("x-sluice-event"), body["type"].as_str().expect("type"));
            assert_eq!(body["storeId"], gw.store_id.as_str());
            assert!(body["createdAt"].is_string());
            assert!(request.header("content-type").starts_with("application/json"));
        }
        let event = received.iter().find(|r| of_type("custom_event.received")(r)).expect("event").json();
        assert_eq!(event["data"]["alias"], "order-paid");
        assert_eq!(event["data"]["contact"], json!({"email": "ann@example.com"}));
        assert_eq!(event["data"]["fields"], json!({"email": "ann@example.com", "orderId": "o-1", "total": "12.5"}));
        let created = received.iter().find(|r| of_type("contact.created")(r)).expect("contact").json();
        assert_eq!(created["data"]["email"], "ann@example.com");

        // A changed body no longer verifies: the check above is not vacuous.
        let mut tampered = received[0].body.to_vec();
        tampered[10] ^= 1;
        assert!(verifier.verify(&tampered, &received[0].headers).is_err());

        post_order(&gw, "ann@example.com", "o-2", 3.0).await;
        receiver.wait_for(1, WAIT, of_type("contact.updated")).await;

        // Recorded outcomes show on /metrics under the SPEC's names.
        let id = hook["id"].as_str().expect("id");
        deliveries_until(&gw, id, |d| d.len() == 4 && d.iter().all(|d| d["status"] == "delivered")).await;
        let metrics = gw.call(Method::GET, "/metrics", None, None).await;
        let text = metrics.body.as_str().expect("text");
        assert!(text.contains("sluice_webhook_deliveries_total{outcome=\"delivered\"}"), "{text}");
        assert!(text.contains("sluice_webhook_delivery_duration_seconds"), "{text}");
    }

    async fn static_headers_go_with_every_delivery_and_are_never_read_back(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Ok).await;
        let hook = subscribe(&gw, json!({
            "targetUrl": receiver.url, "types": ["custom_event.received"],
            "headers": [{"name": "X-Collect-Token", "value": "tok 123"},
                        {"name": "X-MOLTIN-SECRET-KEY", "value": "moltin-secret"}]
        })).await;
        let names = json!([{"name": "X-Collect-Token"}, {"name": "X-MOLTIN-SECRET-KEY"}]);
        assert_eq!(hook["headers"], names);
        let id = hook["id"].as_str().expect("id");
        let read = gw.get(&format!("/v1/webhooks/{id}"), &gw.admin_key).await;
        assert_eq!(read.body["headers"], names);
        assert!(!read.body.to_string().contains("moltin-secret"), "{}", read.body);

        post_order(&gw, "hdr@example.com", "o-1", 1.0).await;
        let first = receiver.wait_for(1, WAIT, |_| true).await;
        assert_eq!(first[0].header("x-collect-token"), "tok 123");
        assert_eq!(first[0].header("x-moltin-secret-key"), "moltin-secret");
        // Beside the signature, not instead of it.
        let verifier = standardwebhooks::Webhook::new(hook["secret"].as_str().expect("secret"))
            .expect("secret parses");
        verifier.verify(&first[0].body, &first[0].headers).expect("still signed");

        // Removed with null: the next delivery carries none.
        let patched = gw.call(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&gw.admin_key),
            Some(&json!({"headers": null}))).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        assert_eq!(patched.body["headers"], json!([]));
        post_order(&gw, "hdr@example.com", "o-2", 2.0).await;
        let both = receiver.wait_for(2, WAIT, |_| true).await;
        assert_eq!(both[1].header("x-collect-token"), "");

        // Every wrong shape is a 422 naming its place.
        let six: Vec<Value> = (0..6).map(|i| json!({"name": format!("X-H{i}"), "value": "v"})).collect();
        for (headers, path) in [
            (json!(six), "/headers"),
            (json!([{"name": "webhook-signature", "value": "v1,forged"}]), "/headers/0/name"),
            (json!([{"name": "Content-Type", "value": "text/plain"}]), "/headers/0/name"),
            (json!([{"name": "Host", "value": "elsewhere"}]), "/headers/0/name"),
            (json!([{"name": "X-Sluice-Event", "value": "forged"}]), "/headers/0/name"),
            (json!([{"name": "X Bad", "value": "v"}]), "/headers/0/name"),
            (json!([{"name": "X-Inject", "value": "a\r\nX-Evil: 1"}]), "/headers/0/value"),
            (json!([{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]), "/headers/1/name"),
            (json!([{"name": "X-A"}]), "/headers/0/value"),
            (json!([{"name": "X-A", "value": "v", "extra": 1}]), "/headers/0/extra"),
            (json!({"name": "X-A", "value": "v"}), "/headers"),
            (json!([{"name": "X-Long", "value": "v".repeat(1025)}]), "/headers/0/value"),
        ] {
            let reply = gw.post("/v1/webhooks", &gw.admin_key,
                json!({"targetUrl": receiver.url, "headers": headers})).await;
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
            assert!(reply.violation_paths().contains(&path.to_owned()),
                "{headers}: {:?}", reply.violation_paths());
        }
    }

    async fn a_failing_receiver_gets_the_event_again(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let receiver = Receiver::scripted(vec![Answer::Status(500), Answer::Status(503)], Answer::Ok).await;
        let hook = subscribe(&gw, json!({"targetUrl": receiver.url, "types": ["custom_event.received"]})).await;
        post_order(&gw, "bea@example.com", "o-1", 1.0).await;
        let received = receiver.wait_for(3, WAIT, |_| true).await;
        assert_eq!(received.len(), 3, "delivered once it succeeded, not again");
        for retry in &received[1..] {
            assert_eq!(retry.header("webhook-id"), received[0].header("webhook-id"));
            assert_eq!(retry.body, received[0].body);
        }
        let id = hook["id"].as_str().expect("id");
        let deliveries = deliveries_until(&gw, id, |d| d.len() == 1 && d[0]["status"] == "delivered").await;
        assert_eq!(deliveries[0]["attempts"], 3);
        assert_eq!(deliveries[0]["lastStatusCode"], 200);
        assert_eq!(deliveries[0]["type"], "custom_event.received");
        let read = gw.get(&format!("/v1/webhooks/{id}"), &gw.admin_key).await;
        assert_eq!(read.body["failingSince"], Value::Null, "a success ends the failing streak");
    }

    async fn exhausted_deliveries_are_dead_lettered_and_retried_by_hand(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Status(500)).await;
        let hook = subscribe(&gw, json!({"targetUrl": receiver.url, "types": ["custom_event.received"]})).await;
        let id = hook["id"].as_str().expect("id");
        post_order(&gw, "cy@example.com", "o-1", 1.0).await;
        // The first try and the schedule's five retries.
        let deliveries = deliveries_until(&gw, id, |d| d.len() == 1 && d[0]["status"] == "failed").await;
        assert_eq!(deliveries[0]["attempts"], 6);
        assert_eq!(deliveries[0]["lastStatusCode"], 500);
        assert_eq!(deliveries[0]["lastError"], "the endpoint answered 500 Internal Server Error");
        assert_eq!(receiver.received().len(), 6);
        let failed = gw.get(&format!("/v1/webhooks/{id}/deliveries?status=failed"), &gw.admin_key).await;
        assert_eq!(failed.body["results"].as_array().map(Vec::len), Some(1));

        receiver.answer(Answer::Ok);
        let delivery = deliveries[0]["id"].as_str().expect("delivery id");
        let retried = gw.call(Method::POST, &format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"), Some(&gw.admin_key), None).await;
        assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
        assert_eq!(retried.body["status"], "pending");
        receiver.wait_for(7, WAIT, |_| true).await;
        deliveries_until(&gw, id, |d| d[0]["status"] == "delivered").await;

        let unknown = gw.call(Method::POST, &format!("/v1/webhooks/{id}/deliveries/nope/retry"), Some(&gw.admin_key), None).await;
        unknown.problem(StatusCode::NOT_FOUND);
    }

    async fn a_hanging_endpoint_does_not_delay_another(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let stuck = Receiver::start(Answer::Hang).await;
        let healthy = Receiver::start(Answer::Ok).await;
        let only_events = |url: &str| json!({"targetUrl": url, "types": ["custom_event.received"]});
        subscribe(&gw, only_events(&stuck.url)).await;
        subscribe(&gw, only_events(&healthy.url)).await;
        for n in 0..40 {
            post_order(&gw, &format!("u{n}@example.com"), &format!("o-{n}"), 1.0).await;
        }
        // Every delivery reaches the healthy endpoint while the stuck one still holds its
        // requests unanswered (they would time out only after 15 s).
        let got = healthy.wait_for(40, WAIT, |_| true).await;
        assert_eq!(got.len(), 40);
        let held = stuck.hanging();
        assert!(held >= 1, "the stuck endpoint was tried");
        assert!(held <= 4, "at most the per-endpoint limit is held by one endpoint, got {held}");
    }

    async fn filters_and_is_active_are_respected(gw: TestGateway) {
        let created = gw.event_type(order_type()).await;
        gw.event_type(signup_type()).await;
        let integration = created["integrationId"].as_str().expect("integration");
        let by_alias = Receiver::start(Answer::Ok).await;
        let other_alias = Receiver::start(Answer::Ok).await;
        let inactive = Receiver::start(Answer::Ok).await;
        let contacts_only = Receiver::start(Answer::Ok).await;
        let by_integration = Receiver::start(Answer::Ok).await;
        subscribe(&gw, json!({"targetUrl": by_alias.url, "filter": {"alias": "order-paid"}})).await;
        let other = subscribe(&gw, json!({"targetUrl": other_alias.url, "filter": {"alias": "signup"}})).await;
        let off = subscribe(&gw, json!({"targetUrl": inactive.url, "isActive": false})).await;
        subscribe(&gw, json!({"targetUrl": contacts_only.url, "types": ["contact.created"]})).await;
        subscribe(&gw, json!({"targetUrl": by_integration.url, "types": ["custom_event.received"],
                              "filter": {"integrationId": integration}})).await;

        post_order(&gw, "dee@example.com", "o-1", 1.0).await;
        by_alias.wait_for(2, WAIT, |_| true).await;
        contacts_only.wait_for(1, WAIT, |_| true).await;
        let got = by_integration.wait_for(1, WAIT, |_| true).await;
        assert_eq!(got[0].json()["data"]["integrationId"], integration);
        // Deliveries are stored in the transaction that stored the event, so once one
        // subscriber has it every other delivery of that event exists or never will.
        for hook in [&other, &off] {
            let id = hook["id"].as_str().expect("id");
            let list = gw.get(&format!("/v1/webhooks/{id}/deliveries"), &gw.admin_key).await;
            assert_eq!(list.body["results"], json!([]), "{hook}");
        }
        assert!(contacts_only.received().iter().all(of_type("contact.created")));
        assert!(other_alias.received().is_empty() && inactive.received().is_empty());

        // Activated again, it receives the next event.
        let id = off["id"].as_str().expect("id");
        let patched = gw.call(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&gw.admin_key),
                              Some(&json!({"isActive": true, "types": ["custom_event.received"]}))).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        assert_eq!(patched.body["types"], json!(["custom_event.received"]));
        post_order(&gw, "dee@example.com", "o-2", 1.0).await;
        inactive.wait_for(1, WAIT, |_| true).await;
    }

    async fn pending_retries_survive_a_restart(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Status(503)).await;
        subscribe(&gw, json!({"targetUrl": receiver.url, "types": ["custom_event.received"]})).await;
        for n in 0..10 {
            post_order(&gw, &format!("r{n}@example.com"), &format!("o-{n}"), 1.0).await;
        }
        // Every event has been tried and refused once; the retries are pending when it stops.
        receiver.wait_for(10, WAIT, |_| true).await;
        let gw = gw.restart(|config| {
            fast(config);
            // Long enough that only the outbox, not a retry already in hand, can explain a
            // delivery after the restart.
            config.delivery.webhook_retry_schedule = Some(RetrySchedule::parse("1s,1s").expect("schedule"));
        }).await;
        receiver.answer(Answer::Ok);
        let ok = |r: &Received| r.json()["type"] == "custom_event.received";
        receiver.wait_for(11, WAIT, ok).await;
        wait_until(WAIT, "all 10 events delivered after the restart", || async {
            let mut ids: Vec<String> = receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
            ids.sort();
            ids.dedup();
            (ids.len() == 10).then_some(())
        }).await;
        drop(gw);
    }

    async fn subscription_api_checks_its_input(gw: TestGateway) {
        let check = |body: Value, path: &'static str| {
            let gw = &gw;
            async move {
                let reply = gw.post("/v1/webhooks", &gw.admin_key, body).await;
                reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
                assert!(reply.violation_paths().contains(&path.to_owned()), "{path}: {}", reply.body);
            }
        };
        check(json!({"targetUrl": "ftp://example.com/in"}), "/targetUrl").await;
        check(json!({"targetUrl": "/relative"}), "/targetUrl").await;
        check(json!({}), "/targetUrl").await;
        check(json!({"targetUrl": "https://example.com", "types": ["order.paid"]}), "/types/0").await;
        check(json!({"targetUrl": "https://example.com", "secret": "plain"}), "/secret").await;
        check(json!({"targetUrl": "https://example.com", "secret": "whsec_c2hvcnQ="}), "/secret").await;
        check(json!({"targetUrl": "https://example.com", "filter": {"integrationId": "nope"}}), "/filter/integrationId").await;
        check(json!({"targetUrl": "https://example.com", "filter": {"alias": "has space"}}), "/filter/alias").await;
        check(json!({"targetUrl": "https://example.com", "filter": {"alias": "order-paid"}}), "/filter/alias").await;
        check(json!({"targetUrl": "https://example.com", "extra": 1}), "/extra").await;

        let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let hook = subscribe(&gw, json!({"targetUrl": "https://example.com/in", "secret": chosen})).await;
        assert_eq!(hook["secret"], chosen);
        let id = hook["id"].as_str().expect("id");

        let no_key = gw.call(Method::GET, "/v1/webhooks", None, None).await;
        no_key.problem(StatusCode::UNAUTHORIZED);
        let reader = gw.key_with(&["contacts:read"]).await;
        gw.get("/v1/webhooks", &reader).await.problem(StatusCode::FORBIDDEN);
        let read_only = gw.key_with(&["webhooks:read"]).await;
        gw.get("/v1/webhooks", &read_only).await;
        gw.call(Method::DELETE, &format!("/v1/webhooks/{id}"), Some(&read_only), None).await.problem(StatusCode::FORBIDDEN);

        let list = gw.get("/v1/webhooks", &gw.admin_key).await;
        assert_eq!(list.body["results"].as_array().map(Vec::len), Some(1));
        gw.get(&format!("/v1/webhooks/{id}/deliveries?status=lost"), &gw.admin_key).await.problem(StatusCode::BAD_REQUEST);
        gw.get(&format!("/v1/webhooks/{id}/deliveries?limit=0"), &gw.admin_key).await.problem(StatusCode::BAD_REQUEST);

        let deleted = gw.call(Method::DELETE, &format!("/v1/webhooks/{id}"), Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        gw.get(&format!("/v1/webhooks/{id}"), &gw.admin_key).await.problem(StatusCode::NOT_FOUND);
    }

    async fn a_filter_alias_must_name_a_receive_type_of_the_store(gw: TestGateway) {
        let order = gw.event_type(order_type()).await;
        let order_integration = order["integrationId"].as_str().expect("integration");
        let elsewhere = gw.integration().await;
        let refused = |filter: Value| {
            let gw = &gw;
            async move {
                let reply = gw.post("/v1/webhooks", &gw.admin_key,
                                    json!({"targetUrl": "https://hooks.example.com/in", "filter": filter})).await;
                assert_eq!(reply.violation_paths(), vec!["/filter/alias".to_owned()], "{}", reply.body);
            }
        };
        refused(json!({"alias": "order-refunded"})).await;
        // A known alias of another integration than the one named could never match.
        refused(json!({"alias": "order-paid", "integrationId": elsewhere})).await;
        let hook = subscribe(&gw, json!({"targetUrl": "https://hooks.example.com/in",
                                          "filter": {"alias": "order-paid", "integrationId": order_integration}})).await;
        assert_eq!(hook["filter"], json!({"alias": "order-paid", "integrationId": order_integration}));
        let id = hook["id"].as_str().expect("id");
        let patched = gw.call(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&gw.admin_key),
                              Some(&json!({"filter": {"alias": "nope"}}))).await;
        assert_eq!(patched.violation_paths(), vec!["/filter/alias".to_owned()]);
        let read = gw.get(&format!("/v1/webhooks/{id}"), &gw.admin_key).await;
        assert_eq!(read.body["filter"]["alias"], "order-paid", "a refused patch changes nothing");
    }

    async fn a_paused_webhook_keeps_its_pending_deliveries_without_spending_attempts(gw: TestGateway) {
        gw.event_type(order_type()).await;
        let receiver = Receiver::start(Answer::Status(500)).await;
        let hook = subscribe(&gw, json!({"targetUrl": receiver.url, "types": ["custom_event.received"]})).await;
        let id = hook["id"].as_str().expect("id");
        post_order(&gw, "gil@example.com", "o-1", 1.0).await;
        receiver.wait_for(1, WAIT, |_| true).await;
        let paused = gw.call(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&gw.admin_key),
                             Some(&json!({"isActive": false}))).await;
        assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
        // At most an attempt already under way when it was paused still lands.
        let sent_before_pause = receiver.received().len();
        // Longer than the whole retry schedule (1.5 s): time passing is what is tested, so
        // this waits rather than polls.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let held = deliveries_until(&gw, id, |d| d.len() == 1).await;
        let sent = receiver.received().len();
        assert!(sent <= sent_before_pause + 1, "sent {sent} times, {sent_before_pause} before the pause");
        assert_eq!(held[0]["status"], "pending", "{held:?}");
        assert_eq!(held[0]["attempts"].as_u64(), Some(sent as u64), "only real attempts count: {held:?}");

        receiver.answer(Answer::Ok);
        let resumed = gw.call(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&gw.admin_key),
                              Some(&json!({"isActive": true}))).await;
        assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
        receiver.wait_for(sent + 1, WAIT, |_| true).await;
        let done = deliveries_until(&gw, id, |d| d[0]["status"] == "delivered").await;
        assert_eq!(done[0]["attempts"].as_u64(), Some(sent as u64 + 1));
    }

    async fn the_test_endpoint_sends_an_example(gw: TestGateway) {
        let receiver = Receiver::start(Answer::Ok).await;
        let hook = subscribe(&gw, json!({"targetUrl": receiver.url, "types": ["contact.updated"]})).await;
        let id = hook["id"].as_str().expect("id");
        let queued = gw.call(Method::POST, &format!("/v1/webhooks/{id}/test"), Some(&gw.admin_key), None).await;
        assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.body);
        assert_eq!(queued.body["type"], "contact.updated");
        let got = receiver.wait_for(1, WAIT, |_| true).await;
        assert_eq!(got[0].header("webhook-id"), queued.body["messageId"].as_str().expect("message id"));
        assert_eq!(got[0].json()["data"]["test"], true);
        let chosen = gw.post(&format!("/v1/webhooks/{id}/test"), &gw.admin_key, json!({"type": "webhook.disabled"})).await;
        assert_eq!(chosen.body["type"], "webhook.disabled");
        gw.post(&format!("/v1/webhooks/{id}/test"), &gw.admin_key, json!({"type": "nope"})).await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        // A body that is there must be JSON: whitespace alone is not (found by Schemathesis).
        gw.call_raw(Method::POST, &format!("/v1/webhooks/{id}/test"), Some(&gw.admin_key), "application/json", " ")
            .await
            .problem(StatusCode::BAD_REQUEST);
        gw.call(Method::POST, "/v1/webhooks/unknown/test", Some(&gw.admin_key), None).await
            .problem(StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_by_default() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    for target in [
        "http://127.0.0.1:9/hooks",
        "http://10.0.0.8/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/hooks",
        "http://[::1]/hooks",
    ] {
        let reply = gw
            .post("/v1/webhooks", &gw.admin_key, json!({"targetUrl": target}))
            .await;
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            reply.violation_paths(),
            vec!["/targetUrl".to_owned()],
            "{target}"
        );
    }
    let public = gw
        .post(
            "/v1/webhooks",
            &gw.admin_key,
            json!({"targetUrl": "https://hooks.example.com/in"}),
        )
        .await;
    assert_eq!(public.status, StatusCode::CREATED);
    let id = public.body["id"].as_str().expect("id");
    let moved = gw
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&gw.admin_key),
            Some(&json!({"targetUrl": "http://192.168.0.1/"})),
        )
        .await;
    moved.problem(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_too_long_is_disabled_and_others_are_told() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        fast(config);
        config.delivery.webhook_disable_after = Duration::from_millis(500);
    })
    .await;
    gw.event_type(order_type()).await;
    let failing = Receiver::start(Answer::Status(500)).await;
    let watcher = Receiver::start(Answer::Ok).await;
    let bad = subscribe(
        &gw,
        json!({"targetUrl": failing.url, "types": ["custom_event.received"]}),
    )
    .await;
    subscribe(
        &gw,
        json!({"targetUrl": watcher.url, "types": ["webhook.disabled"]}),
    )
    .await;
    post_order(&gw, "eve@example.com", "o-1", 1.0).await;
    let told = watcher.wait_for(1, WAIT, |_| true).await;
    let id = bad["id"].as_str().expect("id");
    assert_eq!(told[0].json()["type"], "webhook.disabled");
    assert_eq!(told[0].json()["data"]["webhookId"], id);
    let read = gw.get(&format!("/v1/webhooks/{id}"), &gw.admin_key).await;
    assert_eq!(read.body["status"], "disabled");
    // Operators see it on /metrics (the SluiceWebhookEndpointDisabled alert reads this).
    let metrics = gw.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("text");
    let disabled = text
        .lines()
        .find_map(|l| l.strip_prefix("sluice_webhook_endpoints_disabled_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(disabled.is_some_and(|n| n >= 1.0), "{text}");
    // Its remaining delivery is dead-lettered rather than sent to a disabled endpoint.
    deliveries_until(&gw, id, |d| d.len() == 1 && d[0]["status"] == "failed").await;
    // Re-activating it enables it again.
    let patched = gw
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&gw.admin_key),
            Some(&json!({"isActive": true})),
        )
        .await;
    assert_eq!(patched.body["status"], "enabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_deliveries_are_forgotten_after_the_retention_and_pending_ones_kept() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        fast(config);
        config.delivery.webhook_retention = Duration::from_secs(1);
        config.delivery.webhook_retry_schedule =
            Some(RetrySchedule::parse("1h").expect("schedule"));
    })
    .await;
    gw.event_type(order_type()).await;
    let answering = Receiver::start(Answer::Ok).await;
    let failing = Receiver::start(Answer::Status(500)).await;
    let only_events = |url: &str| json!({"targetUrl": url, "types": ["custom_event.received"]});
    let done = subscribe(&gw, only_events(&answering.url)).await;
    let waiting = subscribe(&gw, only_events(&failing.url)).await;
    post_order(&gw, "fay@example.com", "o-1", 1.0).await;
    answering.wait_for(1, WAIT, |_| true).await;
    failing.wait_for(1, WAIT, |_| true).await;
    let id = |hook: &Value| hook["id"].as_str().expect("id").to_owned();
    // The delivered one goes once it is older than the retention; the one waiting for its
    // retry in an hour stays.
    deliveries_until(&gw, &id(&done), <[Value]>::is_empty).await;
    let pending = gw
        .get(
            &format!("/v1/webhooks/{}/deliveries", id(&waiting)),
            &gw.admin_key,
        )
        .await;
    assert_eq!(
        pending.body["results"][0]["status"], "pending",
        "{}",
        pending.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_has_at_most_a_hundred_webhooks() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    for n in 0..100 {
        subscribe(
            &gw,
            json!({"targetUrl": format!("https://hooks.example.com/{n}")}),
        )
        .await;
    }
    let one_more = gw
        .post(
            "/v1/webhooks",
            &gw.admin_key,
            json!({"targetUrl": "https://hooks.example.com/x"}),
        )
        .await;
    one_more.problem(StatusCode::CONFLICT);
}

/// Pausing a failing webhook for longer than `disable_after` and resuming it: the old streak
/// is forgotten, so the first failure after resuming starts a new one instead of disabling it.
async fn reactivating_starts_a_fresh_failure_streak(backend: Backend) {
    let gw = TestGateway::start_with(backend, |config| {
        fast(config);
        config.delivery.webhook_retry_schedule =
            Some(RetrySchedule::parse("1s,1s").expect("schedule"));
        config.delivery.webhook_disable_after = Duration::from_secs(2);
    })
    .await;
    gw.event_type(order_type()).await;
    let receiver = Receiver::start(Answer::Status(500)).await;
    let hook = subscribe(
        &gw,
        json!({"targetUrl": receiver.url, "types": ["custom_event.received"]}),
    )
    .await;
    let id = hook["id"].as_str().expect("id");
    let path = format!("/v1/webhooks/{id}");
    post_order(&gw, "hal@example.com", "o-1", 1.0).await;
    receiver.wait_for(1, WAIT, |_| true).await;
    deliveries_until(&gw, id, |d| d.len() == 1 && d[0]["lastStatusCode"] == 500).await;
    let failing = gw.get(&path, &gw.admin_key).await;
    assert!(failing.body["failingSince"].is_string(), "{}", failing.body);
    let patch = |active: bool| {
        let (gw, path) = (&gw, &path);
        async move {
            let body = json!({ "isActive": active });
            gw.call(Method::PATCH, path, Some(&gw.admin_key), Some(&body))
                .await
        }
    };
    assert_eq!(patch(false).await.status, StatusCode::OK);
    // Longer than `disable_after`: the old streak is now long enough to disable it.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let resumed = patch(true).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(
        resumed.body["failingSince"],
        Value::Null,
        "{}",
        resumed.body
    );
    assert_eq!(resumed.body["status"], "enabled");

    let sent = receiver.received().len();
    post_order(&gw, "hal@example.com", "o-2", 2.0).await;
    receiver.wait_for(sent + 1, WAIT, |_| true).await;
    let read = wait_until(WAIT, "the failure to be recorded", || async {
        let read = gw.get(&path, &gw.admin_key).await;
        read.body["failingSince"].is_string().then_some(read)
    })
    .await;
    assert_eq!(
        read.body["status"], "enabled",
        "a new streak, not the old one: {}",
        read.body
    );
    assert!(
        read.body["failingSince"].as_str() > failing.body["failingSince"].as_str(),
        "{} then {}",
        failing.body,
        read.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactivating_a_webhook_starts_a_fresh_failure_streak_on_sqlite() {
    reactivating_starts_a_fresh_failure_streak(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactivating_a_webhook_starts_a_fresh_failure_streak_on_postgres() {
    reactivating_starts_a_fresh_failure_streak(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_in_192_0_0_0_24_and_on_port_0_are_refused() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    for target in [
        "http://192.0.0.170/hooks",
        "http://192.0.0.8/hooks",
        "https://hooks.example.com:0/in",
    ] {
        let reply = gw
            .post("/v1/webhooks", &gw.admin_key, json!({"targetUrl": target}))
            .await;
        assert_eq!(
            reply.violation_paths(),
            vec!["/targetUrl".to_owned()],
            "{target}"
        );
    }
    let neighbour = gw
        .post(
            "/v1/webhooks",
            &gw.admin_key,
            json!({"targetUrl": "http://192.0.1.1/hooks"}),
        )
        .await;
    assert_eq!(neighbour.status, StatusCode::CREATED, "{}", neighbour.body);
}

fn send_type(url: &str) -> Value {
    json!({
        "name": "CRM sync", "category": "send", "webhookUrl": url,
        "fields": [{"id": "orderId", "name": "Order", "type": "text", "required": true}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_type_webhook_urls_are_held_to_the_target_rules() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let integration = gw.integration().await;
    let create = format!("/v1/custom-integrations/{integration}/custom-event-types/");
    for target in [
        "http://127.0.0.1:9/in",
        "http://10.0.0.8/in",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/in",
        "http://[::1]/in",
        "http://192.0.0.170/in",
        "https://crm.example.com:0/in",
    ] {
        let reply = gw.post(&create, &gw.admin_key, send_type(target)).await;
        assert_eq!(
            reply.violation_paths(),
            vec!["/webhookUrl".to_owned()],
            "{target}"
        );
    }
    let created = gw
        .post(
            &create,
            &gw.admin_key,
            send_type("https://crm.example.com/in"),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id");
    let moved = gw
        .call(
            Method::PUT,
            &format!("/v1/custom-event-types/{id}"),
            Some(&gw.admin_key),
            Some(&send_type("http://192.168.0.1/in")),
        )
        .await;
    assert_eq!(moved.violation_paths(), vec!["/webhookUrl".to_owned()]);
    let read = gw
        .get(&format!("/v1/custom-event-types/{id}"), &gw.admin_key)
        .await;
    assert_eq!(read.body["webhookUrl"], "https://crm.example.com/in");
}
