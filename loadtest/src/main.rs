//! `loadtest`: a load generator built for event gateways.
//!
//! - `loadtest run`: open-loop (`--rate`) or closed-loop load with HdrHistogram percentiles,
//!   scenarios against the real API, `--setup` to prepare a fresh gateway and `--verify` to
//!   prove downstream that nothing acknowledged was lost or doubled.
//! - `loadtest bench`: the ceiling, the gateway in embedded mode and (given brokers) in Kafka
//!   mode, side by side under the same load; and this tool against `wrk` on the ceiling.
//! - `loadtest ceiling`: the bare hyper server benchmarks compare the gateway with.
//! - `loadtest produce`: the raw Kafka producer rate.

mod args;
mod batch;
mod bench;
mod ceiling;
mod client;
mod cpu;
mod generate;
mod h1;
mod keystore;
mod produce;
mod report;
mod scenario;
mod server;
mod setup;
mod sources;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod verdict;
mod verify;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::args::{HttpVersion, RunArgs};
use crate::report::Report;
use crate::scenario::{Scenario, Targets};
use crate::verdict::Verdict;

// Every request allocates its body and headers; glibc malloc showed in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A load generator built for event gateways.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send load to a gateway and report what happened.
    Run(Box<RunArgs>),
    /// Compare the ceiling, the gateway (embedded, and Kafka when brokers are given) and this
    /// tool against wrk, in one run on this machine.
    Bench(bench::BenchArgs),
    /// Serve a bare hyper server that reads each body and answers 201: the throughput ceiling.
    Ceiling {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Send messages straight to Kafka with the gateway's producer settings and report the
    /// rate: the baseline for Kafka-mode gateway figures.
    Produce(produce::ProduceArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let passed = |()| Verdict::Passed;
    let result = match cli.command {
        Command::Run(args) => runtime().and_then(|rt| rt.block_on(run(*args))),
        Command::Bench(args) => {
            runtime()
                .and_then(|rt| rt.block_on(bench::run(args)))
                .map(|clean| {
                    if clean {
                        Verdict::Passed
                    } else {
                        Verdict::Lost
                    }
                })
        }
        Command::Ceiling { listen } => ceiling::run(listen).map(passed),
        Command::Produce(args) => produce::run(args).map(passed),
    };
    match result {
        Ok(verdict) => verdict.exit_code(),
        Err(error) => {
            eprintln!("loadtest: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// `loadtest run`: how it went, by `--verify` and `--max-unexpected`.
async fn run(args: RunArgs) -> anyhow::Result<Verdict> {
    let plan = args.plan().map_err(anyhow::Error::msg)?;
    let targets = if args.setup {
        let admin = args.admin_key.as_deref().unwrap_or_default();
        let keys = args.state_path().map(keystore::KeyFile::new);
        if keys.is_none() {
            eprintln!(
                "loadtest: no --state, $XDG_STATE_HOME or $HOME: --setup mints a new API key"
            );
        }
        let secret = args.webhook_secret.as_deref();
        setup::setup(&plan.target, admin, keys.as_ref(), secret)
            .await
            .context("--setup")?
    } else {
        Targets {
            store: args.store.clone().unwrap_or_default(),
            key: args.key.clone(),
            webhook_secret: args.webhook_secret.clone(),
        }
    };
    let key = targets.key.clone();
    let scenario = Scenario::new(plan.mix.clone(), targets);
    let outcome = generate::run(plan.clone(), scenario, args.verify, args.quiet).await;
    let mut report = report_of(&plan, &outcome);
    if args.verify {
        let api = setup::Management::new(&plan.target, key.as_deref().unwrap_or_default())?;
        report.verify =
            Some(verify::verify(api, &outcome.tally.accepted, args.verify_timeout).await?);
    }
    let verdict = Verdict::of(&report, args.max_unexpected);
    print!("{}", report.summary());
    if verdict == Verdict::Unexpected {
        println!(
            "  FAILED: {:.2}% of requests failed or got unexpected answers (--max-unexpected {}%){}",
            report.unexpected_percent,
            args.max_unexpected,
            if report.unexpected_percent >= 100.0 {
                "; none succeeded"
            } else {
                ""
            }
        );
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.latency_csv {
        std::fs::write(path, report::csv(&outcome.seconds))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(verdict)
}

pub(crate) fn report_of(plan: &args::Plan, outcome: &generate::Outcome) -> Report {
    let tally = &outcome.tally;
    let elapsed = outcome.elapsed.as_secs_f64().max(f64::EPSILON);
    // Timeouts are in the latency histogram too (they waited); answers are what came back.
    let answers: u64 = tally.statuses.values().sum();
    let failures: u64 = tally.failures.values().sum();
    Report {
        scenario: plan.mix.kind.name(),
        mode: if plan.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        target_rate: plan.rate,
        connections: plan.connections,
        http: match plan.http {
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
        },
        elapsed_s: elapsed,
        requests: answers + failures,
        answers,
        answers_per_s: answers as f64 / elapsed,
        events_accepted: tally.events_accepted,
        events_accepted_per_s: tally.events_accepted as f64 / elapsed,
        events_refused: tally.events_refused,
        latency: report::Latency::of(&tally.latency),
        statuses: tally.statuses.clone(),
        failures: tally.failures.clone(),
        failures_expected: tally.failures_expected,
        unexpected: tally.unexpected,
        unexpected_samples: tally.unexpected_samples.clone(),
        unexpected_percent: verdict::unexpected_percent(
            answers + failures,
            failures - tally.failures_expected,
            tally.unexpected,
        ),
        verify: None,
    }
}
