//! Recording attempts: the dispatcher stores outcomes in batches between its claims (so the two
//! never wait for each other on SQLite's write lock), scheduling retries, dead-lettering the
//! last, and tracking each subscription's failing streak.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Any, AnyConnection, AnyPool};
use store::clock;
use store::outbox::{self, Claimed, Outcome};
use tokio::sync::OwnedSemaphorePermit;

use super::deliver::DeliveryConfig;
use crate::metrics;

/// An attempt's result on its way to the store. Its slots are freed only once it is
/// recorded, so an endpoint's limit also covers attempts not yet written down.
#[derive(Debug)]
pub(super) struct Attempted {
    pub(super) delivery: Claimed,
    pub(super) outcome: Outcome,
    pub(super) verdict: Verdict,
    pub(super) _slots: [OwnedSemaphorePermit; 2],
}

/// What a failed attempt means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The endpoint failed: retried, and counted toward disabling it.
    EndpointFailed,
    /// Retried, without blaming the endpoint.
    Held,
    /// Not retried.
    Final,
    /// No attempt was made (the subscription is paused): the claim is given back.
    NotAttempted,
}

/// Records `batch` in one transaction, trying again a few times if the store fails, and empties
/// it, freeing its attempts' slots.
/// `connection` is the dispatcher's own ([`store::kept_connection`]), dropped after a failure.
pub(super) async fn record(
    db: &AnyPool,
    connection: &mut Option<PoolConnection<Any>>,
    config: &DeliveryConfig,
    batch: &mut Vec<Attempted>,
) {
    if batch.is_empty() {
        return;
    }
    for attempt in 1.. {
        let recorded = match store::kept_connection(db, connection).await {
            Ok(kept) => record_once(kept, config, batch).await,
            Err(error) => Err(error),
        };
        if recorded.is_err() {
            *connection = None;
        }
        match recorded {
            Ok(()) => break,
            Err(error) if attempt < 5 => {
                tracing::warn!(%error, "recording delivery attempts failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(error) => {
                // Their leases make these deliveries due again: retried, not lost.
                tracing::error!(%error, count = batch.len(), "could not record delivery attempts");
                break;
            }
        }
    }
    batch.clear();
}

/// Stores each outcome (delivered, due again later, or failed for good) and tracks how long
/// each subscription has been failing, all in one transaction.
async fn record_once(
    db: &mut AnyConnection,
    config: &DeliveryConfig,
    batch: &[Attempted],
) -> Result<(), sqlx::Error> {
    let now = clock::now();
    let mut tx = db.begin().await?;
    let mut attempts = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut disabled = 0u64;
    // Subscriptions whose streak a success in this batch clears, with no failure since: a
    // second clear would change nothing. The clears not yet written are written together, at
    // the end or before a failure of one of them: clears of different subscriptions commute,
    // and a batch that only delivered costs one statement, not one per subscription.
    let mut cleared: HashSet<&str> = HashSet::new();
    let mut to_clear: Vec<&str> = Vec::new();
    for Attempted {
        delivery,
        outcome,
        verdict,
        ..
    } in batch
    {
        if *verdict == Verdict::NotAttempted {
            outbox::release(&mut *tx, delivery, &now).await?;
            continue;
        }
        let delivered = outcome.error.is_none();
        let (status, retry_at, label) = if delivered {
            (outbox::DELIVERED, None, "delivered")
        } else {
            let retry = (*verdict != Verdict::Final)
                .then(|| {
                    config
                        .retries
                        .after(u32::try_from(delivery.attempts).unwrap_or(u32::MAX))
                })
                .flatten();
            match retry {
                Some(delay) => (outbox::PENDING, Some(clock::after(delay)), "retrying"),
                None => (outbox::FAILED, None, "failed"),
            }
        };
        attempts.push(outbox::Attempt {
            claimed: delivery,
            status,
            retry_at,
            outcome,
        });
        // A subscription's streak follows its attempts in the order they were made.
        if let Some(webhook) = &delivery.webhook_id {
            if delivered {
                if cleared.insert(webhook) {
                    to_clear.push(webhook);
                }
            } else if *verdict == Verdict::EndpointFailed {
                cleared.remove(webhook.as_str());
                if to_clear.contains(&webhook.as_str()) {
                    super::health::succeeded(&mut tx, &to_clear).await?;
                    to_clear.clear();
                }
                if super::health::failed(&mut tx, webhook, config.disable_after).await? {
                    disabled += 1;
                }
            }
        }
        outcomes.push(label);
    }
    super::health::succeeded(&mut tx, &to_clear).await?;
    outbox::record_all(&mut tx, &attempts, &now).await?;
    tx.commit().await?;
    for label in outcomes {
        metrics::report_delivery(label);
    }
    // Counted once committed: a rolled-back disable did not happen.
    metrics::report_endpoints_disabled(disabled);
    Ok(())
}
