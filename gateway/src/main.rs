//! `gateway`: parses configuration, installs telemetry, binds, and runs.

use anyhow::Context;
use clap::Parser;
use gateway::config::{Command, StoreCommand};
use gateway::Cli;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.serve.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        Some(Command::Store {
            command: StoreCommand::Create { name, storage },
        }) => {
            let created = gateway::create_store(&storage, &name).await?;
            println!("{}", serde_json::to_string(&created)?);
            Ok(())
        }
        None => {
            gateway::metrics::install_recorder()
                .map_err(anyhow::Error::msg)
                .context("installing the metrics recorder")?;
            let config = cli.serve;
            if let Some(first) = gateway::create_first_store(&config.storage).await? {
                tracing::info!(store_id = %first.store_id, "created the first store; its admin key is printed on stdout");
                println!("{}", serde_json::to_string(&first)?);
            }
            let listener = TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            gateway::run(config, listener, shutdown_signal()).await?;
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
