//! What a run measured: HdrHistogram percentiles, throughput, statuses and failures, the
//! per-second series, and `--verify`'s findings; as a readable summary, JSON and CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::batch::BatchItems;
use crate::client::{Answer, Failure};
use crate::generate::histogram;
use crate::scenario::{Intent, Planned};
use crate::verify::Verified;

/// One worker's counts, merged at the end.
pub(crate) struct Tally {
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<Failure, u64>,
    /// Failures that were the refusal the request meant to provoke (see [`Tally::fail`]).
    pub failures_expected: u64,
    /// Answers other than the request's intent expects (e.g. a 500 to a valid event, or a
    /// batch with an item refused).
    pub unexpected: u64,
    pub unexpected_samples: Vec<String>,
    /// Events answered 201, as (contact email, event id), kept for `--verify`.
    pub accepted: Vec<(String, String)>,
    pub events_accepted: u64,
    /// Events in answered requests that were not accepted (a batch counts each item).
    pub events_refused: u64,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            latency: histogram(),
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            failures_expected: 0,
            unexpected: 0,
            unexpected_samples: Vec::new(),
            accepted: Vec::new(),
            events_accepted: 0,
            events_refused: 0,
        }
    }

    pub(crate) fn record(&mut self, planned: &Planned, answer: &Answer, micros: u64, keep: bool) {
        self.latency.saturating_record(micros);
        *self.statuses.entry(answer.status).or_default() += 1;
        let events = if planned.batch {
            planned.emails.len() as u64
        } else {
            1
        };
        let unexpected = if planned.batch && answer.status == 200 {
            let items = BatchItems::of(planned, answer);
            self.events_accepted += items.accepted.len() as u64;
            self.events_refused += items.refused;
            if keep {
                self.accepted.extend(items.accepted);
            }
            items.first_unexpected.map(|first| {
                format!(
                    "{} of {events} items unexpected, first: {first}",
                    items.unexpected
                )
            })
        } else {
            if answer.status == 201 {
                self.events_accepted += 1;
                if keep {
                    self.accepted.extend(accepted_event(planned, answer));
                }
            } else {
                self.events_refused += events;
            }
            (!planned.intent.expects(answer.status, planned.batch)).then(|| {
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned()
            })
        };
        if let Some(what) = unexpected {
            self.unexpected += 1;
            if self.unexpected_samples.len() < 5 {
                self.unexpected_samples.push(format!(
                    "{:?} request to {} got {}: {what}",
                    planned.intent, planned.path, answer.status,
                ));
            }
        }
    }

    pub(crate) fn fail(&mut self, failure: Failure, intent: Intent) {
        *self.failures.entry(failure).or_default() += 1;
        // A gateway that refuses a body by its declared length answers 413 and closes without
        // reading the rest; the unread bytes make the kernel reset the connection, which can
        // discard the 413 before it is read. For an oversize body that is the refusal.
        if failure == Failure::Io && intent == Intent::Oversize {
            self.failures_expected += 1;
        }
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        for (failure, n) in other.failures {
            *self.failures.entry(failure).or_default() += n;
        }
        self.failures_expected += other.failures_expected;
        self.unexpected += other.unexpected;
        for sample in other.unexpected_samples {
            if self.unexpected_samples.len() < 5 {
                self.unexpected_samples.push(sample);
            }
        }
        self.accepted.extend(other.accepted);
        self.events_accepted += other.events_accepted;
        self.events_refused += other.events_refused;
    }
}

/// The (email, id) of a single event answered 201 with `{"id"}`.
fn accepted_event(planned: &Planned, answer: &Answer) -> Option<(String, String)> {
    let body = serde_json::from_slice::<serde_json::Value>(&answer.body).ok()?;
    Some((
        planned.emails.first()?.clone(),
        body["id"].as_str()?.to_owned(),
    ))
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Second {
    pub second: u64,
    pub answers: u64,
    pub failures: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Second {
    pub(crate) fn of(second: u64, h: &Histogram<u64>, failures: u64) -> Second {
        let latency = Latency::of(h);
        Second {
            second,
            answers: h.len(),
            failures,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            max_ms: latency.max_ms,
        }
    }
}

/// The JSON report (`--report`).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub scenario: &'static str,
    pub mode: &'static str,
    pub target_rate: Option<f64>,
    pub connections: usize,
    pub http: &'static str,
    pub elapsed_s: f64,
    pub requests: u64,
    pub answers: u64,
    pub answers_per_s: f64,
    pub events_accepted: u64,
    pub events_accepted_per_s: f64,
    pub events_refused: u64,
    pub latency: Latency,
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<Failure, u64>,
    /// Of the failures, connections reset while sending an oversize body: the gateway's
    /// refusal, not counted against --max-unexpected.
    pub failures_expected: u64,
    pub unexpected: u64,
    pub unexpected_samples: Vec<String>,
    /// Percent of requests that failed or got an unexpected answer.
    pub unexpected_percent: f64,
    pub verify: Option<Verified>,
}

impl Report {
    /// The readable summary.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} scenario, {} loop{}, {} connections, HTTP/{}",
            self.scenario,
            self.mode,
            self.target_rate
                .map(|r| format!(" at {r}/s"))
                .unwrap_or_default(),
            self.connections,
            self.http
        );
        let _ = writeln!(
            out,
            "  {} requests in {:.2} s: {:.0} answers/s, {} events accepted ({:.0}/s)",
            self.requests,
            self.elapsed_s,
            self.answers_per_s,
            self.events_accepted,
            self.events_accepted_per_s
        );
        if self.events_refused > 0 {
            let _ = writeln!(out, "  {} events refused", self.events_refused);
        }
        let l = &self.latency;
        let _ = writeln!(
            out,
            "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
        );
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(out, "  statuses: {}", statuses.join(", "));
        if !self.failures.is_empty() {
            let failures: Vec<String> = self
                .failures
                .iter()
                .map(|(f, n)| format!("{f:?}: {n}"))
                .collect();
            let _ = writeln!(out, "  no answer: {}", failures.join(", "));
            if self.failures_expected > 0 {
                let _ = writeln!(
                    out,
                    "    of which {} oversize bodies refused by a reset connection",
                    self.failures_expected
                );
            }
        }
        if self.unexpected > 0 {
            let _ = writeln!(
                out,
                "  unexpected answers: {} ({:.2}% of requests failed or unexpected)",
                self.unexpected, self.unexpected_percent
            );
            for sample in &self.unexpected_samples {
                let _ = writeln!(out, "    {sample}");
            }
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                out,
                "  verify: {} accepted, {} found downstream, {} lost, {} duplicated, {} not acknowledged but stored ({:.1} s)",
                v.expected, v.found, v.lost, v.duplicated, v.unacknowledged, v.waited_s
            );
            for id in &v.lost_samples {
                let _ = writeln!(out, "    lost: {id}");
            }
        }
        out
    }
}

/// The per-second series as CSV.
pub(crate) fn csv(seconds: &[Second]) -> String {
    let mut out = String::from("second,answers,failures,p50_ms,p99_ms,max_ms\n");
    for s in seconds {
        let _ = writeln!(
            out,
            "{},{},{},{:.3},{:.3},{:.3}",
            s.second, s.answers, s.failures, s.p50_ms, s.p99_ms, s.max_ms
        );
    }
    out
}
