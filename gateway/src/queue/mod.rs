//! The queue between gateway and consumer. An event is answered 201 only once `publish` has
//! returned `Ok`, which means it is durable.

pub(crate) mod embedded;
pub(crate) mod kafka;

use std::sync::Arc;
use std::time::Instant;

/// Why an event could not be queued; both are answered 503 with `Retry-After`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueueError {
    /// More events are waiting to be written than the queue holds in memory.
    #[error("the queue is full")]
    Full,
    /// The queue cannot write at all (disk failure, shutting down).
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

/// One event on its way into the queue.
#[derive(Debug)]
pub(crate) struct Message {
    /// Store + contact: Kafka partitions by it, so one contact's events keep their order. The
    /// embedded log keeps one total order and does not need it.
    pub key: String,
    pub payload: Vec<u8>,
}

/// The configured queue.
#[derive(Debug, Clone)]
pub(crate) enum Queue {
    Embedded(Arc<embedded::EmbeddedQueue>),
    Kafka(Arc<kafka::KafkaQueue>),
}

impl Queue {
    /// Makes `messages` durable, all or none.
    pub(crate) async fn publish(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let started = Instant::now();
        let result = match self {
            Queue::Embedded(queue) => queue.publish(messages).await,
            Queue::Kafka(queue) => queue.publish(messages).await,
        };
        crate::metrics::report_publish(started.elapsed());
        result
    }

    /// Whether the queue can take writes, for readiness.
    pub(crate) fn is_ready(&self) -> bool {
        match self {
            Queue::Embedded(queue) => queue.is_ready(),
            Queue::Kafka(queue) => queue.is_ready(),
        }
    }
}
