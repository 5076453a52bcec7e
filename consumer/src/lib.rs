//! Sluice's consumer: reads event envelopes from the queue and turns them into effects
//! (contacts, activities, workflows, outbound webhooks), reading from a `queue::Source` and
//! writing through `store`. [`effects::apply`] stores one batch's effects; the dispatcher in
//! [`webhooks`] sends the deliveries they add to the outbox.
//!
//! [`run`] is the whole consumer process; `main` only parses configuration, installs
//! telemetry and binds. [`spawn`] is the part the gateway embeds on one machine.

pub mod config;
pub mod consume;
mod contacts;
pub mod effects;
pub mod error;
pub mod health;
mod metrics;
mod ops;
pub mod process;
pub mod segments;
pub mod webhooks;
mod workflows;

use std::future::Future;
use std::sync::Arc;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use queue::Source;
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::health::Health;
use queue::kafka::{self, KafkaSource, KafkaSourceConfig};

/// Why the consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("connecting to the store: {0}")]
    Store(#[from] store::DbError),
    #[error(transparent)]
    KafkaSettings(#[from] kafka::ConnectionError),
    #[error("creating the topics on the Kafka brokers at {brokers} (--kafka-brokers): {source}")]
    Topics {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("joining the consumer group: {0}")]
    Group(#[source] rdkafka::error::KafkaError),
    #[error("starting the webhook client: {0}")]
    Webhooks(String),
}

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error(transparent)]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    #[error("starting the metrics upkeep thread: {0}")]
    Upkeep(#[source] std::io::Error),
}

/// Latency buckets in seconds, for every `_seconds` histogram of either binary: sub-millisecond
/// up to the 15 s webhook timeout (and end-to-end times of a consumer catching up).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// How often recorded histogram samples are folded into their buckets.
const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Installs the process-wide Prometheus recorder both binaries use: `_seconds` metrics as
/// histograms with [`LATENCY_BUCKETS`], so dashboards can take quantiles across instances.
///
/// The recorder keeps every histogram sample until something folds them into buckets, which a
/// scrape does; with nobody scraping, that was tens of bytes per request, for ever (a gateway
/// at 40,000 events/s grew by 1.5 MiB a second). A thread folds them every second, so memory
/// does not depend on whether or how often Prometheus comes.
pub fn install_recorder() -> Result<PrometheusHandle, RecorderError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(METRICS_UPKEEP_EVERY);
            upkeep.run_upkeep();
        })
        .map_err(RecorderError::Upkeep)?;
    describe_metrics();
    Ok(handle)
}

/// Gives every consumer metric its HELP text and unit, once the recorder is installed.
fn describe_metrics() {
    metrics::describe();
}

/// Consumes the events topic into the store until `shutdown` resolves: joins the group, runs
/// workflows and delivers webhooks, serves `/metrics`, `/healthz` and `/readyz` on
/// `ops_listener`; then finishes the batch in hand, commits its offsets and returns.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    ops_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let connection = config.kafka.connection()?;
    let db = store::connect(&config.database_url).await?;
    tracing::info!(?connection, topic = %config.kafka_topic, "checking the topics");
    // Joined first: its dead-letter producer logs why the brokers cannot be reached (refused,
    // TLS handshake, SASL credentials) while the topic check waits, and a subscription to a
    // topic created a moment later is picked up at the next metadata refresh.
    let source = KafkaSource::new(&KafkaSourceConfig {
        connection: connection.clone(),
        topic: config.kafka_topic.clone(),
        group: config.group.clone(),
    })
    .map_err(StartError::Group)?;
    kafka::ensure_topics(&connection, &config.kafka_topic, (&config.topics).into())
        .await
        .map_err(|source| StartError::Topics {
            brokers: connection.brokers().to_owned(),
            source,
        })?;
    let health = Arc::new(Health::new(config.consume.stuck_after));
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.cancel();
    });
    let ops = ops::Ops {
        metrics,
        db: db.clone(),
        health: health.clone(),
        broker: source.broker_probe(),
    };
    let consuming = spawn(
        source,
        db.clone(),
        config.delivery.delivery_config(),
        health,
        stop.clone(),
    )?;
    let serving = tokio::spawn(ops::serve(ops_listener, ops, stop));
    tracing::info!(group = %config.group, topic = %config.kafka_topic, "consuming");
    let _ = consuming.await;
    let _ = serving.await;
    db.close().await;
    tracing::info!("consumer stopped");
    Ok(())
}

/// The stores of `events`, each once, in order: what the batch's per-store reads ask for.
fn stores_of<'a>(events: &[&'a schemas::EventEnvelope]) -> Vec<&'a str> {
    let mut stores: Vec<&str> = events.iter().map(|e| e.store_id.as_str()).collect();
    stores.sort_unstable();
    stores.dedup();
    stores
}

/// Starts the consume loop on `source`, and beside it the webhook dispatcher and the segments
/// sweeper. All stop when
/// `stop` is cancelled: the loop finishes the batch in hand and commits its position, then the
/// returned task ends. [`run`] uses it on Kafka; the gateway, on its embedded log.
pub fn spawn<S: Source + 'static>(
    source: S,
    db: AnyPool,
    delivery: webhooks::DeliveryConfig,
    health: Arc<Health>,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, StartError> {
    let dispatcher = webhooks::Dispatcher::new(db.clone(), delivery)
        .map_err(|e| StartError::Webhooks(e.to_string()))?;
    let wake = dispatcher.wake();
    let delivering = tokio::spawn(dispatcher.run(stop.clone()));
    let sweeping = tokio::spawn(segments::sweep(db.clone(), wake.clone(), stop.clone()));
    Ok(tokio::spawn(async move {
        let source = consume::run(source, db, wake, health, stop).await;
        source.commit_now();
        let _ = delivering.await;
        let _ = sweeping.await;
    }))
}
