//! The outbox as the deliveries API shows it: a webhook's deliveries, newest first, and the
//! manual retry.

use serde::Serialize;
use sqlx::AnyPool;

use super::PENDING;

/// One delivery as the deliveries API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub message_id: String,
    pub webhook_id: Option<String>,
    #[serde(rename = "type")]
    pub event: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A delivery row as the API reads it.
#[derive(Debug, sqlx::FromRow)]
struct ViewRow {
    id: String,
    message_id: String,
    webhook_id: Option<String>,
    event: String,
    status: String,
    attempts: i64,
    next_attempt_at: String,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: String,
    updated_at: String,
}

const VIEW_COLUMNS: &str = "id, message_id, webhook_id, event, status, attempts, \
     next_attempt_at, last_status_code, last_error, created_at, updated_at";

fn view(row: ViewRow) -> DeliveryView {
    DeliveryView {
        // Only a pending delivery has a next attempt; the column keeps its last value.
        next_attempt_at: (row.status == PENDING).then_some(row.next_attempt_at),
        id: row.id,
        message_id: row.message_id,
        webhook_id: row.webhook_id,
        event: row.event,
        status: row.status,
        attempts: row.attempts,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// A webhook's deliveries, newest first, after the cursor id `before` when given.
pub async fn list(
    db: &AnyPool,
    webhook_id: &str,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    // Conditions are added only when given: a typed NULL parameter is not portable.
    let mut sql = format!("SELECT {VIEW_COLUMNS} FROM deliveries WHERE webhook_id = $1");
    let mut next = 2;
    for (value, condition) in [(status, "status ="), (before, "id <")] {
        if value.is_some() {
            sql.push_str(&format!(" AND {condition} ${next}"));
            next += 1;
        }
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
    let mut query = sqlx::query_as::<_, ViewRow>(&sql).bind(webhook_id);
    for value in [status, before].into_iter().flatten() {
        query = query.bind(value);
    }
    Ok(query
        .bind(limit)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// What a manual retry found.
#[derive(Debug)]
pub enum RetryNow {
    /// Due now.
    Queued(Box<DeliveryView>),
    /// An attempt is in flight; retrying now would send it twice at once.
    InFlight,
    /// The webhook has no such delivery.
    Unknown,
}

/// Makes a webhook's delivery due now, whatever its state, unless an attempt is in flight.
pub async fn retry_now(
    db: &AnyPool,
    webhook_id: &str,
    delivery_id: &str,
) -> Result<RetryNow, sqlx::Error> {
    let now = crate::clock::now();
    let sql = format!(
        "UPDATE deliveries SET status = '{PENDING}', next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND webhook_id = $3 AND (leased_until IS NULL OR leased_until <= $1) \
         RETURNING {VIEW_COLUMNS}"
    );
    let queued = sqlx::query_as::<_, ViewRow>(&sql)
        .bind(&now)
        .bind(delivery_id)
        .bind(webhook_id)
        .fetch_optional(db)
        .await?;
    if let Some(row) = queued {
        return Ok(RetryNow::Queued(Box::new(view(row))));
    }
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT id FROM deliveries WHERE id = $1 AND webhook_id = $2")
            .bind(delivery_id)
            .bind(webhook_id)
            .fetch_optional(db)
            .await?;
    Ok(if exists.is_some() {
        RetryNow::InFlight
    } else {
        RetryNow::Unknown
    })
}
