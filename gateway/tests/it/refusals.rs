//! Values no event may carry, refused at the edge with a precise answer, and integrations
//! switched off: each names the bad input it sends.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::ingest::{api_type, sdk_type};
use crate::on_both_stores;

on_both_stores! {
    async fn nul_lone_surrogates_and_numbers_out_of_range_are_refused_precisely(gw: TestGateway) {
        gw.event_type(sdk_type()).await;
        gw.event_type(api_type()).await;
        let sdk = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
        // Bad input: a NUL inside the tracker id (it once stalled every event behind it).
        let reply = gw
            .call_raw(Method::POST, &sdk, None, "application/json", r#"{"_trackerId": "nul\u0000tracker", "url": "/"}"#)
            .await;
        assert_eq!(reply.violation_paths(), vec!["/_trackerId".to_owned()]);
        // Bad input: a lone surrogate escape.
        let reply = gw
            .call_raw(Method::POST, &sdk, None, "application/json", r#"{"_trackerId": "t-1", "url": "\ud800"}"#)
            .await;
        reply.problem(StatusCode::BAD_REQUEST);
        // Bad input: NUL in a management body.
        let reply = gw
            .call_raw(Method::POST, "/v1/custom-integrations/", Some(&gw.admin_key), "application/json", r#"{"name": "a\u0000b"}"#)
            .await;
        assert_eq!(reply.violation_paths(), vec!["/name".to_owned()]);
        // Bad input: numbers no field can hold.
        let writer = gw.key_with(&["customEvents:write"]).await;
        let api = "/v1/custom-events/alias/invoice-paid?createContact=true";
        for amount in ["1e400", "-1e400"] {
            let reply = gw
                .call_raw(Method::POST, api, Some(&writer), "application/json", format!(r#"{{"email": "n@example.com", "amount": {amount}}}"#))
                .await;
            assert_eq!(reply.violation_paths(), vec!["/amount".to_owned()], "{amount}");
        }
        // An exact decimal longer than a float holds is kept to the last digit.
        let reply = gw
            .call_raw(Method::POST, api, Some(&writer), "application/json", r#"{"email": "n@example.com", "amount": 0.1000000000000000055511151231257827}"#)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let activities = gw.activities_eventually("n@example.com", 1).await;
        assert_eq!(activities[0]["fields"]["amount"], "0.1000000000000000055511151231257827");
    }

    async fn an_integration_with_events_disabled_takes_none(gw: TestGateway) {
        let created = gw.event_type(sdk_type()).await;
        let integration = created["integrationId"].as_str().expect("integration").to_owned();
        let sdk = format!("/v1/{}/sdk/custom-events/alias/page-viewed", gw.store_id);
        let event = json!({"_trackerId": "t-1", "url": "/"});
        assert_eq!(gw.call(Method::POST, &sdk, None, Some(&event)).await.status, StatusCode::CREATED);
        let reply = gw
            .call(Method::PATCH, &format!("/v1/custom-integrations/{integration}"), Some(&gw.admin_key), Some(&json!({"eventsEnabled": false})))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        gw.call(Method::POST, &sdk, None, Some(&event)).await.problem(StatusCode::NOT_FOUND);
        let reply = gw
            .call(Method::PATCH, &format!("/v1/custom-integrations/{integration}"), Some(&gw.admin_key), Some(&json!({"eventsEnabled": true})))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(gw.call(Method::POST, &sdk, None, Some(&event)).await.status, StatusCode::CREATED);
    }
}
