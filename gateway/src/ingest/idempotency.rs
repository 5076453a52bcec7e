//! Idempotency keys (SPEC §5). A key is scoped to the store, receive path, alias and caller, so
//! one sender cannot claim another's; the first request with it claims the scope in the store,
//! a repeat within [`WINDOW`] with the same body gets the first event's id, and the same key
//! with a different body is refused (422 `E0601`), never silently dropped.
//!
//! A repeat is published again under the first id: if the first publish failed after the
//! claim (a 503), the sender's retry still gets its event through, and if it did not, the
//! consumer's event-id dedupe makes the second copy change nothing.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::auth::to_hex;
use crate::error::ApiError;

/// How long a key keeps answering with its first event.
pub(crate) const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Most expired keys removed by one sweep, so a sweep is a short statement.
const SWEEP_BATCH: i64 = 10_000;

/// The scope a sender's key claims.
#[derive(Debug)]
pub(crate) struct Claim {
    scope: String,
    body_hash: String,
}

/// The hash a claim compares bodies by, taken from the body as received (before decoding
/// rewrites it in place), so a keyed request needs no copy of its body.
#[derive(Debug, Clone)]
pub(crate) struct BodyHash(String);

impl BodyHash {
    pub(crate) fn of(body: &[u8]) -> BodyHash {
        BodyHash(to_hex(&Sha256::digest(body)))
    }
}

/// Who sent a keyed request, as far as its path can tell.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sender<'a> {
    /// The api path: the API key's id.
    ApiKey(&'a str),
    /// The webhook path: whoever holds the URL.
    Url,
    /// The SDK path: the visitor's contact key (tracker id or email).
    Visitor(&'a str),
}

impl Claim {
    /// The claim of `key`, sent by `sender` to `alias` of `store_id` on `path`, with a body
    /// hashing to `body`.
    pub(crate) fn new(
        store_id: &str,
        path: &str,
        alias: &str,
        sender: Sender<'_>,
        key: &str,
        body: BodyHash,
    ) -> Claim {
        let (kind, who) = match sender {
            Sender::ApiKey(id) => ("key", id),
            Sender::Url => ("url", ""),
            Sender::Visitor(contact) => ("visitor", contact),
        };
        let mut scope = Sha256::new();
        for part in [store_id, path, alias, kind, who, key] {
            // Length-prefixed, so no two different scopes hash the same bytes.
            scope.update((part.len() as u64).to_be_bytes());
            scope.update(part.as_bytes());
        }
        Claim {
            scope: to_hex(&scope.finalize()),
            body_hash: body.0,
        }
    }
}

/// Claims `claim` for a new event id, or finds the id its first request got. Answers the id
/// to publish under.
pub(crate) async fn claim(db: &AnyPool, claim: &Claim) -> Result<String, ApiError> {
    let fresh_id = uuid::Uuid::now_v7().to_string();
    let expired_before = store::clock::format(time::OffsetDateTime::now_utc() - WINDOW);
    let held = store::idempotency::claim(
        db,
        &claim.scope,
        &claim.body_hash,
        &fresh_id,
        &store::clock::now(),
        &expired_before,
    )
    .await?;
    if held.body_hash == claim.body_hash {
        Ok(held.event_id)
    } else {
        Err(ApiError::IdempotencyConflict)
    }
}

/// Removes keys past the window, a bounded number at a time; answers how many went.
pub(crate) async fn sweep(db: &AnyPool) -> Result<u64, sqlx::Error> {
    let expired_before = store::clock::format(time::OffsetDateTime::now_utc() - WINDOW);
    store::idempotency::sweep(db, &expired_before, SWEEP_BATCH).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_differ_by_every_part_and_cannot_be_forged_by_shifting_bytes() {
        let base = Claim::new(
            "s",
            "api",
            "a",
            Sender::ApiKey("k1"),
            "order-123",
            BodyHash::of(b"{}"),
        );
        let others = [
            Claim::new(
                "s2",
                "api",
                "a",
                Sender::ApiKey("k1"),
                "order-123",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "sdk",
                "a",
                Sender::ApiKey("k1"),
                "order-123",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "api",
                "b",
                Sender::ApiKey("k1"),
                "order-123",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "api",
                "a",
                Sender::ApiKey("k2"),
                "order-123",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "api",
                "a",
                Sender::Visitor("k1"),
                "order-123",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "api",
                "a",
                Sender::Url,
                "order-123",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "api",
                "a",
                Sender::ApiKey("k1"),
                "order-124",
                BodyHash::of(b"{}"),
            ),
            Claim::new(
                "s",
                "api",
                "",
                Sender::ApiKey("ak1"),
                "order-123",
                BodyHash::of(b"{}"),
            ),
        ];
        for other in &others {
            assert_ne!(base.scope, other.scope);
        }
        let same_body = Claim::new(
            "s",
            "api",
            "a",
            Sender::ApiKey("k1"),
            "order-123",
            BodyHash::of(b"{}"),
        );
        assert_eq!(base.scope, same_body.scope);
        assert_eq!(base.body_hash, same_body.body_hash);
        let other_body = Claim::new(
            "s",
            "api",
            "a",
            Sender::ApiKey("k1"),
            "order-123",
            BodyHash::of(b"{ }"),
        );
        assert_ne!(base.body_hash, other_body.body_hash);
    }
}
