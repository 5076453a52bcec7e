//! The consumer binary's one typed configuration, from flags and `SLUICE_*` variables.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use clap::{Args, Parser};

use crate::webhooks::retry::RetrySchedule;
use crate::webhooks::DeliveryConfig;

/// Sluice's consumer: one member of a consumer group that turns events on Kafka into effects
/// in PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(name = "consumer", version, about)]
pub struct Config {
    /// `postgres://…` (or `sqlite:PATH` for a single consumer).
    #[arg(long, env = "SLUICE_DATABASE_URL")]
    pub database_url: String,
    /// How the Kafka brokers are reached.
    #[command(flatten)]
    pub kafka: queue::kafka::ConnectionArgs,
    /// Topic the gateways publish to.
    #[arg(long, env = "SLUICE_KAFKA_TOPIC", default_value = "sluice.events")]
    pub kafka_topic: String,
    /// Consumer group; members share the topic's partitions.
    #[arg(long, env = "SLUICE_CONSUMER_GROUP", default_value = "sluice-consumer")]
    pub group: String,
    #[command(flatten)]
    pub topics: queue::kafka::TopicArgs,
    #[command(flatten)]
    pub consume: ConsumeArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "SLUICE_METRICS_LISTEN", default_value = "0.0.0.0:9091")]
    pub metrics_listen: SocketAddr,
    /// Log as JSON lines.
    #[arg(long, env = "SLUICE_LOG_JSON")]
    pub log_json: bool,
}

/// How the consume loop reports a batch it cannot store; shared by `consumer` and `gateway`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// How long one batch may keep failing before readiness fails (e.g. 60s).
    #[arg(long, env = "SLUICE_STUCK_AFTER", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stuck_after: Duration,
}

/// How outbound webhooks are delivered; shared by `consumer` and `gateway`.
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// Allow outbound webhooks to loopback, private and link-local addresses.
    #[arg(long, env = "SLUICE_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,
    /// How long an endpoint has to answer a delivery (e.g. 15s).
    #[arg(long, env = "SLUICE_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,
    /// Delays before each retry of a failed delivery, comma-separated (default: 5s … 8h, about
    /// 24 h in all); after the last, the delivery is dead-lettered.
    #[arg(long, env = "SLUICE_WEBHOOK_RETRY_SCHEDULE", value_parser = RetrySchedule::parse)]
    pub webhook_retry_schedule: Option<RetrySchedule>,
    /// How long an endpoint may keep failing before it is disabled (e.g. 24h).
    #[arg(long, env = "SLUICE_WEBHOOK_DISABLE_AFTER", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_disable_after: Duration,
    /// Deliveries in flight to one endpoint at once.
    #[arg(
        long,
        env = "SLUICE_WEBHOOK_CONCURRENCY_PER_ENDPOINT",
        default_value = "4"
    )]
    pub webhook_concurrency_per_endpoint: NonZeroU32,
    /// Deliveries in flight in all.
    #[arg(long, env = "SLUICE_WEBHOOK_MAX_IN_FLIGHT", default_value = "256")]
    pub webhook_max_in_flight: NonZeroU32,
    /// How long delivered and dead-lettered deliveries stay listed (e.g. 7d is 168h).
    #[arg(long, env = "SLUICE_WEBHOOK_RETENTION", default_value = "168h", value_parser = humantime::parse_duration)]
    pub webhook_retention: Duration,
}

impl DeliveryArgs {
    /// The dispatcher's settings.
    pub fn delivery_config(&self) -> DeliveryConfig {
        DeliveryConfig {
            allow_private_targets: self.allow_private_targets,
            timeout: self.webhook_timeout,
            retries: self.webhook_retry_schedule.clone().unwrap_or_default(),
            disable_after: self.webhook_disable_after,
            per_endpoint: self.webhook_concurrency_per_endpoint.get() as usize,
            max_in_flight: self.webhook_max_in_flight.get() as usize,
            retention: self.webhook_retention,
            ..DeliveryConfig::default()
        }
    }
}
