//! The idempotency_keys table: which event id a sender's key was first given, and a hash of
//! the body it came with, for a window after which the key may be used again.

use sqlx::{AnyPool, FromRow};

/// What a scope holds.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Claimed {
    pub event_id: String,
    pub body_hash: String,
}

/// Claims `scope` (store, path, alias, sender and key, hashed) with the body hashing to
/// `body_hash` for `fresh_id`, unless a claim made at or after `expired_before` holds it;
/// answers the claim that holds the scope afterwards (this one, or the earlier one).
pub async fn claim(
    db: &AnyPool,
    scope: &str,
    body_hash: &str,
    fresh_id: &str,
    now: &str,
    expired_before: &str,
) -> Result<Claimed, sqlx::Error> {
    // Inserted, or taken over from an expired claim: either way the scope is ours now.
    let taken: Option<(String,)> = sqlx::query_as(
        "INSERT INTO idempotency_keys (scope, event_id, body_hash, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (scope) DO UPDATE SET event_id = excluded.event_id, \
         body_hash = excluded.body_hash, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < $5 \
         RETURNING event_id",
    )
    .bind(scope)
    .bind(fresh_id)
    .bind(body_hash)
    .bind(now)
    .bind(expired_before)
    .fetch_optional(db)
    .await?;
    if let Some((event_id,)) = taken {
        return Ok(Claimed {
            event_id,
            body_hash: body_hash.to_owned(),
        });
    }
    sqlx::query_as("SELECT event_id, body_hash FROM idempotency_keys WHERE scope = $1")
        .bind(scope)
        .fetch_one(db)
        .await
}

/// Removes at most `limit` claims made before `expired_before`; answers how many went.
pub async fn sweep(db: &AnyPool, expired_before: &str, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope IN \
         (SELECT scope FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
    )
    .bind(expired_before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
