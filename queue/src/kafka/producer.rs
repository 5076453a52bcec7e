//! The gateways' side of Kafka: an idempotent producer with `acks=all`. An event is answered 201 only
//! after its delivery report; a full local queue or a broker that does not confirm in time is
//! a 503, never a silent drop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use super::{ensure_topics, Connection, TopicLayout};
use crate::{Message, PublishError};

/// What the producer needs.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub connection: Connection,
    pub topic: String,
    pub layout: TopicLayout,
    pub linger: Duration,
    pub delivery_timeout: Duration,
    pub max_buffered: u32,
}

/// The producer side of the queue.
pub struct KafkaProducer {
    /// Replaced when librdkafka reports a fatal error (an idempotent producer fenced after a
    /// broker outage, say): such an instance can never send again.
    producer: RwLock<Arc<FutureProducer>>,
    settings: ClientConfig,
    topic: String,
    reachable: Arc<AtomicBool>,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// Creates the topics when missing and starts the producer.
    pub async fn start(config: &ProducerConfig) -> Result<KafkaProducer, KafkaError> {
        let linger = config.linger.as_millis().to_string();
        let max_buffered = config.max_buffered.to_string();
        let timeout = config.delivery_timeout.as_millis().to_string();
        let settings = config.connection.client_config(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", &linger),
            ("batch.num.messages", "10000"),
            ("compression.type", "lz4"),
            ("queue.buffering.max.messages", &max_buffered),
            ("message.timeout.ms", &timeout),
        ]);
        let producer: FutureProducer = settings.create()?;
        // Created first: its polling thread logs why the brokers cannot be reached (refused,
        // TLS handshake, SASL credentials) while the topic check waits; the admin client's
        // own log is never read.
        ensure_topics(&config.connection, &config.topic, config.layout).await?;
        Ok(KafkaProducer {
            producer: RwLock::new(Arc::new(producer)),
            settings,
            topic: config.topic.clone(),
            reachable: Arc::new(AtomicBool::new(true)),
        })
    }

    fn producer(&self) -> Arc<FutureProducer> {
        self.producer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts a new producer if `failed` can send no more (a fatal error, or fenced by the
    /// broker after a bumped epoch) and is still the current one.
    fn replace_if_dead(&self, failed: &Arc<FutureProducer>, fenced: bool) {
        let (code, reason) = match failed.client().fatal_error() {
            Some((code, reason)) => (code, reason),
            None if fenced => (RDKafkaErrorCode::ProducerFenced, "fenced".to_owned()),
            None => return,
        };
        let mut current = self
            .producer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        tracing::warn!(?code, %reason, "Kafka producer failed fatally; starting a new one");
        match self.settings.create::<FutureProducer>() {
            Ok(fresh) => *current = Arc::new(fresh),
            Err(error) => tracing::error!(%error, "could not start a new Kafka producer"),
        }
    }

    /// Sends every message and waits for all their delivery reports.
    pub async fn publish(&self, messages: Vec<Message>) -> Result<(), PublishError> {
        let producer = self.producer();
        self.send_all(&producer, messages).await.map_err(|error| {
            let fenced = matches!(
                &error,
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
                )
            );
            self.replace_if_dead(&producer, fenced);
            match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => PublishError::Full,
                other => PublishError::Unavailable(other.to_string()),
            }
        })
    }

    async fn send_all(
        &self,
        producer: &FutureProducer,
        messages: Vec<Message>,
    ) -> Result<(), KafkaError> {
        let mut deliveries = Vec::with_capacity(messages.len());
        for message in &messages {
            let record = FutureRecord::to(&self.topic)
                .key(message.key.as_bytes())
                .payload(message.payload.as_slice());
            let delivery = producer.send_result(record).map_err(|(error, _)| error)?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(error),
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        Ok(())
    }

    pub fn is_ready(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Watches the broker for readiness until `stop`.
    pub async fn watch_broker(self: Arc<Self>, stop: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let (producer, topic) = (self.producer(), self.topic.clone());
            let reachable = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(Some(&topic), Duration::from_secs(1))
                    .is_ok()
            })
            .await
            .unwrap_or(false);
            self.reachable.store(reachable, Ordering::Relaxed);
        }
    }

    /// Delivers everything still buffered, within `timeout`.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer().flush(timeout) {
            tracing::warn!(%error, "producer not fully flushed at shutdown");
        }
    }
}
