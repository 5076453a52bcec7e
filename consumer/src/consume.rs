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
}

/// Consumes `source` into `db` until `shutdown` is cancelled; the batch in hand is finished first.
pub async fn run<S: Source>(mut source: S, db: AnyPool, shutdown: CancellationToken) {
    loop {
        let batch = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            batch = source.next_batch(MAX_BATCH) => batch,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "reading the queue failed; retrying");
                if pause(&shutdown, Duration::from_millis(500)).await {
                    return;
                }
                continue;
            }
        };
        if batch.messages.is_empty() {
            continue;
        }
        let envelopes = decode_all(batch.messages.clone());
        // Effects must be stored before the position moves; a store outage is waited out.
        let mut backoff = Duration::from_millis(100);
        loop {
            match contacts::apply(&db, &envelopes).await {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "storing effects failed; retrying the batch");
                    if pause(&shutdown, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        while let Err(error) = source.commit(&batch).await {
            tracing::warn!(%error, "committing the queue position failed; retrying");
            if pause(&shutdown, Duration::from_millis(500)).await {
                return;
            }
        }
        metrics::report_lag(batch.lag);
    }
}

/// Envelopes of a batch; a message that is not one is counted and set aside, never retried
/// forever.
fn decode_all(messages: Vec<Vec<u8>>) -> Vec<EventEnvelope> {
    messages
        .into_iter()
        .filter_map(
            |mut message| match EventEnvelope::from_bytes(&mut message) {
                Ok(envelope) => Some(envelope),
                Err(error) => {
                    tracing::error!(%error, "skipping a message that is not an event envelope");
                    metrics::report_malformed();
                    None
                }
            },
        )
        .collect()
}

/// Sleeps unless shutdown comes first; true when it did.
async fn pause(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
