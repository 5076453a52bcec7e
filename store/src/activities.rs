//! The activities table: one row per accepted event, written once by the consumer (the event
//! id is the key, so a redelivered event records nothing) and read newest first by the
//! contacts API.

use std::collections::HashSet;

use schemas::EventEnvelope;
use serde::Serialize;
use sqlx::{Any, AnyPool, Transaction};

use crate::contacts::stored_key;
use crate::sql::{engine_of, positional, row_placeholders};

/// Rows per multi-row insert; 8 parameters a row stays far below both engines' limits.
const ROWS_PER_STATEMENT: usize = 256;

/// Inserts an activity per envelope inside the caller's transaction; returns the event ids that
/// were new. A repeated id (in the store or within `envelopes`) inserts nothing.
pub async fn record(
    tx: &mut Transaction<'_, Any>,
    envelopes: &[EventEnvelope],
    now: &str,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut recorded = HashSet::new();
    let mut seen = HashSet::new();
    let unique: Vec<&EventEnvelope> = envelopes
        .iter()
        .filter(|e| seen.insert(e.id.as_str()))
        .collect();
    let engine = engine_of(tx);
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let sql = positional(
            engine,
            format!(
                "INSERT INTO activities \
                 (event_id, store_id, contact_key, event_type_id, alias, fields, received_at, recorded_at) \
                 VALUES {} ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                row_placeholders(chunk.len(), 8)
            ),
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for envelope in chunk {
            let fields = serde_json::to_string(&envelope.fields).unwrap_or_else(|_| "{}".into());
            query = query
                .bind(&envelope.id)
                .bind(&envelope.store_id)
                .bind(stored_key(&envelope.contact))
                .bind(&envelope.event_type_id)
                .bind(&envelope.alias)
                .bind(fields)
                .bind(&envelope.received_at)
                .bind(now);
        }
        recorded.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(recorded)
}

/// One activity, newest first in listings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub event_id: String,
    pub alias: String,
    pub fields: serde_json::Value,
    pub received_at: String,
}

/// A page of activities and the cursor of the next (older) page.
#[derive(Debug)]
pub struct ActivityPage {
    pub results: Vec<Activity>,
    /// `(receivedAt, eventId)` of the last activity, when more remain.
    pub next: Option<(String, String)>,
}

/// An activity as stored, its fields still JSON text.
#[derive(Debug, sqlx::FromRow)]
struct ActivityRow {
    event_id: String,
    alias: String,
    fields: String,
    received_at: String,
}

/// Up to `limit` activities of a contact, newest first, older than `before` when given.
pub async fn activities(
    db: &AnyPool,
    store_id: &str,
    email: &str,
    limit: i64,
    before: Option<(&str, &str)>,
) -> Result<ActivityPage, sqlx::Error> {
    let key = format!("e:{email}");
    // The cursor is (received_at, event_id): event ids break ties between events received in
    // the same millisecond, so paging never skips or repeats one.
    let (received, event) = before.unwrap_or(("9999", ""));
    let rows: Vec<ActivityRow> = sqlx::query_as(
        "SELECT event_id, alias, fields, received_at FROM activities \
         WHERE store_id = $1 AND contact_key = $2 \
           AND (received_at < $3 OR (received_at = $3 AND event_id < $4) OR $5 = 0) \
         ORDER BY received_at DESC, event_id DESC LIMIT $6",
    )
    .bind(store_id)
    .bind(&key)
    .bind(received)
    .bind(event)
    .bind(i64::from(before.is_some()))
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let mut results: Vec<Activity> = rows
        .into_iter()
        .map(|row| Activity {
            event_id: row.event_id,
            alias: row.alias,
            fields: crate::contacts::parse_json(&row.fields),
            received_at: row.received_at,
        })
        .collect();
    let next = if results.len() as i64 > limit {
        results.truncate(limit as usize);
        results
            .last()
            .map(|a| (a.received_at.clone(), a.event_id.clone()))
    } else {
        None
    };
    Ok(ActivityPage { results, next })
}
