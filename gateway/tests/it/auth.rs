//! Authentication and scopes (SPEC §2): 401 for a missing or wrong key, 403 for a key without
//! the scope, and keys minted through `POST /v1/api-keys`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both_stores;

on_both_stores! {
    async fn missing_malformed_and_wrong_keys_are_401(gw: TestGateway) {
        let path = "/v1/custom-integrations/";
        gw.call(Method::GET, path, None, None).await.problem(StatusCode::UNAUTHORIZED);
        let (id, secret) = gw.admin_key.split_once(':').expect("key shape");
        for bad in [
            format!("{id}:{secret}x"),
            format!("{id}:"),
            id.to_string(),
            format!("nosuchkey:{secret}"),
            String::new(),
        ] {
            gw.call(Method::GET, path, Some(&bad), None).await.problem(StatusCode::UNAUTHORIZED);
        }
        for header in [format!("Bearer {}", gw.admin_key), format!("apiKey{}", gw.admin_key)] {
            let reply = reqwest::Client::new()
                .get(format!("{}{path}", gw.base))
                .header("authorization", header)
                .send()
                .await
                .expect("sent");
            assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
        }
        // The scheme is case-insensitive.
        let reply = reqwest::Client::new()
            .get(format!("{}{path}", gw.base))
            .header("authorization", format!("APIKEY {}", gw.admin_key))
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), StatusCode::OK);
    }

    async fn scopes_are_enforced(gw: TestGateway) {
        let integration = gw.integration().await;
        let reader = gw.key_with(&["customIntegrations:read", "customEventTypes:read"]).await;
        assert_eq!(gw.get("/v1/custom-integrations/", &reader).await.status, StatusCode::OK);
        gw.post("/v1/custom-integrations/", &reader, json!({"name": "x"}))
            .await
            .problem(StatusCode::FORBIDDEN);
        gw.post(&format!("/v1/custom-integrations/{integration}/custom-event-types/"), &reader, json!({}))
            .await
            .problem(StatusCode::FORBIDDEN);
        gw.call(Method::DELETE, &format!("/v1/custom-integrations/{integration}"), Some(&reader), None)
            .await
            .problem(StatusCode::FORBIDDEN);
        gw.post("/v1/api-keys", &reader, json!({"name": "k", "scopes": ["contacts:read"]}))
            .await
            .problem(StatusCode::FORBIDDEN);
        let contacts_only = gw.key_with(&["contacts:read"]).await;
        gw.get("/v1/custom-integrations/", &contacts_only).await.problem(StatusCode::FORBIDDEN);
    }

    async fn api_keys_are_minted_with_scopes(gw: TestGateway) {
        let reply = gw
            .post("/v1/api-keys", &gw.admin_key, json!({
                "name": "ingest", "scopes": ["customEvents:write", "apiKeys:write"]
            }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["name"], "ingest");
        assert_eq!(reply.body["scopes"], json!(["customEvents:write", "apiKeys:write"]));
        let key = reply.body["key"].as_str().expect("key");
        assert!(key.starts_with(reply.body["id"].as_str().expect("id")));
        // A key may only grant what it holds.
        gw.post("/v1/api-keys", key, json!({"name": "escalate", "scopes": ["contacts:read"]}))
            .await
            .problem(StatusCode::FORBIDDEN);
        let narrower = gw.post("/v1/api-keys", key, json!({"name": "n", "scopes": ["customEvents:write"]})).await;
        assert_eq!(narrower.status, StatusCode::CREATED, "{}", narrower.body);
        // Bad bodies.
        let paths = gw
            .post("/v1/api-keys", &gw.admin_key, json!({"name": "k", "scopes": ["contacts:read", "root"]}))
            .await
            .violation_paths();
        assert_eq!(paths, ["/scopes/1"]);
        assert_eq!(
            gw.post("/v1/api-keys", &gw.admin_key, json!({"name": "k", "scopes": []})).await.violation_paths(),
            ["/scopes"]
        );
        let mut paths = gw
            .post("/v1/api-keys", &gw.admin_key, json!({"scopes": "contacts:read", "extra": 1}))
            .await
            .violation_paths();
        paths.sort();
        assert_eq!(paths, ["/extra", "/name", "/scopes"]);
    }
}
