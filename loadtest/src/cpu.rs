//! `loadtest bench --cpu`: what each event costs in CPU time, process by process, at a fixed
//! rate. Throughput on two shared cores moves ±25% from run to run; the CPU seconds a process
//! spends per event answered 201 at a rate every target sustains move far less, so designs are
//! compared this way.
//!
//! Every target gets the same open-loop load: the bare hyper ceiling, the gateway ingesting
//! only (embedded log, no consumer), the whole embedded system (its consumer in-process), and,
//! given brokers, the gateway in Kafka mode beside a separate consumer process. CPU is read
//! from `/proc/<pid>/stat` (the process and every descendant, so a PostgreSQL postmaster
//! counts its backends) before the measured run and again once the consumer has stored every
//! event, which is also how long the backlog took to drain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::bench::{free_port, load, url, BenchArgs, Server};
use crate::scenario::Targets;

/// Longest wait for a consumer to store what was accepted once the load has stopped.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// One target's cost.
#[derive(Debug, Serialize)]
pub(crate) struct CpuRow {
    target: String,
    events: u64,
    events_per_s: f64,
    /// CPU microseconds per event, by process (`gateway`, `consumer`, watched ones).
    us_per_event: Vec<(String, f64)>,
    /// All processes together.
    total_us_per_event: f64,
    /// `total_us_per_event` over the ceiling's CPU per request.
    ratio_to_ceiling: f64,
    /// From the end of the load until the consumer had stored every accepted event.
    drain_s: Option<f64>,
    unexpected: u64,
}

#[derive(Debug, Serialize)]
struct CpuResults {
    rate: f64,
    duration_s: f64,
    connections: usize,
    payload_bytes: usize,
    rows: Vec<CpuRow>,
}

/// A process whose CPU time is counted, with its descendants.
#[derive(Debug, Clone)]
struct Watched {
    name: String,
    pid: u32,
}

/// A `NAME=PID` flag value: a process outside this tool's control to count as well (the
/// broker, the PostgreSQL postmaster).
pub(crate) fn parse_watch(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} must be NAME=PID, e.g. postgres=1234"))?;
    let pid: u32 = pid
        .parse()
        .map_err(|_| format!("{text:?}: {pid:?} is not a process id"))?;
    if name.is_empty() {
        return Err(format!("{text:?} needs a name before ="));
    }
    Ok((name.to_owned(), pid))
}

