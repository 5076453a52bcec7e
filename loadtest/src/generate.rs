//! The generator: workers that each own a connection and send the scenario's requests.
//!
//! Open loop (`--rate`): request `i` is due at `start + i / rate`, whatever happened before.
//! A worker takes the next index, waits for its due time if it is ahead, sends, and records
//! the latency from the due time, not from when it got to send. When the target stalls,
//! requests that should have started during the stall are counted as waiting through it, so
//! percentiles show what users would have seen (no coordinated omission).
//!
//! Closed loop (no `--rate`): each worker sends as soon as its previous answer arrives, for the
//! highest throughput the connections allow; latency is from each send.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::args::{HttpVersion, Plan};
use crate::client::{Connection, Failure, Target};
use crate::report::{Second, Tally};
use crate::scenario::Scenario;

/// Latencies are recorded in microseconds up to an hour, to three significant figures.
pub(crate) fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What the workers share.
struct Shared {
    plan: Plan,
    target: Target,
    scenario: Scenario,
    next: AtomicU64,
    start: Instant,
    stopped: AtomicBool,
    /// Answers in the current second, for the progress line and the per-second CSV; sharded
    /// so workers seldom wait on each other's lock.
    second: Vec<Mutex<Histogram<u64>>>,
    completed: AtomicU64,
    failed: AtomicU64,
    keep_accepted: bool,
}

/// The outcome of a run.
pub(crate) struct Outcome {
    pub tally: Tally,
    pub seconds: Vec<Second>,
    pub elapsed: Duration,
}

/// Runs the plan to its end (duration or request count).
pub(crate) async fn run(
    plan: Plan,
    scenario: Scenario,
    keep_accepted: bool,
    quiet: bool,
) -> Outcome {
    let target = Target::of(&plan.target, plan.http, plan.timeout, plan.spread_sources);
    let workers = plan.connections;
    const SHARDS: usize = 16;
    let shared = Arc::new(Shared {
        target,
        scenario,
        next: AtomicU64::new(0),
        start: Instant::now(),
        stopped: AtomicBool::new(false),
        second: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        keep_accepted,
        plan,
    });
    // HTTP/2 multiplexes: a few connections carry every worker's streams.
    let mut shared_h2 = Vec::new();
    if shared.plan.http == HttpVersion::Http2 {
        for _ in 0..workers.div_ceil(64) {
            if let Ok(connection) = Connection::open(&shared.target).await {
                shared_h2.push(connection);
            }
        }
    }
    let progress = tokio::spawn(report_seconds(
        shared.clone(),
        !quiet && std::io::stderr().is_terminal(),
    ));
    let mut tasks = Vec::with_capacity(workers);
    for i in 0..workers {
        let connection = (!shared_h2.is_empty())
            .then(|| shared_h2[i % shared_h2.len()].share())
            .flatten();
        tasks.push(tokio::spawn(work(shared.clone(), i, connection)));
    }
    let mut tally = Tally::new();
    for task in tasks {
        if let Ok(worker) = task.await {
            tally.merge(worker);
        }
    }
    let elapsed = shared.start.elapsed();
    shared.stopped.store(true, Ordering::Relaxed);
    let seconds = progress.await.unwrap_or_default();
    Outcome {
        tally,
        seconds,
        elapsed,
    }
}

/// One worker: takes request numbers until the plan says stop.
async fn work(shared: Arc<Shared>, worker: usize, mut connection: Option<Connection>) -> Tally {
    let mut tally = Tally::new();
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let plan = &shared.plan;
    let end = plan.stop.duration.map(|d| shared.start + d);
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if plan.stop.requests.is_some_and(|n| i >= n) {
            break;
        }
        let due = match plan.rate {
            Some(rate) => {
                let due = shared.start + Duration::from_secs_f64(i as f64 / rate);
                if end.is_some_and(|end| due >= end) {
                    break;
                }
                if due > Instant::now() {
                    // Ahead of schedule: wait. The timer wakes up to a millisecond late, which
                    // is the generator's delay, not the target's, so latency starts at waking.
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                } else {
                    // Behind schedule (every connection was busy): the wait since the due
                    // time is part of what a user would have seen.
                    due
                }
            }
            None => {
                let now = Instant::now();
                if end.is_some_and(|end| now >= end) {
                    break;
                }
                now
            }
        };
        let planned = shared.scenario.request(i, &mut rng);
        let open = match connection.take().filter(Connection::is_open) {
            Some(open) => Ok(open),
            None => Connection::open(&shared.target).await,
        };
        let result = match open {
            Ok(mut open) => {
                let result = open.send(&shared.target, &planned).await;
                // A connection that failed mid-request is not reused.
                if result.is_ok() {
                    connection = Some(open);
                }
                result
            }
            Err(failure) => Err(failure),
        };
        let latency = due.elapsed();
        match result {
            Ok(answer) => {
                let micros = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                tally.record(&planned, &answer, micros, shared.keep_accepted);
                if let Ok(mut second) = shared.second[worker % shared.second.len()].lock() {
                    second.saturating_record(micros);
                }
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(failure) => {
                if failure == Failure::Timeout {
                    // A request that got no answer in time waited at least this long: leaving
                    // it out would hide the worst of a stall.
                    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    tally.latency.saturating_record(micros.max(1));
                }
                tally.fail(failure, planned.intent);
                shared.failed.fetch_add(1, Ordering::Relaxed);
                if failure == Failure::Connect {
                    // A target that refuses connections must not turn workers into a spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    tally
}

/// Every second: one CSV row, and the progress line on a terminal.
async fn report_seconds(shared: Arc<Shared>, live: bool) -> Vec<Second> {
    let mut rows = Vec::new();
    let mut tick = tokio::time::interval_at(
        (shared.start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let mut failed_before = 0;
    loop {
        tick.tick().await;
        let done = shared.stopped.load(Ordering::Relaxed);
        let mut histogram = histogram();
        for shard in &shared.second {
            if let Ok(mut second) = shard.lock() {
                let _ = histogram.add(&*second);
                second.reset();
            }
        }
        let failed = shared.failed.load(Ordering::Relaxed);
        let row = Second::of(rows.len() as u64 + 1, &histogram, failed - failed_before);
        failed_before = failed;
        if live {
            eprint!(
                "\r{:>5}s {:>9} answers {:>8}/s  p50 {:>8.2} ms  p99 {:>8.2} ms  failures {:<8}",
                row.second,
                shared.completed.load(Ordering::Relaxed),
                row.answers,
                row.p50_ms,
                row.p99_ms,
                failed
            );
        }
        // The last, partial second counts only if something happened in it.
        if !done || row.answers > 0 || row.failures > 0 {
            rows.push(row);
        }
        if done {
            if live {
                eprintln!();
            }
            return rows;
        }
    }
}
