//! `loadtest`: the load generator built for event gateways. Its scenarios, open-loop rate
//! control and `--verify` are the subject of their own issue; so far this binary reserves the
//! name and the flags' shape, and serves `ceiling`, the bare server that ingest benchmarks
//! measure the gateway against.

mod ceiling;
mod produce;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// A load generator built for event gateways (the generator itself is not yet implemented).
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Base URL of the gateway under test.
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a bare hyper server that reads each body and answers 201: the throughput ceiling
    /// that `scripts/bench-ingest` compares the gateway with.
    Ceiling {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Send messages straight to Kafka with the gateway's producer settings and report the
    /// rate: the baseline for Kafka-mode gateway figures.
    Produce(produce::ProduceArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Ceiling { listen }) => ceiling::run(listen),
        Some(Command::Produce(args)) => produce::run(args),
        None => anyhow::bail!(
            "loadtest is not implemented yet (target {:?}); see the open loadtest issue",
            args.url
        ),
    }
}
