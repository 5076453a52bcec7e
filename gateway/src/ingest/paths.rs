//! The three single-event receive paths.

use std::net::IpAddr;
use std::sync::Arc;

use crate::http_body::RequestBody;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use schemas::ReceiveType;

use super::event_body::{read_event, Accepts};
use super::idempotency::{self, BodyHash, Claim, Sender};
use super::types::IngestType;
use super::{
    beacon_idempotency_key, idempotency_key, message, new_event_id, publish, report,
    require_contact,
};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body::{self, check_declared_length};
use crate::routes::HttpResponse;
use crate::state::AppState;

/// `POST /v1/custom-events/alias/{alias}?createContact=`: keyed, strict.
pub(crate) async fn api(
    state: &AppState,
    caller: &Caller,
    alias: &str,
    parts: &Parts,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        caller.require(Scope::CustomEventsWrite)?;
        let create_contact = create_contact(parts.uri.query())?;
        let ty = find(state, &caller.store_id, alias, ReceiveType::Api).await?;
        state.limits.check(ReceiveType::Api, &caller.key_id)?;
        accept_one(
            state,
            &caller.store_id,
            Some(&caller.key_id),
            &ty,
            parts,
            incoming,
            Accepts::Json,
            create_contact,
        )
        .await
    }
    .await;
    report(ReceiveType::Api, &result);
    result
}

/// `POST /v1/{storeId}/custom-events/alias/{alias}`: public URL, lenient, always creates the
/// contact; limited per store and alias.
pub(crate) async fn webhook(
    state: &AppState,
    store_id: &str,
    alias: &str,
    parts: &Parts,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    let limit_key = format!("{store_id}/{alias}");
    let target = PublicTarget {
        store_id,
        alias,
        path: ReceiveType::Webhook,
        limit_key: &limit_key,
    };
    accept_public(state, target, Accepts::JsonOrForm, parts, incoming).await
}

/// `POST /v1/{storeId}/sdk/custom-events/alias/{alias}`: from browsers and apps, lenient,
/// anonymous visitors allowed, limited per client IP, answered with CORS headers whatever the
/// outcome.
pub(crate) async fn sdk(
    state: &AppState,
    store_id: &str,
    alias: &str,
    peer: IpAddr,
    parts: &Parts,
    incoming: &mut RequestBody,
) -> HttpResponse {
    let limit_key = client_key(peer);
    let target = PublicTarget {
        store_id,
        alias,
        path: ReceiveType::WebMobileApp,
        limit_key: &limit_key,
    };
    let mut response = accept_public(state, target, Accepts::JsonOrBeacon, parts, incoming)
        .await
        .unwrap_or_else(ApiError::into_response);
    allow_any_origin(&mut response);
    response
}

/// The SDK limit's key for a client address: an IPv4 address, or an IPv6 address's /64, the
/// block one subscriber is given; keyed by whole IPv6 addresses, one client could take
/// 2^64 keys and the limit with them.
fn client_key(peer: IpAddr) -> String {
    match crate::client_addr::canonical(peer) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Where an unauthenticated event is going, and whose rate it counts against.
struct PublicTarget<'a> {
    store_id: &'a str,
    alias: &'a str,
    path: ReceiveType,
    limit_key: &'a str,
}

/// The public paths' pipeline: a declared size over the limit is refused before anything
/// else; an unknown alias is a 404 before it can take rate-limiter memory.
async fn accept_public(
    state: &AppState,
    target: PublicTarget<'_>,
    accepts: Accepts,
    parts: &Parts,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        check_declared_length(&parts.headers, max_event_bytes(state))?;
        let ty = find(state, target.store_id, target.alias, target.path).await?;
        state.limits.check(target.path, target.limit_key)?;
        accept_one(
            state,
            target.store_id,
            None,
            &ty,
            parts,
            incoming,
            accepts,
            true,
        )
        .await
    }
    .await;
    report(target.path, &result);
    result
}

/// `OPTIONS` on the SDK path: the CORS preflight.
pub(crate) fn sdk_preflight() -> HttpResponse {
    let mut response = http_body::empty(StatusCode::NO_CONTENT);
    allow_any_origin(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, idempotency-key"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn allow_any_origin(response: &mut HttpResponse) {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    // Without this a browser hides when to retry a 429 or 503 from the script.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset",
        ),
    );
}

/// Reads, validates, publishes one event and answers 201 `{"id"}`. `key_id` is the caller's
/// API key on the api path (it scopes idempotency keys there).
#[allow(clippy::too_many_arguments)]
async fn accept_one(
    state: &AppState,
    store_id: &str,
    key_id: Option<&str>,
    ty: &IngestType,
    parts: &Parts,
    incoming: &mut RequestBody,
    accepts: Accepts,
    create_contact: bool,
) -> Result<HttpResponse, ApiError> {
    let beacon_key = match accepts {
        Accepts::JsonOrBeacon => beacon_idempotency_key(parts.uri.query())?,
        _ => None,
    };
    let idempotency = idempotency_key(&parts.headers)?.or(beacon_key.as_deref());
    let limit = max_event_bytes(state);
    let verification = ty.verification.as_ref();
    let mut buf = read_event(&parts.headers, incoming, limit, accepts, verification).await?;
    // Hashed before decoding, which rewrites the buffer in place.
    let body_hash = idempotency.map(|_| BodyHash::of(&buf));
    let value = http_body::decode(&mut buf)?;
    let event = ty
        .compiled
        .validate(&value)
        .map_err(ApiError::Unprocessable)?;
    if !create_contact {
        require_contact(state, store_id, &event.contact).await?;
    }
    let id = match (idempotency, body_hash) {
        (Some(key), Some(body_hash)) => {
            let visitor = event.contact.tagged();
            let (path, sender) = match ty.receive_type() {
                ReceiveType::Api => ("api", Sender::ApiKey(key_id.unwrap_or_default())),
                ReceiveType::Webhook => ("webhook", Sender::Url),
                ReceiveType::WebMobileApp => ("sdk", Sender::Visitor(&visitor)),
            };
            let claim = Claim::new(store_id, path, &ty.alias, sender, key, body_hash);
            idempotency::claim(&state.db, &claim).await?
        }
        _ => new_event_id(),
    };
    publish(state, vec![message(store_id, ty, event, id.clone())]).await?;
    Ok(http_body::json(
        StatusCode::CREATED,
        &serde_json::json!({ "id": id }),
    ))
}

/// The receive type behind `alias`, which must arrive on this path; anything else is a 404, so
/// a public URL reveals nothing about types received elsewhere.
pub(super) async fn find(
    state: &AppState,
    store_id: &str,
    alias: &str,
    path: ReceiveType,
) -> Result<Arc<IngestType>, ApiError> {
    match state.types.get(&state.db, store_id, alias).await? {
        Some(ty) if ty.receive_type() == path => Ok(ty),
        _ => Err(ApiError::NotFound("custom event type")),
    }
}

/// `createContact` on the api path: false unless the caller says true.
pub(super) fn create_contact(query: Option<&str>) -> Result<bool, ApiError> {
    let mut create = false;
    for (name, value) in crate::pagination::query_pairs(query) {
        if name == "createContact" {
            create = match value.as_ref() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::BadRequest(
                        "createContact must be true or false".into(),
                    ))
                }
            };
        }
    }
    Ok(create)
}

pub(super) fn max_event_bytes(state: &AppState) -> usize {
    state.config.max_event_bytes.get() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(client_key(mapped), "192.0.2.7");
    }
}
