//! The activities table: one row per accepted event, written once by the consumer (the event
//! id is the key, so a redelivered event records nothing) and read newest first by the
//! contacts API.

use std::collections::HashSet;

use schemas::EventEnvelope;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::{Any, AnyPool, Arguments, Transaction};

use crate::contacts::stored_key;
use crate::sql::{engine_of, list_placeholders, positional, row_placeholders};
use crate::Engine;

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
        match engine {
            // One round trip, which is what a PostgreSQL batch waits on; the answer is
            // the ids inserted.
            Engine::Postgres => {
                let sql = insert_sql(engine, chunk.len(), " RETURNING event_id");
                let inserted =
                    sqlx::query_scalar_with::<_, String, _>(&sql, activity_values(chunk, now)?)
                        .fetch_all(&mut **tx)
                        .await?;
                recorded.extend(inserted);
            }
            // sqlx hands each row of an answer from SQLite's thread to the caller's on its
            // own, and a batch's new ids were most of its rows: asking which ids exist (almost
            // always none) and counting what the insert changed cost ~10% less CPU per event
            // (`cargo bench -p consumer --bench apply`, alternating runs).
            Engine::Sqlite => {
                let existing = existing(tx, chunk).await?;
                let new: Vec<&EventEnvelope> = chunk
                    .iter()
                    .copied()
                    .filter(|e| !existing.contains(e.id.as_str()))
                    .collect();
                if new.is_empty() {
                    continue;
                }
                let sql = insert_sql(engine, new.len(), "");
                let inserted = sqlx::query_with(&sql, activity_values(&new, now)?)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if inserted != new.len() as u64 {
                    // Another writer recorded some since the read. SQLite refuses a write
                    // after another's commit in a transaction that read first, so this is a
                    // guard, not a path: retrying the batch would find them recorded.
                    return Err(sqlx::Error::Protocol(format!(
                        "{} of {} new activities were recorded by another writer",
                        new.len() as u64 - inserted,
                        new.len()
                    )));
                }
                recorded.extend(new.iter().map(|e| e.id.clone()));
            }
        }
    }
    Ok(recorded)
}

/// The ids of these events already recorded.
async fn existing(
    tx: &mut Transaction<'_, Any>,
    envelopes: &[&EventEnvelope],
) -> Result<HashSet<String>, sqlx::Error> {
    let sql = positional(
        engine_of(tx),
        format!(
            "SELECT event_id FROM activities WHERE event_id IN ({})",
            list_placeholders(1, envelopes.len())
        ),
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for envelope in envelopes {
        query = query.bind(&envelope.id);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// The multi-row insert of `rows` activities, skipping ids already recorded, then `returning`.
fn insert_sql(engine: Engine, rows: usize, returning: &str) -> String {
    positional(
        engine,
        format!(
            "INSERT INTO activities \
             (event_id, store_id, contact_key, event_type_id, alias, fields, received_at, recorded_at) \
             VALUES {} ON CONFLICT (event_id) DO NOTHING{returning}",
            row_placeholders(rows, 8)
        ),
    )
}

/// The values of [`insert_sql`]'s rows.
fn activity_values<'q>(
    envelopes: &'q [&EventEnvelope],
    now: &'q str,
) -> Result<AnyArguments<'q>, sqlx::Error> {
    let mut values = AnyArguments::default();
    for envelope in envelopes {
        let fields = serde_json::to_string(&envelope.fields).unwrap_or_else(|_| "{}".into());
        (|| {
            values.add(envelope.id.as_str())?;
            values.add(envelope.store_id.as_str())?;
            values.add(stored_key(&envelope.contact))?;
            values.add(envelope.event_type_id.as_str())?;
            values.add(envelope.alias.as_str())?;
            values.add(fields)?;
            values.add(envelope.received_at.as_str())?;
            values.add(now)
        })()
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(values)
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
