//! One attempt's wire side: where a claimed delivery goes, and the signed POST itself with
//! what its answer means.

use std::collections::{HashMap, HashSet};

use schemas::EventTypeDefinition;
use sqlx::AnyConnection;
use store::outbox::{Claimed, Outcome};
use store::webhooks::ENABLED;

use super::deliver::Shared;
use super::record::Verdict;
use super::sign;

/// Where a claimed delivery goes and how it is signed, read when it is claimed so that a
/// changed URL or secret applies to pending retries too.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Send {
        url: String,
        secret: String,
        headers: Vec<(String, String)>,
    },
    /// Not to be sent now, through no fault of the endpoint (the send type has no signing
    /// secret yet): tried again on the schedule.
    Held(&'static str),
    /// The subscription was paused after the delivery was found due: not attempted, and the
    /// claim is given back without counting an attempt.
    Paused,
    /// Never to be sent: the subscription was disabled or the send type deleted.
    Closed(&'static str),
}

/// Reads the targets of claimed deliveries: two queries, whatever the number.
pub(super) async fn targets(
    db: &mut AnyConnection,
    claimed: &[Claimed],
) -> Result<HashMap<String, Target>, sqlx::Error> {
    let mut found = HashMap::new();
    // Each once, however many of its deliveries were claimed.
    let webhooks: Vec<&str> = claimed
        .iter()
        .filter_map(|c| c.webhook_id.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for webhook in store::webhooks::webhook_targets(&mut *db, &webhooks).await? {
        let target = if webhook.is_active == 0 {
            Target::Paused
        } else if webhook.status != ENABLED {
            Target::Closed("the webhook was disabled after failing for too long")
        } else {
            Target::Send {
                url: webhook.target_url,
                secret: webhook.secret,
                headers: store::registry::webhooks::parse_headers(webhook.headers.as_deref())
                    .into_iter()
                    .map(|h| (h.name, h.value))
                    .collect(),
            }
        };
        found.insert(webhook.id, target);
    }
    let types: Vec<&str> = claimed
        .iter()
        .filter(|c| c.webhook_id.is_none())
        .filter_map(|c| c.event_type_id.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for send_type in store::webhooks::send_targets(&mut *db, &types).await? {
        let secret = send_type.signing_secret;
        let target = match serde_json::from_str::<EventTypeDefinition>(&send_type.body) {
            // Never sent unsigned: a type saved before send types had secrets gets one
            // when it is replaced (PUT), which shows it.
            Ok(EventTypeDefinition {
                webhook_url: Some(_),
                ..
            }) if secret.is_none() => Target::Held(
                "the send type has no signing secret yet: replace it (PUT) to create one",
            ),
            Ok(EventTypeDefinition {
                webhook_url: Some(url),
                webhook_headers,
                ..
            }) => Target::Send {
                url,
                secret: secret.unwrap_or_default(),
                headers: webhook_headers
                    .into_iter()
                    .map(|h| (h.name, h.value))
                    .collect(),
            },
            _ => Target::Closed("the event type is no longer a send type"),
        };
        found.insert(send_type.id, target);
    }
    Ok(found)
}

/// POSTs the payload with its Standard Webhooks headers; None error means a 2xx.
pub(super) async fn send(
    shared: &Shared,
    delivery: &Claimed,
    url: &str,
    secret: &str,
    headers: &[(String, String)],
) -> (Outcome, Verdict) {
    let failed = |error: String| Outcome {
        status_code: None,
        error: Some(error),
    };
    // An address refused by its form (an internal IP literal, localhost) stays refused.
    if let Err(error) = schemas::target::check_url(url, shared.config.allow_private_targets) {
        return (failed(format!("target refused: {error}")), Verdict::Final);
    }
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign::signature(
        secret,
        &delivery.message_id,
        timestamp,
        delivery.payload.as_bytes(),
    );
    let mut request = shared
        .client
        .post(url)
        .timeout(shared.config.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .header("webhook-id", delivery.message_id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("x-sluice-event", delivery.event.as_str())
        .body(delivery.payload.clone());
    let outcome = match request.send().await {
        Ok(response) => {
            let status = response.status();
            Outcome {
                status_code: Some(status.as_u16()),
                error: (!status.is_success()).then(|| format!("the endpoint answered {status}")),
            }
        }
        Err(error) if error.is_timeout() => failed(format!(
            "no answer within {} s",
            shared.config.timeout.as_secs_f64()
        )),
        Err(error) => failed(describe(&error)),
    };
    (outcome, Verdict::EndpointFailed)
}

/// The innermost cause, which says what went wrong (refused address, connection refused).
fn describe(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let detail = cause.to_string();
    if error.is_connect() {
        format!("could not connect: {detail}")
    } else {
        format!("request failed: {detail}")
    }
}
