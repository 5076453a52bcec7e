//! Sluice's gateway: the HTTP front door for events and the management API.
//!
//! `run` serves on a listener until a shutdown future resolves; `main` only parses
//! configuration, installs telemetry, binds and calls it, and tests call it on port 0.

mod auth;
mod body;
pub mod config;
mod contacts;
mod error;
mod health;
mod ingest;
pub mod metrics;
mod queue;
mod rate_limit;
mod registry;
mod routes;
mod server;
mod state;

use std::future::Future;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Cli, Config, QueueKind, StorageConfig};
pub use registry::stores::CreatedStore;

/// Requests waiting for the embedded queue's writer before new ones get 503.
const EMBEDDED_QUEUE_CAPACITY: usize = 16 * 1024;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] consumer::db::DbError),
    #[error("could not create the first store: {0}")]
    FirstStore(#[source] sqlx::Error),
    #[error("could not open the embedded queue: {0}")]
    Queue(String),
    #[error("--queue kafka is not available in this build yet; use --queue embedded")]
    KafkaUnavailable,
}

/// Serves `listener` with `config` until `shutdown` resolves and in-flight requests finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let db = consumer::db::connect(&config.storage.database_url()).await?;
    if let Some(first) = registry::stores::create_first(&db)
        .await
        .map_err(StartError::FirstStore)?
    {
        // Shown once: the only time the admin key's secret exists outside its holder's hands.
        tracing::info!(store_id = %first.store_id, "created the first store; its admin key is printed on stdout");
        println!("{}", serde_json::to_string(&first).unwrap_or_default());
    }
    if config.queue == QueueKind::Kafka {
        return Err(StartError::KafkaUnavailable);
    }
    let (embedded, source) = queue::embedded::open(
        &config.storage.data_dir.join("queue"),
        EMBEDDED_QUEUE_CAPACITY,
    )
    .map_err(|e| StartError::Queue(e.to_string()))?;
    let runs_consumer = config.runs_consumer();
    let state = state::AppState::new(
        config,
        db.clone(),
        queue::Queue::Embedded(std::sync::Arc::new(embedded)),
    );

    let background = CancellationToken::new();
    let consumer = runs_consumer.then(|| {
        tokio::spawn(consumer::consume::run(
            source,
            db.clone(),
            background.clone(),
        ))
    });
    let sweeper = tokio::spawn(forget_idle_limits(state.clone(), background.clone()));

    tracing::info!(address = ?listener.local_addr().ok(), "gateway listening");
    server::serve(listener, state, shutdown).await;

    // Requests are drained; now the consumer finishes the batch in hand and stops. Dropping
    // the last state closes the queue, whose writer finishes and syncs what it holds.
    background.cancel();
    if let Some(consumer) = consumer {
        let _ = consumer.await;
    }
    let _ = sweeper.await;
    db.close().await;
    tracing::info!("gateway stopped");
    Ok(())
}

async fn forget_idle_limits(state: state::AppState, stop: CancellationToken) {
    let mut every = tokio::time::interval(rate_limit::FORGET_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => state.limits.forget_idle(),
        }
    }
}

/// Creates a store and its admin key (`gateway store create`).
pub async fn create_store(storage: &StorageConfig, name: &str) -> Result<CreatedStore, StartError> {
    let db = consumer::db::connect(&storage.database_url()).await?;
    let created = registry::stores::create(&db, name)
        .await
        .map_err(StartError::FirstStore)?;
    db.close().await;
    Ok(created)
}
