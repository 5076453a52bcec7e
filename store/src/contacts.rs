//! Reading contacts and their activities for the contacts API.

use serde::Serialize;
use sqlx::AnyPool;

/// A contact as answered by `GET /v1/contacts/{email}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub email: String,
    pub fields: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
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

/// The contact with this (normalised) email.
pub async fn contact(
    db: &AnyPool,
    store_id: &str,
    email: &str,
) -> Result<Option<Contact>, sqlx::Error> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT fields, created_at, updated_at FROM contacts WHERE store_id = $1 AND contact_key = $2",
    )
    .bind(store_id)
    .bind(format!("e:{email}"))
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(fields, created_at, updated_at)| Contact {
        email: email.to_owned(),
        fields: parse_json(&fields),
        created_at,
        updated_at,
    }))
}

/// Whether the contact with this (normalised) email exists.
pub async fn contact_exists(
    db: &AnyPool,
    store_id: &str,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT contact_key FROM contacts WHERE store_id = $1 AND contact_key = $2")
            .bind(store_id)
            .bind(format!("e:{email}"))
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
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
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
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
        .map(|(event_id, alias, fields, received_at)| Activity {
            event_id,
            alias,
            fields: parse_json(&fields),
            received_at,
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

/// Stored JSON is written by this crate; unreadable text would mean corruption, shown as null
/// rather than failing the whole listing.
fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}
