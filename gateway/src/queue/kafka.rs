//! Kafka as the queue: an idempotent producer with `acks=all`. An event is answered 201 only
//! after its delivery report; a full local queue or a broker that does not confirm in time is
//! a 503, never a silent drop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use super::{Message, QueueError};

/// What the producer needs.
#[derive(Debug, Clone)]
pub(crate) struct KafkaConfig {
    pub brokers: String,
    pub topic: String,
    pub partitions: i32,
    pub linger: Duration,
    pub delivery_timeout: Duration,
    pub max_buffered: u32,
}

/// The producer side of the queue.
pub(crate) struct KafkaQueue {
    producer: FutureProducer,
    topic: String,
    reachable: Arc<AtomicBool>,
}

impl std::fmt::Debug for KafkaQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaQueue")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaQueue {
    /// Creates the topics when missing and starts the producer.
    pub(crate) async fn start(config: &KafkaConfig) -> Result<KafkaQueue, KafkaError> {
        consumer::kafka::ensure_topics(&config.brokers, &config.topic, config.partitions).await?;
        let producer: FutureProducer = consumer::kafka::client_config(&config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger.as_millis().to_string())
            .set("batch.num.messages", "10000")
            .set("compression.type", "lz4")
            .set(
                "queue.buffering.max.messages",
                config.max_buffered.to_string(),
            )
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .create()?;
        Ok(KafkaQueue {
            producer,
            topic: config.topic.clone(),
            reachable: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Sends every message and waits for all their delivery reports.
    pub(crate) async fn publish(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let mut deliveries = Vec::with_capacity(messages.len());
        for message in &messages {
            let record = FutureRecord::to(&self.topic)
                .key(message.key.as_bytes())
                .payload(message.payload.as_slice());
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(QueueError::Full)
                }
                Err((error, _)) => return Err(QueueError::Unavailable(error.to_string())),
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(QueueError::Unavailable(error.to_string())),
                Err(_) => return Err(QueueError::Unavailable("producer closed".into())),
            }
        }
        Ok(())
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Watches the broker for readiness until `stop`.
    pub(crate) async fn watch_broker(self: Arc<Self>, stop: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let queue = self.clone();
            let reachable = tokio::task::spawn_blocking(move || {
                queue
                    .producer
                    .client()
                    .fetch_metadata(Some(&queue.topic), Duration::from_secs(1))
                    .is_ok()
            })
            .await
            .unwrap_or(false);
            self.reachable.store(reachable, Ordering::Relaxed);
        }
    }

    /// Delivers everything still buffered, within `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!(%error, "producer not fully flushed at shutdown");
        }
    }
}
