//! Kafka as the queue's read side: a consumer-group member.
//!
//! Offsets are stored (`enable.auto.offset.store=false`) only after a batch's effects are
//! committed in the store, and committed from there by librdkafka; a crash replays at most the
//! batches since the last commit, which the event-id dedupe makes harmless. Messages that are
//! not envelopes go to the dead-letter topic with the reason, and consumption goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;

use super::{dead_letter_topic, Connection};
use crate::{Batch, Source, SourceError, BATCH_LINGER};

/// How often consumer lag is measured against the partitions' high watermarks.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// What the Kafka source needs.
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub connection: Connection,
    pub topic: String,
    pub group: String,
}

/// A consumer-group member reading the events topic.
pub struct KafkaSource {
    consumer: Arc<StreamConsumer>,
    dead_letters: FutureProducer,
    dead_letter_topic: String,
    topic: String,
    /// Highest offset read per partition in the batch in hand.
    pending: HashMap<i32, i64>,
    /// Measured off the consume path: asking the broker for watermarks can take seconds, and
    /// doing it between batches once throttled consumption to one batch per measurement.
    lag: Arc<AtomicU64>,
    lag_watch: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Joins the group and subscribes to the topic.
    pub fn new(config: &KafkaSourceConfig) -> Result<KafkaSource, KafkaError> {
        let consumer: StreamConsumer = config
            .connection
            .client_config(&[
                ("group.id", &config.group),
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "1000"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                // A member that dies without leaving holds its partitions this long.
                ("session.timeout.ms", "6000"),
                // How long a member may go without reading. A batch the store cannot take is
                // held (and retried) without reading on, so this must outlast a store outage
                // the consumer is meant to ride out: evicted, it would report no lag while
                // stuck and hand the same stall to the next member. A member that truly hangs
                // is caught by readiness (`--stuck-after`) long before this.
                ("max.poll.interval.ms", "300000"),
            ])
            .create()?;
        consumer.subscribe(&[&config.topic])?;
        let dead_letters: FutureProducer = config
            .connection
            .client_config(&[("enable.idempotence", "true"), ("acks", "all")])
            .create()?;
        Ok(KafkaSource {
            consumer: Arc::new(consumer),
            dead_letters,
            dead_letter_topic: dead_letter_topic(&config.topic),
            topic: config.topic.clone(),
            pending: HashMap::new(),
            lag: Arc::new(AtomicU64::new(0)),
            lag_watch: None,
        })
    }

    /// A handle that asks the brokers whether they answer, for readiness.
    pub fn broker_probe(&self) -> BrokerProbe {
        BrokerProbe {
            consumer: self.consumer.clone(),
            topic: self.topic.clone(),
        }
    }

    /// Starts measuring lag in the background, once, from inside the runtime.
    fn watch_lag(&mut self) {
        if self.lag_watch.is_some() {
            return;
        }
        let (consumer, topic, lag) = (self.consumer.clone(), self.topic.clone(), self.lag.clone());
        self.lag_watch = Some(tokio::spawn(async move {
            loop {
                let (consumer, topic) = (consumer.clone(), topic.clone());
                let measured = tokio::task::spawn_blocking(move || measure_lag(&consumer, &topic))
                    .await
                    .ok()
                    .flatten();
                if let Some(measured) = measured {
                    lag.store(measured, Ordering::Relaxed);
                }
                tokio::time::sleep(LAG_EVERY).await;
            }
        }));
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        if let Some(watch) = self.lag_watch.take() {
            watch.abort();
        }
    }
}

/// Asks the brokers for the topic's metadata: they answer or they do not.
#[derive(Clone)]
pub struct BrokerProbe {
    consumer: Arc<StreamConsumer>,
    topic: String,
}

impl std::fmt::Debug for BrokerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerProbe")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl BrokerProbe {
    /// Whether a broker answered within two seconds.
    pub async fn reachable(&self) -> bool {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

/// Messages behind the assigned partitions' high watermarks, counted from the committed
/// offsets: those move only after effects are stored, so the figure keeps rising while a batch
/// is stuck (the fetch position would not: it runs ahead as soon as messages are received).
fn measure_lag(consumer: &StreamConsumer, topic: &str) -> Option<u64> {
    let assignment = consumer.assignment().ok()?;
    let committed = consumer
        .committed_offsets(assignment, Duration::from_secs(1))
        .ok()?;
    let mut lag = 0u64;
    for element in committed.elements_for_topic(topic) {
        let (low, high) = consumer
            .fetch_watermarks(topic, element.partition(), Duration::from_secs(1))
            .ok()?;
        let at = element.offset().to_raw().filter(|o| *o >= 0).unwrap_or(low);
        lag += (high - at).max(0) as u64;
    }
    Some(lag)
}

impl Source for KafkaSource {
    async fn next_batch(&mut self, max: usize) -> Result<Batch, SourceError> {
        self.watch_lag();
        self.pending.clear();
        let mut messages = Vec::new();
        let consumer = self.consumer.clone();
        // Wait for the first message, waking now and then so lag stays current when idle.
        let first = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await;
        match first {
            Err(_) => return Ok(Batch::default()),
            Ok(Err(error)) => return Err(SourceError::Unavailable(error.to_string())),
            Ok(Ok(message)) => {
                self.pending.insert(message.partition(), message.offset());
                messages.push(message.payload().unwrap_or_default().to_vec());
            }
        }
        let deadline = tokio::time::Instant::now() + BATCH_LINGER;
        while messages.len() < max {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => {
                    self.pending.insert(message.partition(), message.offset());
                    messages.push(message.payload().unwrap_or_default().to_vec());
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "reading Kafka");
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(Batch {
            next_position: 0,
            lag: self.lag.load(Ordering::Relaxed),
            messages,
        })
    }

    async fn commit(&mut self, _batch: &Batch) -> Result<(), SourceError> {
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in &self.pending {
            // The stored offset is the next message to read: the last one done + 1
            // (`rd_kafka_offsets_store` stores it as given). Storing the last one done made
            // every restart replay it and a caught-up group report one message of lag per
            // partition.
            offsets
                .add_partition_offset(
                    &self.topic,
                    *partition,
                    rdkafka::Offset::Offset(*offset + 1),
                )
                .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        }
        match self.consumer.store_offsets(&offsets) {
            Ok(()) => {}
            // A partition revoked by a rebalance while the batch was in hand: its new owner
            // replays from the last commit, and the replay changes nothing.
            Err(error) => tracing::info!(%error, "offsets not stored (partitions reassigned)"),
        }
        self.pending.clear();
        Ok(())
    }

    fn lag(&self) -> u64 {
        self.lag.load(Ordering::Relaxed)
    }

    /// Stored offsets are committed by librdkafka every second; this commits the last ones.
    fn commit_now(&self) {
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is not an error worth more than a note.
            tracing::debug!(%error, "final offset commit");
        }
    }

    async fn dead_letter(&mut self, message: &[u8], reason: &str) -> Result<(), SourceError> {
        let headers = OwnedHeaders::new().insert(Header {
            key: "sluice-reason",
            value: Some(reason),
        });
        let record = FutureRecord::<(), [u8]>::to(&self.dead_letter_topic)
            .payload(message)
            .headers(headers);
        self.dead_letters
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(error, _)| SourceError::Unavailable(error.to_string()))
    }
}
