//! `gateway`: parses configuration, installs telemetry, binds, and runs.

use anyhow::Context;
use clap::Parser;
use gateway::config::{Command, StoreCommand};
use gateway::Cli;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    consumer::process::install_logs(cli.serve.log_json);
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
            gateway::run(config, listener, consumer::process::shutdown_signal()).await?;
            Ok(())
        }
    }
}
