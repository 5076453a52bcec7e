//! `consumer`: parses configuration, installs telemetry, joins the group, consumes until
//! SIGTERM, then commits its offsets and exits.

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;

use consumer::config::Config;
use consumer::health::Health;
use consumer::kafka::{KafkaSource, KafkaSourceConfig};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
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
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    // Bound before anything else starts, so a taken port stops the process at once with the
    // address in the message.
    let ops_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding --metrics-listen {}", config.metrics_listen))?;
    let db = consumer::db::connect(&config.database_url)
        .await
        .context("connecting to the store")?;
    tracing::info!(brokers = %config.kafka_brokers, topic = %config.kafka_topic, "checking the topics");
    consumer::kafka::ensure_topics(
        &config.kafka_brokers,
        &config.kafka_topic,
        (&config.topics).into(),
    )
    .await
    .with_context(|| {
        format!(
            "creating the topics on the Kafka brokers at {} (--kafka-brokers)",
            config.kafka_brokers
        )
    })?;
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
    let health = Arc::new(Health::new(config.consume.stuck_after));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    let ops = consumer::ops::Ops {
        metrics,
        db: db.clone(),
        health: health.clone(),
        broker: source.broker_probe(),
    };
    let serving = tokio::spawn(consumer::ops::serve(ops_listener, ops, shutdown.clone()));
    tracing::info!(group = %config.group, topic = %config.kafka_topic, "consuming");
    let delivering = tokio::spawn(dispatcher.run(shutdown.clone()));
    let source = consumer::consume::run(source, db.clone(), wake, health, shutdown).await;
    source.commit_now();
    let _ = delivering.await;
    let _ = serving.await;
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
