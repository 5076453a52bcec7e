//! Inbound verification of webhook receive types (SPEC §5) over real HTTP, on both stores:
//! secrets are write-only, a signed event is taken, and every failure is a 401 counted as
//! `reason="signature"`. Bad input tried: no signature, a body changed by one byte (JSON and
//! form-encoded), the wrong key, a Standard Webhooks timestamp ten minutes old, wrong basic
//! credentials; configurations with a weak, empty or malformed secret, an unknown type, a bad
//! header name, a username with `:`, and verification on an api type.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::TestGateway;
use crate::on_both_stores;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pushed_type(verification: Value) -> Value {
    json!({
        "name": "Pushed", "category": "receive", "alias": "pushed", "receiveType": "webhook",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
            {"id": "ref", "name": "Ref", "type": "text", "required": false}
        ],
        "verification": verification
    })
}

/// Posts `body` with `headers` to the pushed alias.
async fn post(
    gw: &TestGateway,
    content_type: &str,
    body: &str,
    headers: &[(&str, String)],
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/v1/{}/custom-events/alias/pushed",
            gw.base, gw.store_id
        ))
        .header("content-type", content_type)
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("sent").status()
}

/// The refusals counter is the process's, shared by every gateway of this test binary: the test
/// that counts it holds this for its whole run, so its twin on the other store (the only other
/// source of signature refusals) cannot add to the count between its two readings.
static SIGNATURE_COUNTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn signature_refusals(gw: &TestGateway) -> f64 {
    let metrics = gw.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("text").to_owned();
    text.lines()
        .find(|l| l.starts_with("sluice_events_rejected_total{reason=\"signature\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

on_both_stores! {
    async fn signed_webhooks_are_taken_and_everything_else_is_refused(gw: TestGateway) {
        let _counting = SIGNATURE_COUNTER.lock().await;
        let created = gw.event_type(pushed_type(json!({
            "type": "hmac-sha256", "header": "X-Hub-Signature-256", "secret": GITHUB_SECRET,
            "encoding": "hex", "prefix": "sha256="
        }))).await;
        // Write-only: how, never the secret, in the answer and when read back.
        assert_eq!(created["verification"], json!({"type": "hmac-sha256", "header": "x-hub-signature-256", "encoding": "hex", "prefix": "sha256="}));
        let id = created["id"].as_str().expect("id");
        let read = gw.get(&format!("/v1/custom-event-types/{id}"), &gw.admin_key).await;
        assert!(!read.body.to_string().contains(GITHUB_SECRET), "{}", read.body);
        assert_eq!(read.body["verification"]["type"], "hmac-sha256");

        let before = signature_refusals(&gw).await;
        let body = r#"{"email": "ann@example.com", "ref": "r-1"}"#;
        let signed = format!("sha256={}", hmac_hex(GITHUB_SECRET, body.as_bytes()));
        let json_type = "application/json";
        assert_eq!(post(&gw, json_type, body, &[("x-hub-signature-256", signed.clone())]).await, StatusCode::CREATED);
        let refused = [
            post(&gw, json_type, body, &[]).await,
            post(&gw, json_type, &body.replace("r-1", "r-2"), &[("x-hub-signature-256", signed.clone())]).await,
            post(&gw, json_type, body, &[("x-hub-signature-256", format!("sha256={}", hmac_hex("another secret entirely", body.as_bytes())))]).await,
            post(&gw, json_type, body, &[("x-hub-signature-256", signed[..40].to_owned())]).await,
        ];
        assert_eq!(refused, [StatusCode::UNAUTHORIZED; 4]);
        // A form-encoded body is signed as sent.
        let form = "email=bob%40example.com&ref=f-1";
        let form_type = "application/x-www-form-urlencoded";
        let form_signed = format!("sha256={}", hmac_hex(GITHUB_SECRET, form.as_bytes()));
        assert_eq!(post(&gw, form_type, form, &[("x-hub-signature-256", form_signed.clone())]).await, StatusCode::CREATED);
        assert_eq!(post(&gw, form_type, "email=bob%40example.com&ref=f-2", &[("x-hub-signature-256", form_signed)]).await, StatusCode::UNAUTHORIZED);
        assert_eq!(signature_refusals(&gw).await - before, 5.0);
        gw.activities_eventually("ann@example.com", 1).await;
        gw.activities_eventually("bob@example.com", 1).await;

        // The 401 is a problem+json that does not say which part was wrong.
        let reply = gw.call(Method::POST, &format!("/v1/{}/custom-events/alias/pushed", gw.store_id), None,
            Some(&json!({"email": "ann@example.com"}))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["status"], 401);
        assert!(reply.headers.get("www-authenticate").is_none());

        // Standard Webhooks, with a key being rotated: either secret verifies.
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let new = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let replaced = gw.call(Method::PUT, &format!("/v1/custom-event-types/{id}"), Some(&gw.admin_key),
            Some(&pushed_type(json!({"type": "standard-webhooks", "secret": [old, new]})))).await;
        assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
        assert_eq!(replaced.body["verification"], json!({"type": "standard-webhooks", "secrets": 2}));
        let body = r#"{"email": "cy@example.com"}"#;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let sign = |secret: &str, at: i64| standardwebhooks::Webhook::new(secret).expect("secret")
            .sign("msg_1", at, body.as_bytes()).expect("sign");
        let headers = |signature: String, at: i64| vec![
            ("webhook-id", "msg_1".to_owned()), ("webhook-timestamp", at.to_string()),
            ("webhook-signature", signature)];
        assert_eq!(post(&gw, json_type, body, &headers(sign(old, now), now)).await, StatusCode::CREATED);
        assert_eq!(post(&gw, json_type, body, &headers(sign(new, now), now)).await, StatusCode::CREATED);
        assert_eq!(post(&gw, json_type, body, &headers(sign(old, now - 600), now - 600)).await, StatusCode::UNAUTHORIZED, "replayed");

        // Basic credentials, checked before the body is read.
        let basic = gw.call(Method::PUT, &format!("/v1/custom-event-types/{id}"), Some(&gw.admin_key),
            Some(&pushed_type(json!({"type": "basic", "username": "collector", "password": "correct horse battery"})))).await;
        assert_eq!(basic.status, StatusCode::OK, "{}", basic.body);
        use base64::Engine as _;
        let credentials = |user_pass: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass));
        assert_eq!(post(&gw, json_type, body, &[("authorization", credentials("collector:correct horse battery"))]).await, StatusCode::CREATED);
        assert_eq!(post(&gw, json_type, body, &[("authorization", credentials("collector:wrong horse battery"))]).await, StatusCode::UNAUTHORIZED);
        // Without verification again, anything posted to the URL is taken.
        let plain = gw.call(Method::PUT, &format!("/v1/custom-event-types/{id}"), Some(&gw.admin_key),
            Some(&pushed_type(Value::Null))).await;
        assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
        assert!(plain.body.get("verification").is_none());
        assert_eq!(post(&gw, json_type, body, &[]).await, StatusCode::CREATED);
    }

    async fn weak_or_malformed_verification_is_refused(gw: TestGateway) {
        let integration = gw.integration().await;
        let path = format!("/v1/custom-integrations/{integration}/custom-event-types/");
        let cases: Vec<(Value, &str)> = vec![
            (json!({"type": "hmac-sha256", "header": "X-Sig", "secret": "short", "encoding": "hex"}), "/verification/secret"),
            (json!({"type": "hmac-sha256", "header": "X-Sig", "secret": "", "encoding": "hex"}), "/verification/secret"),
            (json!({"type": "hmac-sha256", "header": "X Sig", "secret": "0123456789abcdef", "encoding": "hex"}), "/verification/header"),
            (json!({"type": "hmac-sha256", "header": "X-Sig", "secret": "0123456789abcdef", "encoding": "base32"}), "/verification/encoding"),
            (json!({"type": "standard-webhooks", "secret": "whsec_c2hvcnQ="}), "/verification/secret"),
            (json!({"type": "standard-webhooks", "secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}), "/verification/secret"),
            (json!({"type": "standard-webhooks", "secret": []}), "/verification/secret"),
            (json!({"type": "basic", "username": "a:b", "password": "correct horse battery"}), "/verification/username"),
            (json!({"type": "basic", "username": "a", "password": "hunter2"}), "/verification/password"),
            (json!({"type": "header", "name": "X-Token", "value": "abc"}), "/verification/value"),
            (json!({"type": "oauth"}), "/verification/type"),
            (json!({"type": "header", "name": "X-Token", "value": "0123456789abcdef", "extra": 1}), "/verification/extra"),
        ];
        for (verification, at) in cases {
            let reply = gw.post(&path, &gw.admin_key, pushed_type(verification.clone())).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{verification}: {}", reply.body);
            let paths: Vec<&str> = reply.body["errors"].as_array().expect("errors").iter()
                .filter_map(|e| e["path"].as_str()).collect();
            assert!(paths.contains(&at), "{verification}: expected {at} in {}", reply.body);
        }
        let mut api = pushed_type(json!({"type": "header", "name": "X-Token", "value": "0123456789abcdef"}));
        api["receiveType"] = json!("api");
        let reply = gw.post(&path, &gw.admin_key, api).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        assert_eq!(reply.body["errors"][0]["path"], "/verification");
    }
}
