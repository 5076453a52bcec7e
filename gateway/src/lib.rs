//! Sluice's gateway: the HTTP front door for events and the management API.
//!
//! `run` serves on a listener until a shutdown future resolves; `main` only parses
//! configuration, installs telemetry, binds and calls it, and tests call it on port 0.

mod auth;
mod body;
pub mod config;
mod error;
mod health;
pub mod metrics;
mod registry;
mod routes;
mod server;
mod state;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::{Cli, Config, StorageConfig};
pub use registry::stores::CreatedStore;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] consumer::db::DbError),
    #[error("could not create the first store: {0}")]
    FirstStore(#[source] sqlx::Error),
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
    let state = state::AppState::new(config, db);
    tracing::info!(address = ?listener.local_addr().ok(), "gateway listening");
    server::serve(listener, state, shutdown).await;
    Ok(())
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
