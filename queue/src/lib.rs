//! The queue between gateway and consumer, both sides of it: gateways publish [`Message`]s
//! through a [`Publisher`], the consumer reads [`Batch`]es from a [`Source`]. Two queues
//! implement both: the embedded log (one machine, segment files of our own) and Kafka.
//!
//! An event is answered 201 only once `publish` has returned `Ok`, which means it is durable;
//! a source moves its position only when told the batch's effects are stored.

pub mod embedded;
pub mod kafka;

use std::future::Future;
use std::sync::Arc;

/// Why an event could not be queued. Both are retryable by the sender: the gateway answers
/// 503 with `Retry-After`.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// More events are waiting to be written than the queue holds in memory.
    #[error("the queue is full")]
    Full,
    /// The queue cannot write at all (disk failure, broker unreachable, shutting down).
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

/// One event on its way into the queue.
#[derive(Debug)]
pub struct Message {
    /// Store + contact: Kafka partitions by it, so one contact's events keep their order. The
    /// embedded log keeps one total order and does not need it.
    pub key: String,
    pub payload: Vec<u8>,
}

/// The configured queue's write side.
#[derive(Debug, Clone)]
pub enum Publisher {
    Embedded(Arc<embedded::EmbeddedWriter>),
    Kafka(Arc<kafka::KafkaProducer>),
}

impl Publisher {
    /// Makes `messages` durable, all or none.
    pub async fn publish(&self, messages: Vec<Message>) -> Result<(), PublishError> {
        match self {
            Publisher::Embedded(queue) => queue.publish(messages).await,
            Publisher::Kafka(queue) => queue.publish(messages).await,
        }
    }

    /// Whether the queue can take writes, for readiness.
    pub fn is_ready(&self) -> bool {
        match self {
            Publisher::Embedded(queue) => queue.is_ready(),
            Publisher::Kafka(queue) => queue.is_ready(),
        }
    }
}

/// How long a batch smaller than asked for waits for more, on either queue. Each batch is one
/// store transaction, and storing a batch of 20 events cost 1.3 times as much CPU per event as a
/// batch of 100 (`cargo bench -p consumer --bench apply`): on SQLite each transaction rewrites
/// whole pages, each shared by fewer events the smaller the batch. At 4,000 events/s, 5 ms made
/// batches of ~20 and 20 ms makes ~80. The wait only delays effects (workflows, webhooks),
/// never an answer to a sender, and a full batch is read at once, so busy queues do not wait.
pub const BATCH_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

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

/// Why a queue could not be read, acknowledged or take a dead letter. Every case is
/// retryable: the consumer waits and tries the same call again, holding its position.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The log or the brokers did not answer (disk failure, broker outage, rebalance).
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

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
    /// Messages waiting that are not stored yet, as last measured.
    fn lag(&self) -> u64;
    /// Makes every acknowledged position durable now, before the process exits. Sources that
    /// write the position on `commit` have nothing left to do.
    fn commit_now(&self) {}
}
