//! The consumer binary's one typed configuration, from flags and `SLUICE_*` variables.

use std::net::SocketAddr;

use clap::Parser;

/// Sluice's consumer: one member of a consumer group that turns events on Kafka into effects
/// in PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(name = "consumer", version, about)]
pub struct Config {
    /// `postgres://…` (or `sqlite:PATH` for a single consumer).
    #[arg(long, env = "SLUICE_DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic the gateways publish to.
    #[arg(long, env = "SLUICE_KAFKA_TOPIC", default_value = "sluice.events")]
    pub kafka_topic: String,
    /// Consumer group; members share the topic's partitions.
    #[arg(long, env = "SLUICE_CONSUMER_GROUP", default_value = "sluice-consumer")]
    pub group: String,
    /// Allow outbound webhooks to loopback, private and link-local addresses.
    #[arg(long, env = "SLUICE_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,
    /// Where `/metrics` is served.
    #[arg(long, env = "SLUICE_METRICS_LISTEN", default_value = "0.0.0.0:9091")]
    pub metrics_listen: SocketAddr,
    /// Log as JSON lines.
    #[arg(long, env = "SLUICE_LOG_JSON")]
    pub log_json: bool,
}
