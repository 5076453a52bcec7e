//! `loadtest bench`: one command that measures, in one run on this machine and under the same
//! load, a bare hyper server that reads the body and answers 201 (the ceiling), the gateway in
//! embedded mode, and the gateway in Kafka mode when brokers are given; then this tool against
//! `wrk` on the ceiling, to show the generator is not the bottleneck. Servers run as child
//! processes so their peak memory can be read; the generator runs in this process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::args::{HttpVersion, Plan, Stop};
use crate::report::Report;
use crate::scenario::{Mix, Scenario, ScenarioKind, Targets};
pub(crate) use crate::server::{free_port, Server};

/// What the benchmark runs.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// Connections, closed loop, for every target.
    #[arg(long, default_value = "64")]
    pub(crate) connections: usize,
    /// Measured time per target (after a one-second warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Body size of each event.
    #[arg(long, default_value = "1024")]
    pub(crate) payload_bytes: usize,
    /// The gateway binary; by default the one beside this binary.
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Kafka brokers: also measure the gateway in Kafka mode.
    #[arg(long, env = "SLUICE_BENCH_KAFKA_BROKERS")]
    pub(crate) kafka_brokers: Option<String>,
    /// Skip the comparison with wrk.
    #[arg(long)]
    skip_wrk: bool,
    /// Where the JSON results go (CPU mode: the same name with `-cpu`).
    #[arg(long, default_value = "target/bench/loadtest-bench.json")]
    pub(crate) report: PathBuf,
    /// Measure CPU seconds per event of every process at a fixed `--rate` instead of
    /// throughput at saturation.
    #[arg(long)]
    cpu: bool,
    /// Events per second in CPU mode (open loop).
    #[arg(long, requires = "cpu", value_parser = crate::args::parse_rate)]
    pub(crate) rate: Option<f64>,
    /// The consumer binary for the Kafka row of CPU mode; by default the one beside the gateway.
    #[arg(long)]
    pub(crate) consumer_bin: Option<PathBuf>,
    /// The store for the Kafka row of CPU mode (e.g. a PostgreSQL URL); SQLite by default.
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// Also count this process and its descendants in the Kafka row, as NAME=PID (the broker,
    /// the PostgreSQL postmaster); repeatable.
    #[arg(long, value_parser = crate::cpu::parse_watch)]
    pub(crate) watch_pid: Vec<(String, u32)>,
}

