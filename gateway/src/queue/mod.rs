//! The queue between gateway and consumer. An event is answered 201 only once `publish` has
//! returned `Ok`, which means it is durable.

pub(crate) mod embedded;

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

/// One event on its way into the queue. The embedded log keeps one total order, which keeps
/// every contact's events in order without a partition key.
#[derive(Debug)]
pub(crate) struct Message {
    pub payload: Vec<u8>,
}

/// The configured queue.
#[derive(Debug, Clone)]
pub(crate) enum Queue {
    Embedded(Arc<embedded::EmbeddedQueue>),
}

impl Queue {
    /// Makes `messages` durable, all or none.
    pub(crate) async fn publish(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let started = Instant::now();
        let result = match self {
            Queue::Embedded(queue) => queue.publish(messages).await,
        };
        crate::metrics::report_publish(started.elapsed());
        result
    }

    /// Whether the queue can take writes, for readiness.
    pub(crate) fn is_ready(&self) -> bool {
        match self {
            Queue::Embedded(queue) => queue.is_ready(),
        }
    }
}
