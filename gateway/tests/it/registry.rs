//! The registry surface of SPEC §4 over HTTP: integrations and event types, with every status
//! code it promises and the bad inputs named in each test.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_stores;

fn webhook_type(alias: &str) -> Value {
    json!({
        "name": "Order shipped",
        "category": "receive",
        "alias": alias,
        "receiveType": "webhook",
        "fields": [
            {"id": "email", "name": "Email", "type": "email", "required": true,
             "isPrimaryKey": true, "jsonPointerPath": "/customer/email"},
            {"id": "total", "name": "Total", "type": "decimal", "required": false},
            {"id": "phone", "name": "Phone", "type": "phone", "required": false,
             "defaultCountryCode": "34"},
            {"id": "size", "name": "Size", "type": "radio", "required": false,
             "options": [{"id": "s", "label": "Small"}, {"id": "l", "label": "Large"}]}
        ]
    })
}

on_both_stores! {
    async fn integration_lifecycle(gw: TestGateway) {
        let key = &gw.admin_key;
        let created = gw
            .post("/v1/custom-integrations/", key, json!({
                "name": "ERP", "description": "our ERP", "color": "#ff8800",
                "imageUri": "https://example.com/erp.png"
            }))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().expect("id").to_owned();
        assert_eq!(created.body["name"], "ERP");
        assert_eq!(created.body["eventsEnabled"], true);
        assert!(created.body["createdAt"].as_str().expect("createdAt").ends_with('Z'));

        let fetched = gw.get(&format!("/v1/custom-integrations/{id}"), key).await;
        assert_eq!(fetched.status, StatusCode::OK);
        assert_eq!(fetched.body["description"], "our ERP");

        let patched = gw
            .call(Method::PATCH, &format!("/v1/custom-integrations/{id}"), Some(key),
                  Some(&json!({"name": "ERP 2", "eventsEnabled": false})))
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        assert_eq!(patched.body["name"], "ERP 2");
        assert_eq!(patched.body["eventsEnabled"], false);
        assert_eq!(patched.body["description"], "our ERP", "untouched by the patch");

        let listed = gw.get("/v1/custom-integrations/", key).await;
        assert_eq!(listed.status, StatusCode::OK);
        assert_eq!(listed.body["results"].as_array().expect("results").len(), 1);
        assert_eq!(listed.body["links"]["next"], Value::Null);

        let deleted = gw
            .call(Method::DELETE, &format!("/v1/custom-integrations/{id}"), Some(key), None)
            .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        gw.get(&format!("/v1/custom-integrations/{id}"), key).await.problem(StatusCode::NOT_FOUND);
        let again = gw
            .call(Method::DELETE, &format!("/v1/custom-integrations/{id}"), Some(key), None)
            .await;
        again.problem(StatusCode::NOT_FOUND);
    }

    async fn integration_bad_input(gw: TestGateway) {
        let key = Some(gw.admin_key.as_str());
        let path = "/v1/custom-integrations/";
        // Malformed JSON.
        gw.call_raw(Method::POST, path, key, "application/json", "{\"name\": ")
            .await
            .problem(StatusCode::BAD_REQUEST);
        // Not JSON at all, declared as JSON.
        gw.call_raw(Method::POST, path, key, "application/json", "name=ERP")
            .await
            .problem(StatusCode::BAD_REQUEST);
        // Wrong content type.
        gw.call_raw(Method::POST, path, key, "text/plain", "{\"name\": \"ERP\"}")
            .await
            .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Wrong type for every property, and an unknown one: all reported at once.
        let reply = gw
            .post(path, &gw.admin_key, json!({
                "name": 7, "description": [], "color": {}, "imageUri": false,
                "eventsEnabled": "yes", "bogus": 1
            }))
            .await;
        let mut paths = reply.violation_paths();
        paths.sort();
        assert_eq!(paths, ["/bogus", "/color", "/description", "/eventsEnabled", "/imageUri", "/name"]);
        // Oversize name, missing name, not an object, a relative image URI.
        let oversize = "n".repeat(256);
        assert_eq!(gw.post(path, &gw.admin_key, json!({"name": oversize})).await.violation_paths(), ["/name"]);
        assert_eq!(gw.post(path, &gw.admin_key, json!({})).await.violation_paths(), ["/name"]);
        assert_eq!(gw.post(path, &gw.admin_key, json!(["ERP"])).await.violation_paths(), [""]);
        assert_eq!(
            gw.post(path, &gw.admin_key, json!({"name": "x", "imageUri": "/a.png"})).await.violation_paths(),
            ["/imageUri"]
        );
        // Bad paging.
        gw.get("/v1/custom-integrations/?limit=0", &gw.admin_key).await.problem(StatusCode::BAD_REQUEST);
        gw.get("/v1/custom-integrations/?limit=x", &gw.admin_key).await.problem(StatusCode::BAD_REQUEST);
        // Unknown integration.
        gw.get("/v1/custom-integrations/nope", &gw.admin_key).await.problem(StatusCode::NOT_FOUND);
    }

    async fn event_type_lifecycle(gw: TestGateway) {
        let key = &gw.admin_key;
        let integration = gw.integration().await;
        let path = format!("/v1/custom-integrations/{integration}/custom-event-types/");
        let created = gw.post(&path, key, webhook_type("order-shipped")).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let body = &created.body;
        let id = body["id"].as_str().expect("id").to_owned();
        assert_eq!(body["integrationId"], integration.as_str());
        assert_eq!(body["alias"], "order-shipped");
        assert_eq!(body["fields"][0]["jsonPointerPath"], "/customer/email");
        assert_eq!(body["fields"][2]["defaultCountryCode"], "34");
        assert_eq!(body["version"], 1);
        assert_eq!(
            body["endpointUrl"],
            format!("{}/v1/{}/custom-events/alias/order-shipped", gw.base, gw.store_id)
        );
        assert!(body["createdAt"].is_string() && body["updatedAt"].is_string());

        // An api type and a send type in the same integration.
        let mut api = webhook_type("order-api");
        api["receiveType"] = json!("api");
        let api = gw.post(&path, key, api).await;
        assert_eq!(api.status, StatusCode::CREATED, "{}", api.body);
        assert_eq!(api.body["endpointUrl"], format!("{}/v1/custom-events/alias/order-api", gw.base));
        let send = gw.post(&path, key, json!({
            "name": "Notify ERP", "category": "send",
            "webhookUrl": "https://erp.example.com/hooks",
            "webhookHeaders": [{"name": "X-Token", "value": "abc"}],
            "fields": [{"id": "email", "name": "Email", "type": "email", "required": true}]
        })).await;
        assert_eq!(send.status, StatusCode::CREATED, "{}", send.body);
        assert_eq!(send.body.get("endpointUrl"), None, "send types have no endpoint");
        assert_eq!(send.body.get("alias"), None);

        // Duplicate alias in the store: 409, also from another integration.
        gw.post(&path, key, webhook_type("order-shipped")).await.problem(StatusCode::CONFLICT);
        let other = gw.integration().await;
        gw.post(&format!("/v1/custom-integrations/{other}/custom-event-types/"), key, webhook_type("order-shipped"))
            .await
            .problem(StatusCode::CONFLICT);

        // Read one, list with paging.
        let fetched = gw.get(&format!("/v1/custom-event-types/{id}"), key).await;
        assert_eq!(fetched.status, StatusCode::OK);
        assert_eq!(fetched.body["name"], "Order shipped");
        let first = gw.get(&format!("{path}?limit=2"), key).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.body["results"].as_array().expect("results").len(), 2);
        let next = first.body["links"]["next"].as_str().expect("a next page").to_owned();
        assert_eq!(first.body["links"]["prev"], Value::Null);
        let second = gw.get(&next, key).await;
        assert_eq!(second.body["results"].as_array().expect("results").len(), 1);
        assert_eq!(second.body["links"]["next"], Value::Null);
        assert!(second.body["links"]["prev"].is_string());

        // Replace: new version; taking another type's alias is a 409.
        let mut changed = webhook_type("order-shipped-v2");
        changed["name"] = json!("Order shipped (v2)");
        let replaced = gw.call(Method::PUT, &format!("/v1/custom-event-types/{id}"), Some(key), Some(&changed)).await;
        assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
        assert_eq!(replaced.body["version"], 2);
        assert_eq!(replaced.body["alias"], "order-shipped-v2");
        gw.call(Method::PUT, &format!("/v1/custom-event-types/{id}"), Some(key), Some(&webhook_type("order-api")))
            .await
            .problem(StatusCode::CONFLICT);
        let mut invalid = webhook_type("order-shipped-v2");
        invalid["category"] = json!("sideways");
        gw.call(Method::PUT, &format!("/v1/custom-event-types/{id}"), Some(key), Some(&invalid))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);

        // Delete, then it is gone; deleting the integration takes its types along.
        let deleted = gw.call(Method::DELETE, &format!("/v1/custom-event-types/{id}"), Some(key), None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        gw.get(&format!("/v1/custom-event-types/{id}"), key).await.problem(StatusCode::NOT_FOUND);
        let api_id = api.body["id"].as_str().expect("id").to_owned();
        gw.call(Method::DELETE, &format!("/v1/custom-integrations/{integration}"), Some(key), None).await;
        gw.get(&format!("/v1/custom-event-types/{api_id}"), key).await.problem(StatusCode::NOT_FOUND);
        // The alias is free again once its type is gone.
        let reused = gw.post(&format!("/v1/custom-integrations/{other}/custom-event-types/"), key, webhook_type("order-api")).await;
        assert_eq!(reused.status, StatusCode::CREATED, "{}", reused.body);
    }

    async fn event_type_bad_input(gw: TestGateway) {
        let key = &gw.admin_key;
        let integration = gw.integration().await;
        let path = format!("/v1/custom-integrations/{integration}/custom-event-types/");
        // Unknown integration.
        gw.post("/v1/custom-integrations/nope/custom-event-types/", key, webhook_type("a"))
            .await
            .problem(StatusCode::NOT_FOUND);
        // Malformed JSON, wrong content type.
        gw.call_raw(Method::POST, &path, Some(key), "application/json", "{\"fields\": [")
            .await
            .problem(StatusCode::BAD_REQUEST);
        gw.call_raw(Method::POST, &path, Some(key), "application/x-www-form-urlencoded", "name=x")
            .await
            .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // One body breaking many rules: every violation comes back, each at its path.
        let broken = json!({
            "name": "n".repeat(300),
            "category": "receive",
            "alias": "bad alias!",
            "receiveType": "carrier-pigeon",
            "unknownProperty": true,
            "webhookUrl": "https://example.com",
            "fields": [
                {"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
                {"id": "email", "name": "Again", "type": "text", "required": false},
                {"id": "phone", "name": "Phone", "type": "phone", "required": false},
                {"id": "size", "name": "Size", "type": "radio", "required": false, "options": []},
                {"id": "when", "name": "When", "type": "datetime", "required": "yes",
                 "jsonPointerPath": "no-leading-slash"}
            ]
        });
        let reply = gw.post(&path, key, broken).await;
        let paths = reply.violation_paths();
        for expected in [
            "/name", "/alias", "/receiveType", "/unknownProperty", "/webhookUrl",
            "/fields/1/id", "/fields/2/defaultCountryCode", "/fields/3/options",
            "/fields/4/type", "/fields/4/required", "/fields/4/jsonPointerPath",
        ] {
            assert!(paths.iter().any(|p| p == expected), "missing {expected} in {paths:?}");
        }
        for error in reply.body["errors"].as_array().expect("errors") {
            assert!(!error["message"].as_str().expect("message").is_empty());
        }
        // Empty fields; a webhook type without a primary key.
        let mut empty = webhook_type("x");
        empty["fields"] = json!([]);
        assert!(gw.post(&path, key, empty).await.violation_paths().contains(&"/fields".to_owned()));
        let mut no_key = webhook_type("x");
        no_key["fields"][0]["isPrimaryKey"] = json!(false);
        assert!(gw.post(&path, key, no_key).await.violation_paths().contains(&"/fields".to_owned()));
        // Send-only properties on a receive type and the reverse.
        let send_with_alias = json!({
            "name": "Notify", "category": "send", "alias": "nope", "receiveType": "api",
            "fields": [{"id": "a", "name": "A", "type": "text", "required": false}],
            "webhookUrl": "ftp://example.com",
            "webhookHeaders": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"},
                               {"name": "c", "value": "3"}, {"name": "d", "value": "4"},
                               {"name": "e", "value": "5"}, {"name": "f", "value": "6"}]
        });
        let paths = gw.post(&path, key, send_with_alias).await.violation_paths();
        for expected in ["/alias", "/receiveType", "/webhookUrl", "/webhookHeaders"] {
            assert!(paths.iter().any(|p| p == expected), "missing {expected} in {paths:?}");
        }
        // Nothing was stored by any of these.
        let listed = gw.get(&path, key).await;
        assert_eq!(listed.body["results"], json!([]));
    }

    async fn stores_are_isolated(gw: TestGateway) {
        let integration = gw.integration().await;
        let path = format!("/v1/custom-integrations/{integration}/custom-event-types/");
        let created = gw.post(&path, &gw.admin_key, webhook_type("mine")).await;
        let type_id = created.body["id"].as_str().expect("id").to_owned();
        let other = gateway::create_store(&gw.storage, "other").await.expect("second store");
        let theirs = &other.api_key;
        gw.get(&format!("/v1/custom-integrations/{integration}"), theirs).await.problem(StatusCode::NOT_FOUND);
        gw.get(&format!("/v1/custom-event-types/{type_id}"), theirs).await.problem(StatusCode::NOT_FOUND);
        gw.post(&path, theirs, webhook_type("theirs")).await.problem(StatusCode::NOT_FOUND);
        gw.call(Method::DELETE, &format!("/v1/custom-event-types/{type_id}"), Some(theirs), None)
            .await
            .problem(StatusCode::NOT_FOUND);
        let listed = gw.get("/v1/custom-integrations/", theirs).await;
        assert_eq!(listed.body["results"], json!([]));
        // Aliases are unique per store, not globally.
        let their_integration = gw.post("/v1/custom-integrations/", theirs, json!({"name": "Theirs"})).await;
        let their_id = their_integration.body["id"].as_str().expect("id");
        let same_alias = gw
            .post(&format!("/v1/custom-integrations/{their_id}/custom-event-types/"), theirs, webhook_type("mine"))
            .await;
        assert_eq!(same_alias.status, StatusCode::CREATED, "{}", same_alias.body);
    }
}
