//! Keys and the store (SPEC §2): listing keys without their secrets, revoking one (refused by
//! every gateway within 5 s), the last key that can manage keys kept, `lastUsedAt` written in
//! the background, and `GET /v1/store`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{wait_until, TestGateway};
use crate::on_both_stores;

async fn listed(gw: &TestGateway, key: &str) -> Vec<Value> {
    let reply = gw.get("/v1/api-keys", key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["results"].as_array().expect("results").clone()
}

fn key_id(key: &str) -> &str {
    key.split_once(':').expect("id:secret").0
}

on_both_stores! {
    async fn keys_are_listed_without_secrets_and_revoked_at_once(gw: TestGateway) {
        let reader = gw.key_with(&["contacts:read"]).await;
        let keys = listed(&gw, &gw.admin_key).await;
        assert_eq!(keys.len(), 2, "{keys:?}");
        let mine = keys.iter().find(|k| k["id"] == key_id(&reader)).expect("listed");
        assert_eq!(mine["scopes"], json!(["contacts:read"]));
        assert!(mine["createdAt"].is_string());
        for key in &keys {
            let text = key.to_string();
            let fields: Vec<&String> = key.as_object().expect("object").keys().collect();
            assert_eq!(fields, ["createdAt", "id", "lastUsedAt", "name", "scopes"], "{text}");
            assert!(!text.contains(reader.split_once(':').expect("secret").1), "{text}");
        }
        // Listing and revoking need apiKeys:write.
        gw.get("/v1/api-keys", &reader).await.problem(StatusCode::FORBIDDEN);
        let path = format!("/v1/api-keys/{}", key_id(&reader));
        gw.call(Method::DELETE, &path, Some(&reader), None)
            .await
            .problem(StatusCode::FORBIDDEN);

        assert_eq!(gw.get("/v1/store", &reader).await.status, StatusCode::OK);
        let deleted = gw.call(Method::DELETE, &path, Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        // Refused at once by the gateway that revoked it, though it was just cached there.
        gw.get("/v1/store", &reader).await.problem(StatusCode::UNAUTHORIZED);
        // Twice, an unknown id, a malformed one: 404.
        gw.call(Method::DELETE, &path, Some(&gw.admin_key), None)
            .await
            .problem(StatusCode::NOT_FOUND);
        for unknown in ["/v1/api-keys/0196b0a57e4c7cc19d3b2f1b7c9e8a01", "/v1/api-keys/%00'--"] {
            gw.call(Method::DELETE, unknown, Some(&gw.admin_key), None)
                .await
                .problem(StatusCode::NOT_FOUND);
        }
        assert_eq!(listed(&gw, &gw.admin_key).await.len(), 1);
    }

    async fn a_revoked_key_is_refused_by_every_gateway_within_five_seconds(gw: TestGateway) {
        let other = gw.beside(|_| {}).await;
        let key = gw.key_with(&["contacts:read"]).await;
        // The other gateway has the key cached.
        assert_eq!(other.get("/v1/store", &key).await.status, StatusCode::OK);
        let path = format!("/v1/api-keys/{}", key_id(&key));
        let deleted = gw.call(Method::DELETE, &path, Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        wait_until(Duration::from_secs(6), "the other gateway to refuse the key", || async {
            (other.get("/v1/store", &key).await.status == StatusCode::UNAUTHORIZED).then_some(())
        })
        .await;
    }

    async fn the_last_key_that_manages_keys_stays(gw: TestGateway) {
        let admin = format!("/v1/api-keys/{}", key_id(&gw.admin_key));
        let refused = gw.call(Method::DELETE, &admin, Some(&gw.admin_key), None).await;
        let problem = refused.problem(StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().expect("detail").contains("apiKeys:write"), "{problem}");
        // A second manager: now the first may go, and the second is the last.
        let second = gw.key_with(&["apiKeys:write", "contacts:read"]).await;
        let deleted = gw.call(Method::DELETE, &admin, Some(&second), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        let own = format!("/v1/api-keys/{}", key_id(&second));
        gw.call(Method::DELETE, &own, Some(&second), None)
            .await
            .problem(StatusCode::CONFLICT);
        // Keys without the scope can still be revoked.
        let reader = gw
            .post("/v1/api-keys", &second, json!({"name": "reader", "scopes": ["contacts:read"]}))
            .await;
        let path = format!("/v1/api-keys/{}", reader.body["id"].as_str().expect("id"));
        let deleted = gw.call(Method::DELETE, &path, Some(&second), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    }

    async fn another_stores_key_cannot_be_seen_or_revoked(gw: TestGateway) {
        let other = gateway::create_store(&gw.storage, "other").await.expect("store");
        let ids: Vec<Value> = listed(&gw, &gw.admin_key).await.iter().map(|k| k["id"].clone()).collect();
        assert!(!ids.contains(&json!(key_id(&other.api_key))));
        let path = format!("/v1/api-keys/{}", key_id(&other.api_key));
        gw.call(Method::DELETE, &path, Some(&gw.admin_key), None)
            .await
            .problem(StatusCode::NOT_FOUND);
        let store = gw.get("/v1/store", &other.api_key).await;
        assert_eq!(store.body["id"], json!(other.store_id));
    }

    async fn a_store_holds_at_most_a_hundred_keys(gw: TestGateway) {
        // A leaked admin key cannot mint keys without bound: 100 in all, the admin's included.
        for _ in 0..99 {
            gw.key_with(&["contacts:read"]).await;
        }
        let refused = gw.post("/v1/api-keys", &gw.admin_key,
            json!({"name": "one too many", "scopes": ["contacts:read"]})).await;
        refused.problem(StatusCode::CONFLICT);
        assert_eq!(listed(&gw, &gw.admin_key).await.len(), 100);
        // Revoking one makes room again.
        let last = listed(&gw, &gw.admin_key).await.last().expect("a key")["id"].as_str().expect("id").to_owned();
        let deleted = gw.call(Method::DELETE, &format!("/v1/api-keys/{last}"), Some(&gw.admin_key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        gw.key_with(&["contacts:read"]).await;
    }

    async fn the_store_is_shown_to_any_key_and_uses_are_noted(gw: TestGateway) {
        let reader = gw.key_with(&["contacts:read"]).await;
        let store = gw.get("/v1/store", &reader).await;
        assert_eq!(store.status, StatusCode::OK);
        assert_eq!(store.body["id"], json!(gw.store_id));
        assert_eq!(store.body["name"], json!("test"));
        assert!(store.body["createdAt"].is_string());
        gw.call(Method::GET, "/v1/store", None, None).await.problem(StatusCode::UNAUTHORIZED);
        // Used just now: the housekeeping tick (every 10 s) writes it.
        wait_until(Duration::from_secs(25), "lastUsedAt to be written", || async {
            let keys = listed(&gw, &gw.admin_key).await;
            let key = keys.iter().find(|k| k["id"] == key_id(&reader)).cloned()?;
            key["lastUsedAt"].as_str().map(str::to_owned)
        })
        .await;
    }
}

/// Replays migration `version` over two keys, one holding `before` (every scope there was) and
/// one holding `other`, and answers their scopes after, on each store.
async fn scopes_after_replaying(version: i64, before: &str, other: &str) -> Vec<(String, String)> {
    let mut after = Vec::new();
    for backend in [
        crate::harness::Backend::Sqlite,
        crate::harness::Backend::Postgres,
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let url = crate::harness::fresh_database(backend, dir.path()).await;
        let db = store::connect(&url).await.expect("connect");
        sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ('s', 's', 't')")
            .execute(&db)
            .await
            .expect("store");
        for (id, scopes) in [("admin", before), ("other", other)] {
            sqlx::query(
                "INSERT INTO api_keys (id, store_id, name, secret_hash, scopes, created_at) \
                 VALUES ($1, 's', $1, 'h', $2, 't')",
            )
            .bind(id)
            .bind(scopes)
            .execute(&db)
            .await
            .expect("key");
        }
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .execute(&db)
            .await
            .expect("forget the migration");
        db.close().await;
        let db = store::connect(&url).await.expect("upgrade");
        let mut scopes = Vec::new();
        for id in ["admin", "other"] {
            scopes.push(
                sqlx::query_scalar::<_, String>("SELECT scopes FROM api_keys WHERE id = $1")
                    .bind(id)
                    .fetch_one(&db)
                    .await
                    .expect("scopes"),
            );
        }
        after.push((scopes[0].clone(), scopes[1].clone()));
    }
    after
}

/// Keys that held every scope before `contacts:write` existed get it on upgrade; others do
/// not. The upgrade is replayed by forgetting migration 7 and connecting again.
#[tokio::test]
async fn keys_that_held_every_scope_gain_contacts_write_on_upgrade() {
    let before = "customEvents:write customEventTypes:read customEventTypes:write \
        customIntegrations:read customIntegrations:write contacts:read webhooks:read \
        webhooks:write workflows:read workflows:write apiKeys:write";
    for (admin, reader) in scopes_after_replaying(7, before, "contacts:read").await {
        assert_eq!(admin, format!("{before} contacts:write"));
        assert_eq!(reader, "contacts:read");
    }
}

/// Keys that held every scope before the segments scopes existed get both on upgrade; others
/// do not (migration 9 replayed).
#[tokio::test]
async fn keys_that_held_every_scope_gain_the_segments_scopes_on_upgrade() {
    let before = "customEvents:write customEventTypes:read customEventTypes:write \
        customIntegrations:read customIntegrations:write contacts:read contacts:write \
        webhooks:read webhooks:write workflows:read workflows:write apiKeys:write";
    let other = "contacts:read contacts:write";
    for (admin, writer) in scopes_after_replaying(9, before, other).await {
        assert_eq!(admin, format!("{before} segments:read segments:write"));
        assert_eq!(writer, other);
    }
}
