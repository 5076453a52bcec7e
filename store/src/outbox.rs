//! The deliveries table: written with the effects that cause deliveries, claimed by
//! dispatchers with a lease, and marked delivered, rescheduled or dead-lettered.

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

use crate::sql::{engine_of, positional};

mod view;

pub use view::{list, retry_now, DeliveryView, RetryNow};

/// Waiting to be sent, now or at `next_attempt_at`.
pub const PENDING: &str = "pending";
/// A 2xx answer was received.
pub const DELIVERED: &str = "delivered";
/// Every try failed; kept for inspection and a manual retry.
pub const FAILED: &str = "failed";

/// Rows per multi-row insert: 11 parameters a row.
const ROWS_PER_STATEMENT: usize = 100;

/// A delivery to add to the outbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub store_id: String,
    pub message_id: String,
    /// The subscription it goes to, or
    pub webhook_id: Option<String>,
    /// the send event type whose `webhookUrl` it goes to.
    pub event_type_id: Option<String>,
    pub event: String,
    pub payload: String,
    /// The stored key of the contact it is about, if any: erasing the contact erases it.
    pub contact_key: Option<String>,
}

/// Adds deliveries, due now, inside the caller's transaction; returns their ids.
pub async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    deliveries: &[NewDelivery],
    now: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let mut ids = Vec::with_capacity(deliveries.len());
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let sql = positional(engine_of(tx), insert_sql(chunk.len()));
        let mut query = sqlx::query(&sql);
        for delivery in chunk {
            let id = uuid::Uuid::now_v7().to_string();
            ids.push(id.clone());
            query = query
                .bind(id)
                .bind(&delivery.store_id)
                .bind(&delivery.message_id)
                .bind(&delivery.webhook_id)
                .bind(&delivery.event_type_id)
                .bind(&delivery.event)
                .bind(&delivery.payload)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(&delivery.contact_key);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(ids)
}

/// Records deliveries that were refused before any attempt (a workflow's send event whose
/// values do not fit its type) as dead-lettered with `reason`, inside the caller's
/// transaction. They are kept for inspection like any failed delivery and never sent.
pub async fn dead_letter(
    tx: &mut Transaction<'_, Any>,
    refused: &[(NewDelivery, String)],
    now: &str,
) -> Result<(), sqlx::Error> {
    for (delivery, reason) in refused {
        sqlx::query(&format!(
            "INSERT INTO deliveries (id, store_id, message_id, webhook_id, event_type_id, event, \
             payload, status, attempts, next_attempt_at, last_error, created_at, updated_at, \
             contact_key) VALUES ($1, $2, $3, $4, $5, $6, $7, '{FAILED}', 0, $8, $9, $8, $8, $10)"
        ))
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&delivery.store_id)
        .bind(&delivery.message_id)
        .bind(&delivery.webhook_id)
        .bind(&delivery.event_type_id)
        .bind(&delivery.event)
        .bind(&delivery.payload)
        .bind(now)
        .bind(reason)
        .bind(&delivery.contact_key)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The multi-row insert; status and attempts are the same for every new row.
fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let n = |c: usize| format!("${}", row * 11 + c);
            format!(
                "({}, {}, {}, {}, {}, {}, {}, '{PENDING}', 0, {}, {}, {}, {})",
                n(1),
                n(2),
                n(3),
                n(4),
                n(5),
                n(6),
                n(7),
                n(8),
                n(9),
                n(10),
                n(11)
            )
        })
        .collect();
    format!(
        "INSERT INTO deliveries (id, store_id, message_id, webhook_id, event_type_id, event, \
         payload, status, attempts, next_attempt_at, created_at, updated_at, contact_key) VALUES {}",
        values.join(", ")
    )
}

/// A delivery a dispatcher has reserved for one attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: String,
    pub message_id: String,
    pub webhook_id: Option<String>,
    pub event_type_id: Option<String>,
    pub event: String,
    pub payload: String,
    /// Including the attempt about to be made (a BIGINT as stored; never negative).
    pub attempts: i64,
}

impl Claimed {
    /// The key per-endpoint limits and failure tracking use.
    pub fn endpoint(&self) -> &str {
        self.webhook_id
            .as_deref()
            .or(self.event_type_id.as_deref())
            .unwrap_or_default()
    }
}

