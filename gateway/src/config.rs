//! The gateway's one typed configuration, parsed from flags and `SLUICE_*` variables.
//! Nothing else in the gateway reads the environment.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sluice's gateway: the whole product on one machine by default, or one of many stateless
/// gateways in front of Kafka.
#[derive(Debug, Parser)]
#[command(name = "gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage stores (tenants).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create a store and its admin API key; prints `{"storeId","apiKey"}`.
    Create {
        /// The store's display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        storage: StorageConfig,
    },
}

/// Where the registry, contacts and the embedded queue live.
#[derive(Debug, Clone, Args)]
pub struct StorageConfig {
    /// Directory for the embedded store and queue.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…`; defaults to SQLite inside the data directory.
    #[arg(long, env = "SLUICE_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageConfig {
    /// The database URL in force: the flag, or SQLite under the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| store::sqlite_url(&self.data_dir))
    }
}

/// Which queue carries accepted events to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueKind {
    /// A durable log inside the data directory.
    Embedded,
    /// A Kafka cluster.
    Kafka,
}

/// Everything `gateway` (serve) needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub storage: StorageConfig,
    /// Queue between gateway and consumer.
    #[arg(long, env = "SLUICE_QUEUE", value_enum, default_value_t = QueueKind::Embedded)]
    pub queue: QueueKind,
    /// How long the embedded queue lets a small group of requests wait for more before one
    /// write and one sync acknowledge them all (0 to 10ms): longer groups share a sync among
    /// more events at moderate rates, at that much added latency.
    #[arg(long, env = "SLUICE_QUEUE_LINGER", default_value = "500us", value_parser = parse_queue_linger)]
    pub queue_linger: Duration,
    /// How the Kafka brokers are reached, for `--queue kafka`.
    #[command(flatten)]
    pub kafka: queue::kafka::ConnectionArgs,
    /// Kafka topic for accepted events.
    #[arg(long, env = "SLUICE_KAFKA_TOPIC", default_value = "sluice.events")]
    pub kafka_topic: String,
    #[command(flatten)]
    pub topics: queue::kafka::TopicArgs,
    /// How long the producer waits to fill a batch (e.g. 1ms).
    #[arg(long, env = "SLUICE_KAFKA_LINGER", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub kafka_linger: Duration,
    /// How long a delivery may take before the event is answered 503 (e.g. 5s).
    #[arg(long, env = "SLUICE_KAFKA_DELIVERY_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub kafka_delivery_timeout: Duration,
    /// Most events buffered in the producer before new ones get 503.
    #[arg(long, env = "SLUICE_KAFKA_MAX_BUFFERED", default_value = "100000")]
    pub kafka_max_buffered: NonZeroU32,
    /// Consumer group of an in-process consumer in Kafka mode (`--with-consumer true`).
    #[arg(long, env = "SLUICE_CONSUMER_GROUP", default_value = "sluice-consumer")]
    pub group: String,
    /// Run the consumer inside the gateway (default in embedded mode).
    #[arg(long, env = "SLUICE_WITH_CONSUMER")]
    pub with_consumer: Option<bool>,
    /// Events per second per API key on the api path (burst: one second's worth).
    #[arg(long, env = "SLUICE_RATE_LIMIT_API", default_value = "1000")]
    pub rate_limit_api: NonZeroU32,
    /// Events per second per store and alias on the webhook path.
    #[arg(long, env = "SLUICE_RATE_LIMIT_WEBHOOK", default_value = "1000")]
    pub rate_limit_webhook: NonZeroU32,
    /// Events per second per client IP on the SDK path.
    #[arg(long, env = "SLUICE_RATE_LIMIT_SDK", default_value = "50")]
    pub rate_limit_sdk: NonZeroU32,
    /// Proxies (CIDR blocks or addresses, comma-separated) whose X-Forwarded-For names the
    /// client, for SDK rate limits; from any other peer the header is ignored.
    #[arg(long, env = "SLUICE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::TrustedProxies,
    /// Largest event body accepted, in bytes.
    #[arg(long, env = "SLUICE_MAX_EVENT_BYTES", default_value = "524288")]
    pub max_event_bytes: NonZeroU32,
    #[command(flatten)]
    pub consume: consumer::config::ConsumeArgs,
    #[command(flatten)]
    pub delivery: consumer::config::DeliveryArgs,
    /// Base URL that event types' `endpointUrl` start with; defaults to the request's Host.
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Most client connections served at once; more wait in the accept backlog.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", default_value = "10000")]
    pub max_connections: NonZeroU32,
    /// How long a client has to send a request's headers (from its first byte, or from the
    /// connection's start), e.g. 10s.
    #[arg(long, env = "SLUICE_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// How long a client has to send a request's body, e.g. 30s.
    #[arg(long, env = "SLUICE_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// How long a keep-alive connection may sit idle (or an answer wait for its reader) before
    /// it is closed, e.g. 60s.
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; more is a 431.
    #[arg(long, env = "SLUICE_MAX_HEADER_BYTES", default_value = "16384", value_parser = clap::value_parser!(u32).range(8192..=1048576))]
    pub max_header_bytes: u32,
    /// How long in-flight requests may take to finish after SIGTERM (e.g. 20s).
    #[arg(long, env = "SLUICE_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Log as JSON lines (for production) rather than for a terminal.
    #[arg(long, env = "SLUICE_LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn with_defaults() -> Config {
        Cli::parse_from(["gateway"]).serve
    }

    /// Whether the consumer runs in this process.
    pub fn runs_consumer(&self) -> bool {
        self.with_consumer
            .unwrap_or(self.queue == QueueKind::Embedded)
    }
}

/// `--queue-linger`: a duration of at most 10 ms, since every acknowledgement waits for it.
fn parse_queue_linger(text: &str) -> Result<Duration, String> {
    let linger = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if linger > Duration::from_millis(10) {
        return Err("at most 10ms: every acknowledgement may wait this long".into());
    }
    Ok(linger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_linger_is_bounded_because_every_acknowledgement_waits_for_it() {
        assert_eq!(parse_queue_linger("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_queue_linger("2ms"), Ok(Duration::from_millis(2)));
        assert!(parse_queue_linger("11ms").is_err());
        assert!(parse_queue_linger("1h").is_err());
        assert!(parse_queue_linger("soon").is_err());
    }
}
