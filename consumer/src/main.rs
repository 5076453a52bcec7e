//! `consumer`: parses configuration, installs telemetry, joins the group, consumes until
//! SIGTERM, then commits its offsets and exits.

use anyhow::Context;
use clap::Parser;
use consumer::config::Config;
use consumer::kafka::{KafkaSource, KafkaSourceConfig};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    PrometheusBuilder::new()
        .with_http_listener(config.metrics_listen)
        .install()
        .context("serving metrics")?;
    let db = consumer::db::connect(&config.database_url)
        .await
        .context("connecting to the store")?;
    consumer::kafka::ensure_topics(&config.kafka_brokers, &config.kafka_topic, 1)
        .await
        .context("checking the topics")?;
    let source = KafkaSource::new(&KafkaSourceConfig {
        brokers: config.kafka_brokers.clone(),
        topic: config.kafka_topic.clone(),
        group: config.group.clone(),
    })
    .context("joining the consumer group")?;
    let dispatcher =
        consumer::webhooks::Dispatcher::new(db.clone(), config.delivery.delivery_config())
            .context("starting the webhook client")?;
    let wake = dispatcher.wake();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    tracing::info!(group = %config.group, topic = %config.kafka_topic, "consuming");
    let delivering = tokio::spawn(dispatcher.run(shutdown.clone()));
    let source = consumer::consume::run(source, db.clone(), wake, shutdown).await;
    source.commit_now();
    let _ = delivering.await;
    db.close().await;
    tracing::info!("consumer stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
