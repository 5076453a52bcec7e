//! `loadtest produce`: the raw Kafka producer rate with the gateway's own settings (idempotent,
//! `acks=all`), the baseline that Kafka-mode gateway figures are compared with.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// What to send.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProduceArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Topic to write to (it must exist).
    #[arg(long)]
    topic: String,
    /// Messages to send.
    #[arg(long, default_value = "200000")]
    messages: u64,
    /// Bytes per message.
    #[arg(long, default_value = "1024")]
    size: usize,
    /// Most messages awaiting their delivery report at once.
    #[arg(long, default_value = "10000")]
    in_flight: usize,
}

pub(crate) fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(produce(args))
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        .create()
        .context("creating the producer")?;
    let payload = vec![b'x'; args.size];
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::with_capacity(args.in_flight);
    let mut delivered = 0u64;
    for n in 0..args.messages {
        let key = (n % 1024).to_string();
        let record = FutureRecord::to(&args.topic).key(&key).payload(&payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| anyhow::anyhow!("send: {error}"))?;
        pending.push_back(delivery);
        if pending.len() >= args.in_flight {
            if let Some(oldest) = pending.pop_front() {
                oldest
                    .await?
                    .map_err(|(error, _)| anyhow::anyhow!("delivery: {error}"))?;
                delivered += 1;
            }
        }
    }
    for delivery in pending {
        delivery
            .await?
            .map_err(|(error, _)| anyhow::anyhow!("delivery: {error}"))?;
        delivered += 1;
    }
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    println!(
        "{{\"messages\": {delivered}, \"bytes\": {}, \"seconds\": {:.3}, \"per_second\": {:.0}}}",
        args.size,
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
