//! Kafka as the queue: the producer gateways publish with, the consumer-group source, and the
//! topic setup both binaries share. Sluice does not rely on the broker creating topics.

mod admin;
mod connection;
mod producer;
mod source;

use std::num::NonZeroU32;

pub use admin::ensure_topics;
pub use connection::{
    Connection, ConnectionArgs, ConnectionError, KafkaOption, SaslMechanism, SecurityProtocol,
};
pub use producer::{KafkaProducer, ProducerConfig};
pub use source::{BrokerProbe, KafkaSource, KafkaSourceConfig};

/// The dead-letter topic of an events topic.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dead-letter")
}

/// How the events topic is created by whichever binary starts first; shared by `consumer` and
/// `gateway` so both create it alike.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicArgs {
    /// Partitions of the events topic when it is created.
    #[arg(long, env = "SLUICE_KAFKA_PARTITIONS", default_value = "12")]
    pub kafka_partitions: NonZeroU32,
    /// Replicas of each partition of the events and dead-letter topics when created.
    #[arg(long, env = "SLUICE_KAFKA_REPLICATION_FACTOR", default_value = "1")]
    pub kafka_replication_factor: NonZeroU32,
}

/// How the events topic is created when missing.
#[derive(Debug, Clone, Copy)]
pub struct TopicLayout {
    pub partitions: i32,
    pub replication: i32,
}

impl From<&TopicArgs> for TopicLayout {
    fn from(args: &TopicArgs) -> Self {
        TopicLayout {
            partitions: i32::try_from(args.kafka_partitions.get()).unwrap_or(i32::MAX),
            replication: i32::try_from(args.kafka_replication_factor.get()).unwrap_or(i32::MAX),
        }
    }
}