/// One measured target.
#[derive(Debug, Serialize)]
struct Row {
    target: String,
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mib: Option<f64>,
    ratio_to_ceiling: f64,
    unexpected: u64,
    failures: u64,
    /// From the end of the load until the consumer had stored every accepted event.
    drain_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Results {
    connections: usize,
    duration_s: f64,
    payload_bytes: usize,
    rows: Vec<Row>,
    generator: Option<GeneratorCheck>,
    kafka: Option<KafkaCheck>,
}

/// The gateway in Kafka mode against the raw producer on the same broker and topic.
#[derive(Debug, Serialize)]
struct KafkaCheck {
    gateway_per_s: f64,
    raw_producer_per_s: f64,
    ratio: f64,
}

/// This tool against wrk on the same ceiling.
#[derive(Debug, Serialize)]
struct GeneratorCheck {
    loadtest_per_s: f64,
    wrk_per_s: f64,
    ratio: f64,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<bool> {
    let me = std::env::current_exe().context("finding this binary")?;
    let gateway_bin = match &args.gateway_bin {
        Some(path) => path.clone(),
        None => me.with_file_name("gateway"),
    };
    if !gateway_bin.exists() {
        bail!(
            "{} is missing: build it (cargo build --release -p gateway) or pass --gateway-bin",
            gateway_bin.display()
        );
    }
    if args.cpu {
        return crate::cpu::run(&args, &gateway_bin, &me).await;
    }
    let mut rows = Vec::new();

    eprintln!("==> ceiling");
    let port = free_port()?;
    let ceiling = Server::start(
        Command::new(&me).args(["ceiling", "--listen", &format!("127.0.0.1:{port}")]),
        port,
        false,
    )?;
    let ceiling_report = load_closed(
        &args,
        port,
        Targets {
            store: "bench".into(),
            key: None,
            webhook_secret: None,
        },
    )
    .await?;
    let ceiling_rate = ceiling_report.events_accepted_per_s;
    rows.push(row(
        "ceiling (bare hyper)",
        &ceiling_report,
        ceiling.peak_rss_mib(),
        ceiling_rate,
    ));
    let generator = if args.skip_wrk {
        None
    } else {
        eprintln!("==> wrk against the same ceiling");
        match wrk(&args, port) {
            Ok(wrk_rate) => Some(GeneratorCheck {
                loadtest_per_s: ceiling_rate,
                wrk_per_s: wrk_rate,
                ratio: ceiling_rate / wrk_rate,
            }),
            Err(error) => {
                eprintln!("    wrk skipped: {error:#}");
                None
            }
        }
    };
    drop(ceiling);

    for with_consumer in [true, false] {
        let name = if with_consumer {
            "gateway, embedded"
        } else {
            "gateway, embedded, ingest only"
        };
        eprintln!("==> {name}");
        let data = tempfile::tempdir()?;
        let port = free_port()?;
        let mut command = gateway_command(&gateway_bin, port, data.path());
        command.args(["--with-consumer", &with_consumer.to_string()]);
        let gateway = Server::start(&mut command, port, true)?;
        // Each benchmarked gateway is fresh: a stored key would never be reused.
        let targets = crate::setup::setup(&url(port), &gateway.admin_key()?, None, None).await?;
        let (warm, report, ()) = load(&args, port, targets, None, || ()).await?;
        let mut row = row(name, &report, gateway.peak_rss_mib(), ceiling_rate);
        if with_consumer {
            // Sustained means the consumer kept up: its backlog is stored soon after the load.
            let accepted = warm.events_accepted + report.events_accepted;
            let metrics = format!("http://127.0.0.1:{port}/metrics");
            row.drain_s = Some(crate::cpu::drained(&metrics, accepted).await?.as_secs_f64());
        }
        rows.push(row);
        drop(gateway);
    }

    let mut kafka = None;
    if let Some(brokers) = &args.kafka_brokers {
        eprintln!("==> gateway, Kafka");
        let data = tempfile::tempdir()?;
        let port = free_port()?;
        let topic = format!("bench-{}", std::process::id());
        let mut command = gateway_command(&gateway_bin, port, data.path());
        command.args([
            "--queue",
            "kafka",
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            &topic,
        ]);
        let gateway = Server::start(&mut command, port, true)?;
        let targets = crate::setup::setup(&url(port), &gateway.admin_key()?, None, None).await?;
        let report = load_closed(&args, port, targets).await?;
        rows.push(row(
            "gateway, Kafka",
            &report,
            gateway.peak_rss_mib(),
            ceiling_rate,
        ));
        drop(gateway);
        eprintln!("==> raw rdkafka producer, same broker and topic");
        let raw = raw_producer(&me, brokers, &topic, args.payload_bytes)?;
        kafka = Some(KafkaCheck {
            gateway_per_s: report.events_accepted_per_s,
            raw_producer_per_s: raw,
            ratio: report.events_accepted_per_s / raw,
        });
    }

    let results = Results {
        connections: args.connections,
        duration_s: args.duration.as_secs_f64(),
        payload_bytes: args.payload_bytes,
        rows,
        generator,
        kafka,
    };
    print_table(&results);
    if let Some(parent) = args.report.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.report, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("writing {}", args.report.display()))?;
    println!("results: {}", args.report.display());
    Ok(true)
}

/// A benchmarked gateway on `port` with its data in `data_dir`, its webhook rate limit out of
/// the way.
fn gateway_command(gateway_bin: &Path, port: u16, data_dir: &Path) -> Command {
    let mut command = Command::new(gateway_bin);
    command.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--rate-limit-webhook",
        "100000000",
    ]);
    command.arg("--data-dir").arg(data_dir);
    command
}

pub(crate) fn url(port: u16) -> url::Url {
    #[allow(clippy::expect_used)]
    url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("a loopback URL parses")
}

/// The webhook scenario, closed loop: a one-second warm-up, then the measured run.
async fn load_closed(args: &BenchArgs, port: u16, targets: Targets) -> anyhow::Result<Report> {
    let (_, measured, ()) = load(args, port, targets, None, || ()).await?;
    Ok(measured)
}