/// Deliveries of a paused subscription wait, unclaimed, until it is active again.
const NOT_PAUSED: &str = "NOT EXISTS (SELECT 1 FROM webhooks w \
     WHERE w.id = deliveries.webhook_id AND w.is_active = 0)";

/// Who a delivery goes to: its subscription, or its send type. Per-endpoint limits count by
/// it, and the index `deliveries_pending` leads with it after the status, so the outbox is
/// read one endpoint at a time.
const ENDPOINT: &str = "COALESCE(webhook_id, event_type_id)";

/// Endpoints claimed from per statement: one `UNION ALL` arm each, within SQLite's bound on
/// a compound query's arms (500).
const ENDPOINTS_PER_CLAIM: usize = 100;

/// An endpoint with pending deliveries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingEndpoint {
    /// A subscription's id, or a send type's.
    pub endpoint: String,
    /// When its oldest pending delivery is due; `None` for a paused subscription, whose
    /// deliveries wait unclaimed.
    pub earliest: Option<String>,
}

/// Up to `limit` endpoints with pending deliveries, the first ones after `after` in endpoint
/// order (returned in no set order). It skips from one endpoint to the next in the index, a
/// seek each, however many deliveries wait: a time-ordered read would walk past every due
/// delivery of endpoints that have no free slot. The bound is counted inside the recursion,
/// so it holds whether or not the engine stops a recursive query at the outer `LIMIT`.
pub async fn pending_endpoints(
    db: &mut AnyConnection,
    after: &str,
    limit: usize,
) -> Result<Vec<PendingEndpoint>, sqlx::Error> {
    let sql = format!(
        "WITH RECURSIVE endpoints (endpoint, n) AS ( \
           SELECT MIN({ENDPOINT}), 1 FROM deliveries \
           WHERE status = '{PENDING}' AND {ENDPOINT} > $1 \
           UNION ALL \
           SELECT (SELECT MIN({ENDPOINT}) FROM deliveries \
                   WHERE status = '{PENDING}' AND {ENDPOINT} > endpoints.endpoint), n + 1 \
           FROM endpoints WHERE endpoints.endpoint IS NOT NULL AND n < $2) \
         SELECT endpoint, CASE WHEN NOT EXISTS \
             (SELECT 1 FROM webhooks w WHERE w.id = endpoints.endpoint AND w.is_active = 0) \
           THEN (SELECT MIN(next_attempt_at) FROM deliveries \
                 WHERE status = '{PENDING}' AND {ENDPOINT} = endpoints.endpoint) END AS earliest \
         FROM endpoints WHERE endpoint IS NOT NULL"
    );
    sqlx::query_as::<_, PendingEndpoint>(&sql)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(db)
        .await
}

