//! The consume loop: take a batch from the queue, store its effects, then move the queue's
//! position. The position moves only after the effects are committed, so a crash replays the
//! batch, and the event-id dedupe makes the replay change nothing.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use queue::Source;
use schemas::EventEnvelope;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use tokio_util::sync::CancellationToken;

use crate::effects::{self, Applied};
use crate::error::ApplyError;
use crate::health::Health;
use crate::metrics;
use crate::webhooks::Wake;

/// Most messages taken from the queue per store transaction.
pub const MAX_BATCH: usize = 512;

/// Consumes `source` into `db` until `shutdown` is cancelled; the batch in hand is finished first.
/// `deliveries` is woken when a batch adds outbound deliveries; `health` tells readiness whether
/// the batch in hand keeps failing.
pub async fn run<S: Source>(
    mut source: S,
    db: AnyPool,
    deliveries: Wake,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> S {
    // Kept across batches (see `store::consumer_connection`); dropped after a failure, which
    // may have been the connection's own.
    let mut connection = None;
    loop {
        let batch = tokio::select! {
            biased;
            () = shutdown.cancelled() => return source,
            batch = source.next_batch(MAX_BATCH) => batch,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "reading the queue failed; retrying");
                if pause(&shutdown, Duration::from_millis(500)).await {
                    return source;
                }
                continue;
            }
        };
        if batch.messages.is_empty() {
            metrics::report_lag(source.lag());
            continue;
        }
        let mut events = Events::default();
        for message in &batch.messages {
            let mut buf = message.clone();
            match EventEnvelope::from_bytes(&mut buf) {
                Ok(envelope) => {
                    events.messages.push(message);
                    events.envelopes.push(envelope);
                }
                Err(error) => {
                    // A poison message must not stop the queue: it is set aside, durably,
                    // before the position moves past it.
                    tracing::error!(%error, "dead-lettering a message that is not an event envelope");
                    metrics::report_malformed();
                    let reason = format!("not an event envelope: {error}");
                    if !set_aside_message(&mut source, message, &reason, &health, &shutdown).await {
                        return source;
                    }
                    metrics::report_dead_lettered("malformed");
                }
            }
        }
        // Effects must be stored before the position moves. A store outage is waited out with
        // the batch in hand; an event the store refuses is dead-lettered and the rest go on.
        let mut backoff = Duration::from_millis(100);
        // Events already dead-lettered while an earlier try of this batch went on: a retry
        // after a transient fault must not set them aside twice.
        let mut set_aside = vec![false; events.envelopes.len()];
        loop {
            match store(
                &db,
                &mut connection,
                &mut source,
                &events,
                &mut set_aside,
                &health,
                &shutdown,
            )
            .await
            {
                Ok(Some(stored)) => {
                    if stored.deliveries > 0 {
                        deliveries.notify_one();
                    }
                    break;
                }
                Ok(None) => return source,
                Err(error) => {
                    health.batch_failed();
                    metrics::report_lag(source.lag());
                    tracing::warn!(%error, ?backoff, failing_for = ?health.failing_for(), "storing effects failed; retrying the batch");
                    if pause(&shutdown, backoff).await {
                        return source;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        while let Err(error) = source.commit(&batch).await {
            health.batch_failed();
            tracing::warn!(%error, "committing the queue position failed; retrying");
            if pause(&shutdown, Duration::from_millis(500)).await {
                return source;
            }
        }
        health.batch_stored();
        metrics::report_lag(source.lag());
    }
}

/// The readable messages of a batch and their envelopes, index for index.
#[derive(Default)]
struct Events<'m> {
    messages: Vec<&'m [u8]>,
    envelopes: Vec<EventEnvelope>,
}

/// Stores `events`' effects. When the store refuses the data, the batch is split in halves
/// until the events it refuses stand alone; those are dead-lettered with the store's reason
/// (and marked in `set_aside`), and every other event is stored, in queue order.
/// `Ok(None)`: shutdown came first. A failure that may be the connection's closes it.
async fn store<S: Source>(
    db: &AnyPool,
    connection: &mut Option<PoolConnection<Any>>,
    source: &mut S,
    events: &Events<'_>,
    set_aside: &mut [bool],
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<Applied>, sqlx::Error> {
    let mut total = Applied::default();
    // Index ranges still to store, last first, so that popping keeps queue order.
    #[allow(clippy::single_range_in_vec_init)] // a stack of ranges, the whole batch first
    let mut pending = vec![0..events.envelopes.len()];
    while let Some(range) = pending.pop() {
        // Only a retry after some events were set aside needs a copy without them.
        let envelopes: Cow<'_, [EventEnvelope]> = if set_aside[range.clone()].contains(&true) {
            range
                .clone()
                .filter(|&i| !set_aside[i])
                .map(|i| events.envelopes[i].clone())
                .collect()
        } else {
            Cow::Borrowed(&events.envelopes[range.clone()])
        };
        let kept = store::kept_connection(db, connection).await?;
        match effects::apply(&mut **kept, &envelopes).await {
            Ok(applied) => total.add(&applied),
            Err(ApplyError::Transient(error)) => {
                *connection = None;
                return Err(error);
            }
            Err(ApplyError::Permanent(error)) if range.len() == 1 => {
                let at = range.start;
                let event_id = &events.envelopes[at].id;
                tracing::error!(%error, %event_id, "dead-lettering an event the store refuses");
                metrics::report_dead_lettered("store_refused");
                let reason = format!("the store refused the event: {error}");
                if !set_aside_message(source, events.messages[at], &reason, health, shutdown).await
                {
                    return Ok(None);
                }
                set_aside[at] = true;
            }
            Err(ApplyError::Permanent(_)) => {
                let middle = range.start + range.len() / 2;
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
        }
    }
    Ok(Some(total))
}

/// Dead-letters `message`, retrying until the queue takes it; false if shutdown came first.
async fn set_aside_message<S: Source>(
    source: &mut S,
    message: &[u8],
    reason: &str,
    health: &Health,
    shutdown: &CancellationToken,
) -> bool {
    while let Err(error) = source.dead_letter(message, reason).await {
        health.batch_failed();
        tracing::warn!(%error, "dead-lettering failed; retrying");
        if pause(shutdown, Duration::from_millis(500)).await {
            return false;
        }
    }
    true
}

/// Sleeps unless shutdown comes first; true when it did.
async fn pause(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
