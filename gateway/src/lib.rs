//! Sluice's gateway: the HTTP front door for events and the management API.
//!
//! `run` serves on a listener until a shutdown future resolves; `main` only parses
//! configuration, installs telemetry, binds and calls it, and tests call it on port 0.

mod auth;
mod client_addr;
pub mod config;
mod contacts;
mod error;
mod health;
mod http_body;
mod ingest;
mod log_throttle;
pub mod metrics;
mod pagination;
mod rate_limit;
mod registry;
mod routes;
mod sdk;
mod server;
mod state;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use client_addr::TrustedProxies;
pub use config::{Cli, Config, QueueKind, StorageConfig};
pub use registry::stores::CreatedStore;

/// Requests waiting for the embedded queue's writer before new ones get 503.
const EMBEDDED_QUEUE_CAPACITY: usize = 16 * 1024;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::DbError),
    #[error("could not create the first store: {0}")]
    FirstStore(#[source] sqlx::Error),
    #[error("could not open the embedded queue: {0}")]
    Queue(String),
    #[error(transparent)]
    KafkaSettings(#[from] queue::kafka::ConnectionError),
    #[error("could not start the Kafka producer: {0}")]
    Kafka(#[source] rdkafka::error::KafkaError),
    #[error(transparent)]
    Consumer(#[from] consumer::StartError),
}

/// Serves `listener` with `config` until `shutdown` resolves and in-flight requests finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let db = store::connect(&config.storage.database_url()).await?;
    let background = CancellationToken::new();
    let runs_consumer = config.runs_consumer();
    let health = Arc::new(consumer::health::Health::new(config.consume.stuck_after));
    let (queue, feed) = match config.queue {
        QueueKind::Embedded => {
            let (queue, source) = queue::embedded::open(
                &config.storage.data_dir.join("log"),
                &config.storage.data_dir.join("queue"),
                EMBEDDED_QUEUE_CAPACITY,
                config.queue_linger,
            )
            .map_err(|e| StartError::Queue(e.to_string()))?;
            (
                queue::Publisher::Embedded(Arc::new(queue)),
                Feed::Embedded(source),
            )
        }
        QueueKind::Kafka => {
            let connection = config.kafka.connection()?;
            let producer = Arc::new(
                queue::kafka::KafkaProducer::start(&kafka_config(&config, connection.clone()))
                    .await
                    .map_err(StartError::Kafka)?,
            );
            tokio::spawn(producer.clone().watch_broker(background.clone()));
            (queue::Publisher::Kafka(producer), Feed::Kafka(connection))
        }
    };
    // The dispatcher runs wherever the consumer does: the consumer wakes it as it adds
    // deliveries, and management calls (test, retry) reach it through the outbox.
    let consuming = if runs_consumer {
        Some(spawn_consumer(
            &config,
            feed,
            db.clone(),
            health.clone(),
            background.clone(),
        )?)
    } else {
        None
    };
    let mut state = state::AppState::new(config, db.clone(), queue.clone());
    state.consumer = runs_consumer.then_some(health);
    let sweeper = tokio::spawn(housekeeping(state.clone(), background.clone()));

    tracing::info!(address = ?listener.local_addr().ok(), "gateway listening");
    server::serve(listener, state, shutdown).await;

    // Requests are drained; now the consumer finishes the batch in hand and stops, the Kafka
    // producer delivers what it buffers, and dropping the last handle on the embedded queue
    // lets its writer finish and sync what it holds.
    background.cancel();
    if let Some(consuming) = consuming {
        let _ = consuming.await;
    }
    let _ = sweeper.await;
    if let queue::Publisher::Kafka(producer) = &queue {
        producer.flush(std::time::Duration::from_secs(10));
    }
    drop(queue);
    db.close().await;
    tracing::info!("gateway stopped");
    Ok(())
}

fn kafka_config(
    config: &Config,
    connection: queue::kafka::Connection,
) -> queue::kafka::ProducerConfig {
    queue::kafka::ProducerConfig {
        connection,
        topic: config.kafka_topic.clone(),
        layout: (&config.topics).into(),
        linger: config.kafka_linger,
        delivery_timeout: config.kafka_delivery_timeout,
        max_buffered: config.kafka_max_buffered.get(),
    }
}

/// Where an in-process consumer reads accepted events from.
enum Feed {
    Embedded(queue::embedded::EmbeddedSource),
    Kafka(queue::kafka::Connection),
}

/// Runs the consumer in this process, with its webhook dispatcher: on the embedded log, or
/// as a Kafka group member.
fn spawn_consumer(
    config: &Config,
    feed: Feed,
    db: sqlx::AnyPool,
    health: Arc<consumer::health::Health>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let delivery = config.delivery.delivery_config();
    Ok(match feed {
        Feed::Embedded(source) => consumer::spawn(source, db, delivery, health, stop)?,
        Feed::Kafka(connection) => {
            let source = queue::kafka::KafkaSource::new(&queue::kafka::KafkaSourceConfig {
                connection,
                topic: config.kafka_topic.clone(),
                group: config.group.clone(),
            })
            .map_err(StartError::Kafka)?;
            consumer::spawn(source, db, delivery, health, stop)?
        }
    })
}

/// Periodic upkeep that keeps memory and tables bounded: idle rate-limit keys are forgotten,
/// and idempotency keys past their window are removed (by every gateway; a sweep is a short
/// bounded statement, so overlapping ones cost little). API keys used since the last tick get
/// their `lastUsedAt`, so authenticating never writes.
async fn housekeeping(state: state::AppState, stop: CancellationToken) {
    let mut every = tokio::time::interval(rate_limit::FORGET_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                // Uses since the last tick would otherwise be lost with the process.
                if let Err(error) = registry::api_keys::record_uses(&state).await {
                    tracing::warn!(%error, "recording API key uses failed");
                }
                return;
            }
            _ = every.tick() => {
                state.limits.forget_idle();
                state.keys.forget_stale();
                if let Err(error) = ingest::sweep_idempotency_keys(&state.db).await {
                    tracing::warn!(%error, "sweeping expired idempotency keys failed");
                }
                if let Err(error) = registry::api_keys::record_uses(&state).await {
                    tracing::warn!(%error, "recording API key uses failed");
                }
            }
        }
    }
}

/// Creates the first store and its admin key when the store holds none yet (a fresh data
/// directory); `main` prints it, the only time the key's secret exists outside its holder's
/// hands.
pub async fn create_first_store(
    storage: &StorageConfig,
) -> Result<Option<CreatedStore>, StartError> {
    let db = store::connect(&storage.database_url()).await?;
    let created = registry::stores::create_first(&db)
        .await
        .map_err(StartError::FirstStore)?;
    db.close().await;
    Ok(created)
}

/// Creates a store and its admin key (`gateway store create`).
pub async fn create_store(storage: &StorageConfig, name: &str) -> Result<CreatedStore, StartError> {
    let db = store::connect(&storage.database_url()).await?;
    let created = registry::stores::create(&db, name)
        .await
        .map_err(StartError::FirstStore)?;
    db.close().await;
    Ok(created)
}