/// The webhook scenario: a one-second warm-up, then the measured run, closed loop or at
/// `rate`. `before` runs between the two (to take a reading); returns both reports and it.
pub(crate) async fn load<T>(
    args: &BenchArgs,
    port: u16,
    targets: Targets,
    rate: Option<f64>,
    before: impl FnOnce() -> T,
) -> anyhow::Result<(Report, Report, T)> {
    let plan = |duration| Plan {
        target: url(port),
        rate,
        connections: args.connections,
        stop: Stop {
            duration: Some(duration),
            requests: None,
        },
        http: HttpVersion::Http1,
        timeout: Duration::from_secs(30),
        mix: Mix {
            kind: ScenarioKind::Webhook,
            contacts: 10_000,
            payload_bytes: args.payload_bytes,
            batch_size: 1,
            invalid_share: 0.0,
            oversize_share: 0.0,
            over_limit_share: 0.0,
        },
        spread_sources: false,
    };
    let warm = plan(Duration::from_secs(1));
    let warmed = crate::generate::run(
        warm.clone(),
        Scenario::new(warm.mix.clone(), targets.clone()),
        false,
        true,
    )
    .await;
    let warm_report = crate::report_of(&warm, &warmed);
    let reading = before();
    let measured = plan(args.duration);
    let outcome = crate::generate::run(
        measured.clone(),
        Scenario::new(measured.mix.clone(), targets),
        false,
        true,
    )
    .await;
    let report = crate::report_of(&measured, &outcome);
    eprint!("{}", report.summary());
    Ok((warm_report, report, reading))
}

fn row(name: &str, report: &Report, rss: Option<f64>, ceiling: f64) -> Row {
    Row {
        target: name.to_owned(),
        events_per_s: report.events_accepted_per_s,
        p50_ms: report.latency.p50_ms,
        p99_ms: report.latency.p99_ms,
        peak_rss_mib: rss,
        ratio_to_ceiling: report.events_accepted_per_s / ceiling.max(f64::EPSILON),
        unexpected: report.unexpected,
        failures: report.failures.values().sum(),
        drain_s: None,
    }
}

fn print_table(results: &Results) {
    println!(
        "\n{} connections, {:.0} s each, ~{} B events, closed loop, HTTP/1.1",
        results.connections, results.duration_s, results.payload_bytes
    );
    println!("| target | events/s | p50 ms | p99 ms | peak RSS MiB | ratio to ceiling | drain s |");
    println!("|---|---|---|---|---|---|---|");
    for r in &results.rows {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {} |",
            r.target,
            r.events_per_s,
            r.p50_ms,
            r.p99_ms,
            r.peak_rss_mib
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "?".into()),
            r.ratio_to_ceiling,
            r.drain_s
                .map(|d| format!("{d:.2}"))
                .unwrap_or_else(|| "–".into())
        );
    }
    if let Some(k) = &results.kafka {
        println!(
            "Kafka mode against the raw producer (acks=all, same broker and topic): gateway {:.0}/s, raw {:.0}/s, ratio {:.3}",
            k.gateway_per_s, k.raw_producer_per_s, k.ratio
        );
    }
    if let Some(g) = &results.generator {
        println!(
            "generator check on the ceiling: loadtest {:.0}/s, wrk {:.0}/s, ratio {:.2}",
            g.loadtest_per_s, g.wrk_per_s, g.ratio
        );
    }
}

/// `loadtest produce` with the gateway's producer settings: its messages per second.
fn raw_producer(me: &Path, brokers: &str, topic: &str, size: usize) -> anyhow::Result<f64> {
    let output = Command::new(me)
        .args([
            "produce",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--messages",
            "200000",
        ])
        .args(["--size", &size.to_string()])
        .output()
        .context("running loadtest produce")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let result: serde_json::Value = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "loadtest produce printed {text:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    result["per_second"].as_f64().context("per_second")
}

/// wrk with the same body and connections against the ceiling; its requests per second.
fn wrk(args: &BenchArgs, port: u16) -> anyhow::Result<f64> {
    let script = tempfile::NamedTempFile::new()?;
    let body = format!(
        r#"{{"customer":{{"email":"c1@loadtest.example"}},"order":{{"id":"o-1","total":12.5}},"pad":"{}"}}"#,
        "x".repeat(args.payload_bytes.saturating_sub(120))
    );
    std::fs::write(
        script.path(),
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.duration.as_secs().max(1)))
        .arg("-s")
        .arg(script.path())
        .arg(format!(
            "http://127.0.0.1:{port}/v1/bench/custom-events/alias/lt-webhook"
        ))
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .with_context(|| format!("wrk printed no rate: {text}"))
}
