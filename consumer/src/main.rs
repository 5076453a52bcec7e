//! `consumer`: parses configuration, installs telemetry, binds its operations port and runs
//! until SIGTERM.

use anyhow::Context;
use clap::Parser;
use consumer::config::Config;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    consumer::process::install_logs(config.log_json);
    let metrics = consumer::install_recorder().context("installing the metrics recorder")?;
    // Bound before anything else starts, so a taken port stops the process at once with the
    // address in the message.
    let ops_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding --metrics-listen {}", config.metrics_listen))?;
    consumer::run(
        config,
        metrics,
        ops_listener,
        consumer::process::shutdown_signal(),
    )
    .await?;
    Ok(())
}