/// Reserves up to `wanted.1` due deliveries of each endpoint `wanted.0`, oldest first, until
/// `lease_until`, and counts the attempt: the read and the claim are one statement. The due
/// condition is checked again on each row, so of two dispatchers racing for a row only one
/// gets it.
pub async fn claim_due(
    db: &mut AnyConnection,
    wanted: &[(&str, usize)],
    now: &str,
    lease_until: &str,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut claimed = Vec::new();
    for chunk in wanted.chunks(ENDPOINTS_PER_CLAIM) {
        let arms = (0..chunk.len())
            .map(|i| {
                let n = 3 + 3 * i;
                format!(
                    "SELECT id FROM (SELECT id FROM deliveries WHERE status = '{PENDING}' \
                     AND {ENDPOINT} = ${n} AND next_attempt_at <= ${} \
                     ORDER BY next_attempt_at LIMIT ${}) AS e{i}",
                    n + 1,
                    n + 2
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        // Up to three hundred values: bound by position on SQLite (see `sql::positional`), so
        // each is numbered once, in order, the lease twice.
        let sql = positional(
            engine_of(db),
            format!(
                "UPDATE deliveries SET next_attempt_at = $1, leased_until = $2, \
                 attempts = attempts + 1 WHERE id IN ({arms}) AND status = '{PENDING}' \
                 AND next_attempt_at <= ${} AND {NOT_PAUSED} \
                 RETURNING id, message_id, webhook_id, event_type_id, event, payload, attempts",
                3 + 3 * chunk.len()
            ),
        );
        let mut query = sqlx::query_as::<_, Claimed>(&sql)
            .bind(lease_until)
            .bind(lease_until);
        for (endpoint, at_most) in chunk {
            query = query.bind(*endpoint).bind(now).bind(*at_most as i64);
        }
        claimed.extend(query.bind(now).fetch_all(&mut *db).await?);
    }
    Ok(claimed)
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// An attempt's result: delivered, due again at `retry_at`, or failed for good.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub claimed: &'a Claimed,
    pub status: &'static str,
    pub retry_at: Option<String>,
    pub outcome: &'a Outcome,
}

/// Attempts recorded per statement: two parameters each.
const ATTEMPTS_PER_STATEMENT: usize = 200;

/// Records `attempts` inside the caller's transaction. Only the claim that made an attempt may
/// record it: a delivery claimed again since (a manual retry while it was in flight) keeps the
/// newer claim's result. One statement per distinct outcome, for up to
/// [`ATTEMPTS_PER_STATEMENT`] attempts: the delivered ones of a batch nearly always share
/// theirs, and on SQLite every statement is a round trip to its worker thread.
pub async fn record_all(
    tx: &mut Transaction<'_, Any>,
    attempts: &[Attempt<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    type Key<'k> = (&'k str, Option<&'k str>, Option<u16>, Option<&'k str>);
    let mut by_outcome: Vec<(Key<'_>, Vec<&Claimed>)> = Vec::new();
    for attempt in attempts {
        let key = (
            attempt.status,
            attempt.retry_at.as_deref(),
            attempt.outcome.status_code,
            attempt.outcome.error.as_deref(),
        );
        match by_outcome.iter_mut().find(|(k, _)| *k == key) {
            Some((_, claims)) => claims.push(attempt.claimed),
            None => by_outcome.push((key, vec![attempt.claimed])),
        }
    }
    let engine = engine_of(tx);
    for ((status, retry_at, status_code, error), claims) in &by_outcome {
        for chunk in claims.chunks(ATTEMPTS_PER_STATEMENT) {
            // Not `(id, attempts) IN (VALUES …)` as `sql::contacts_of_store` matches pairs: no
            // index leads with both columns here, and SQLite then scans the whole outbox
            // (EXPLAIN QUERY PLAN), where each `id = ?` term of an OR is a primary-key lookup.
            let claimed = (0..chunk.len())
                .map(|i| format!("(id = ${} AND attempts = ${})", 6 + 2 * i, 7 + 2 * i))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = positional(
                engine,
                format!(
                    "UPDATE deliveries SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
                     leased_until = NULL, last_status_code = $3, last_error = $4, updated_at = $5 \
                     WHERE {claimed}"
                ),
            );
            let mut query = sqlx::query(&sql)
                .bind(*status)
                .bind(*retry_at)
                .bind(status_code.map(i64::from))
                .bind(*error)
                .bind(now);
            for claim in chunk {
                query = query.bind(&claim.id).bind(claim.attempts);
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Gives back a claim that made no attempt because its subscription was paused meanwhile:
/// the attempt is not counted and the delivery waits, due, for the subscription to resume.
pub async fn release(
    db: impl Executor<'_, Database = Any>,
    claimed: &Claimed,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET attempts = attempts - 1, next_attempt_at = $1, \
         leased_until = NULL, updated_at = $1 WHERE id = $2 AND attempts = $3",
    )
    .bind(now)
    .bind(&claimed.id)
    .bind(claimed.attempts)
    .execute(db)
    .await?;
    Ok(())
}

/// Removes delivered and dead-lettered deliveries last changed before `cutoff`, so the outbox
/// stays bounded; pending ones are never removed. Returns how many went.
pub async fn forget_finished(db: &AnyPool, cutoff: &str) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query(&format!(
        "DELETE FROM deliveries WHERE status IN ('{DELIVERED}', '{FAILED}') AND updated_at < $1"
    ))
    .bind(cutoff)
    .execute(db)
    .await?
    .rows_affected();
    Ok(removed)
}

/// Adds one delivery outside any event (the test endpoint); returns its id.
pub async fn enqueue_one(db: &AnyPool, delivery: NewDelivery) -> Result<String, sqlx::Error> {
    let mut tx = db.begin().await?;
    let ids = enqueue(
        &mut tx,
        std::slice::from_ref(&delivery),
        &crate::clock::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(ids.into_iter().next().unwrap_or_default())
}