pub(crate) async fn run(args: &BenchArgs, gateway_bin: &Path, me: &Path) -> anyhow::Result<bool> {
    let rate = args.rate.unwrap_or(4000.0);
    let ticks = clock_ticks();
    let extra: Vec<Watched> = args
        .watch_pid
        .iter()
        .map(|(name, pid)| Watched {
            name: name.clone(),
            pid: *pid,
        })
        .collect();
    let mut rows = Vec::new();

    eprintln!("==> ceiling at {rate}/s");
    let port = free_port()?;
    let ceiling = Server::start(
        Command::new(me).args(["ceiling", "--listen", &format!("127.0.0.1:{port}")]),
        port,
        false,
    )?;
    let targets = Targets {
        store: "bench".into(),
        key: None,
        webhook_secret: None,
    };
    let watched = [Watched {
        name: "ceiling".into(),
        pid: ceiling.pid(),
    }];
    let row = measure(args, rate, port, targets, &watched, ticks, None).await?;
    let ceiling_us = row.total_us_per_event;
    rows.push(named(row, "ceiling (bare hyper)", ceiling_us));
    drop(ceiling);

    for (name, with_consumer) in [
        ("gateway ingest only (embedded log)", false),
        ("gateway + consumer (embedded, SQLite)", true),
    ] {
        eprintln!("==> {name}");
        let data = tempfile::tempdir()?;
        let port = free_port()?;
        let mut command = Command::new(gateway_bin);
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--rate-limit-webhook", "100000000"])
            .args(["--with-consumer", &with_consumer.to_string()])
            .arg("--data-dir")
            .arg(data.path());
        let gateway = Server::start(&mut command, port, true)?;
        let targets = crate::setup::setup(&url(port), &gateway.admin_key()?, None, None).await?;
        let watched = [Watched {
            name: "gateway".into(),
            pid: gateway.pid(),
        }];
        let drain = with_consumer.then(|| format!("http://127.0.0.1:{port}/metrics"));
        let row = measure(args, rate, port, targets, &watched, ticks, drain).await?;
        rows.push(named(row, name, ceiling_us));
    }

    if let Some(brokers) = &args.kafka_brokers {
        let consumer_bin = args
            .consumer_bin
            .clone()
            .unwrap_or_else(|| gateway_bin.with_file_name("consumer"));
        if !consumer_bin.exists() {
            bail!(
                "{} is missing: build it (cargo build --release -p consumer) or pass --consumer-bin",
                consumer_bin.display()
            );
        }
        let name = "gateway + consumer process (Kafka)";
        eprintln!("==> {name}");
        let data = tempfile::tempdir()?;
        let database_url = args
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}/sluice.db", data.path().display()));
        let topic = format!("bench-cpu-{}", std::process::id());
        let port = free_port()?;
        let mut command = Command::new(gateway_bin);
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--rate-limit-webhook", "100000000"])
            .args(["--queue", "kafka", "--kafka-brokers", brokers])
            .args(["--kafka-topic", &topic, "--with-consumer", "false"])
            .args(["--database-url", &database_url])
            .arg("--data-dir")
            .arg(data.path());
        let gateway = Server::start(&mut command, port, true)?;
        let targets = crate::setup::setup(&url(port), &gateway.admin_key()?, None, None).await?;
        let ops = free_port()?;
        let mut command = Command::new(&consumer_bin);
        command
            .args(["--kafka-brokers", brokers, "--kafka-topic", &topic])
            .args(["--group", &topic, "--database-url", &database_url])
            .args(["--metrics-listen", &format!("127.0.0.1:{ops}")]);
        let consumer = Server::start(&mut command, ops, false)?;
        let mut watched = vec![
            Watched {
                name: "gateway".into(),
                pid: gateway.pid(),
            },
            Watched {
                name: "consumer".into(),
                pid: consumer.pid(),
            },
        ];
        watched.extend(extra.iter().cloned());
        let drain = Some(format!("http://127.0.0.1:{ops}/metrics"));
        let row = measure(args, rate, port, targets, &watched, ticks, drain).await?;
        rows.push(named(row, name, ceiling_us));
    }

    let results = CpuResults {
        rate,
        duration_s: args.duration.as_secs_f64(),
        connections: args.connections,
        payload_bytes: args.payload_bytes,
        rows,
    };
    print_table(&results);
    let report = cpu_report_path(&args.report);
    if let Some(parent) = report.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&report, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("writing {}", report.display()))?;
    println!("results: {}", report.display());
    Ok(true)
}

fn named(mut row: CpuRow, name: &str, ceiling_us: f64) -> CpuRow {
    row.target = name.to_owned();
    row.ratio_to_ceiling = row.total_us_per_event / ceiling_us.max(f64::EPSILON);
    row
}

/// The report beside the throughput one: `loadtest-bench.json` → `loadtest-bench-cpu.json`.
fn cpu_report_path(report: &Path) -> PathBuf {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "loadtest-bench".into());
    report.with_file_name(format!("{stem}-cpu.json"))
}

/// Warm-up, then the measured run at `rate`; CPU is taken before it and after the drain.
async fn measure(
    args: &BenchArgs,
    rate: f64,
    port: u16,
    targets: Targets,
    watched: &[Watched],
    ticks: f64,
    drain_metrics: Option<String>,
) -> anyhow::Result<CpuRow> {
    let (warm, measured, before) = load(args, port, targets, Some(rate), || {
        cpu_seconds(watched, ticks)
    })
    .await?;
    let drain_s = match drain_metrics {
        Some(metrics) => {
            let accepted = warm.events_accepted + measured.events_accepted;
            Some(drained(&metrics, accepted).await?.as_secs_f64())
        }
        None => None,
    };
    let events = measured.events_accepted.max(1);
    let after = cpu_seconds(watched, ticks);
    let us_per_event: Vec<(String, f64)> = watched
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(w, (start, end))| (w.name.clone(), (end - start) * 1e6 / events as f64))
        .collect();
    let total = us_per_event.iter().map(|(_, us)| us).sum();
    Ok(CpuRow {
        target: String::new(),
        events: measured.events_accepted,
        events_per_s: measured.events_accepted_per_s,
        us_per_event,
        total_us_per_event: total,
        ratio_to_ceiling: 0.0,
        drain_s,
        unexpected: measured.unexpected,
    })
}

