//! The consume loop: take a batch from the queue, store its effects, then move the queue's
//! position. The position moves only after the effects are committed, so a crash replays the
//! batch, and the event-id dedupe makes the replay change nothing.

use std::future::Future;
use std::time::Duration;

use schemas::EventEnvelope;
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

use crate::contacts;
use crate::metrics;
use crate::webhooks::Wake;

/// Most messages taken from the queue per store transaction.
pub const MAX_BATCH: usize = 512;

/// Messages read from a queue, with what the queue needs to acknowledge them.
#[derive(Debug, Default)]
pub struct Batch {
    /// Raw envelopes, in queue order.
    pub messages: Vec<Vec<u8>>,
    /// Where the queue resumes once this batch is committed.
    pub next_position: u64,
    /// Messages still waiting after this batch.
    pub lag: u64,
}

/// Why a queue could not be read or acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct SourceError(pub String);

/// A queue the consumer reads: the embedded log or Kafka.
pub trait Source: Send {
    /// Waits for at least one message (or returns an empty batch on a periodic wake-up).
    fn next_batch(&mut self, max: usize)
        -> impl Future<Output = Result<Batch, SourceError>> + Send;
    /// Records that everything in `batch` has its effects stored.
    fn commit(&mut self, batch: &Batch) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Sets aside a message that is not an event envelope, with why, so it can be inspected.
    fn dead_letter(
        &mut self,
        message: &[u8],
        reason: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// Consumes `source` into `db` until `shutdown` is cancelled; the batch in hand is finished first.
/// `deliveries` is woken when a batch adds outbound deliveries.
pub async fn run<S: Source>(
    mut source: S,
    db: AnyPool,
    deliveries: Wake,
    shutdown: CancellationToken,
) -> S {
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
            continue;
        }
        let mut envelopes = Vec::with_capacity(batch.messages.len());
        for message in &batch.messages {
            let mut buf = message.clone();
            match EventEnvelope::from_bytes(&mut buf) {
                Ok(envelope) => envelopes.push(envelope),
                Err(error) => {
                    // A poison message must not stop the queue: it is set aside, durably,
                    // before the position moves past it.
                    tracing::error!(%error, "dead-lettering a message that is not an event envelope");
                    metrics::report_malformed();
                    while let Err(error) = source.dead_letter(message, &error.to_string()).await {
                        tracing::warn!(%error, "dead-lettering failed; retrying");
                        if pause(&shutdown, Duration::from_millis(500)).await {
                            return source;
                        }
                    }
                }
            }
        }
        // Effects must be stored before the position moves; a store outage is waited out.
        let mut backoff = Duration::from_millis(100);
        loop {
            match contacts::apply(&db, &envelopes).await {
                Ok(applied) => {
                    if applied.deliveries > 0 {
                        deliveries.notify_one();
                    }
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "storing effects failed; retrying the batch");
                    if pause(&shutdown, backoff).await {
                        return source;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        while let Err(error) = source.commit(&batch).await {
            tracing::warn!(%error, "committing the queue position failed; retrying");
            if pause(&shutdown, Duration::from_millis(500)).await {
                return source;
            }
        }
        metrics::report_lag(batch.lag);
    }
}

/// Sleeps unless shutdown comes first; true when it did.
async fn pause(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