/// Waits until the consumer behind `metrics` has stored `accepted` events (recorded, or found
/// already recorded); how long that took.
pub(crate) async fn drained(metrics: &str, accepted: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let text = client.get(metrics).send().await?.text().await?;
        let stored = counter_sum(
            &text,
            "sluice_consumer_events_total",
            &["recorded", "duplicate"],
        );
        if stored >= accepted as f64 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > DRAIN_LIMIT {
            bail!("the consumer stored {stored} of {accepted} events within {DRAIN_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of a Prometheus counter's series whose `outcome` label is one of `outcomes`.
fn counter_sum(exposition: &str, name: &str, outcomes: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| {
            outcomes
                .iter()
                .any(|o| line.contains(&format!("outcome=\"{o}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// CPU seconds of each watched process tree, from one reading of `/proc`, so every process is
/// read at the same moment.
fn cpu_seconds(watched: &[Watched], ticks: f64) -> Vec<f64> {
    let table = process_table();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, stat) in &table {
        children.entry(stat.parent).or_default().push(*pid);
    }
    watched
        .iter()
        .map(|w| tree_cpu_seconds(&table, &children, w.pid, ticks))
        .collect()
}

/// CPU seconds (user + system) of `pid` and every process descended from it, plus the
/// children it has already reaped.
fn tree_cpu_seconds(
    table: &HashMap<u32, Stat>,
    children: &HashMap<u32, Vec<u32>>,
    pid: u32,
    ticks: f64,
) -> f64 {
    let mut total = 0.0;
    let mut stack = vec![pid];
    while let Some(pid) = stack.pop() {
        if let Some(stat) = table.get(&pid) {
            total += stat.ticks / ticks;
        }
        stack.extend(children.get(&pid).into_iter().flatten().copied());
    }
    total
}

#[derive(Debug, Clone, Copy)]
struct Stat {
    parent: u32,
    ticks: f64,
}

/// Every process's parent and CPU ticks (utime, stime, cutime, cstime).
fn process_table() -> HashMap<u32, Stat> {
    let mut table = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|text| parse_stat(&text))
        {
            table.insert(pid, stat);
        }
    }
    table
}

/// Reads `/proc/<pid>/stat`. The command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    let number = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some(Stat {
        parent: fields.get(1)?.parse().ok()?,
        ticks: number(11)? + number(12)? + number(13)? + number(14)?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 on Linux when it cannot be asked.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn print_table(results: &CpuResults) {
    println!(
        "\nCPU per event at {:.0} events/s, {:.0} s, {} connections, ~{} B events, open loop",
        results.rate, results.duration_s, results.connections, results.payload_bytes
    );
    println!("| target | events/s | CPU µs per event (by process) | total µs | ratio to ceiling | drain s |");
    println!("|---|---|---|---|---|---|");
    for r in &results.rows {
        let parts: Vec<String> = r
            .us_per_event
            .iter()
            .map(|(name, us)| format!("{name} {us:.1}"))
            .collect();
        println!(
            "| {} | {:.0} | {} | {:.1} | {:.2} | {} |",
            r.target,
            r.events_per_s,
            parts.join(", "),
            r.total_us_per_event,
            r.ratio_to_ceiling,
            r.drain_s
                .map(|s| format!("{s:.2}"))
                .unwrap_or_else(|| "–".into()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line =
            "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 3 2 20 0 9 0 1 0 0";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.parent, 1);
        assert_eq!(stat.ticks, 250.0 + 75.0 + 3.0 + 2.0);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn busy_work_is_counted() {
        let ticks = clock_ticks();
        let me = [Watched {
            name: "test".into(),
            pid: std::process::id(),
        }];
        let before = cpu_seconds(&me, ticks)[0];
        // Work until a tenth of a second (10 ticks at 100 Hz) is counted. The deadline is
        // generous because a loaded machine may give this thread a small share of a core;
        // a reading that never moves fails it.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut x = 0u64;
        let mut spent = 0.0;
        while spent < 0.1 {
            assert!(
                Instant::now() < deadline,
                "only {spent} s counted after 20 s of busy work"
            );
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            spent = cpu_seconds(&me, ticks)[0] - before;
        }
    }

    #[test]
    fn counters_are_summed_by_outcome() {
        let text = "# TYPE sluice_consumer_events_total counter\n\
                    sluice_consumer_events_total{outcome=\"recorded\"} 90\n\
                    sluice_consumer_events_total{outcome=\"duplicate\"} 10\n\
                    sluice_consumer_events_total{outcome=\"malformed\"} 5\n";
        assert_eq!(
            counter_sum(
                text,
                "sluice_consumer_events_total",
                &["recorded", "duplicate"]
            ),
            100.0
        );
    }

    #[test]
    fn watched_processes_are_name_equals_pid() {
        assert_eq!(parse_watch("postgres=12"), Ok(("postgres".into(), 12)));
        assert!(parse_watch("postgres").is_err());
        assert!(parse_watch("=12").is_err());
        assert!(parse_watch("tansu=x").is_err());
    }
}
