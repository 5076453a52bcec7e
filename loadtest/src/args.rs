//! `loadtest run` arguments and the checks that turn them into a [`Plan`]. Every bad
//! combination stops the run before a request is sent, with a message naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::scenario::{Mix, ScenarioKind};

/// Most requests one run may send; a bound so a typo cannot run for hours.
pub(crate) const MAX_REQUESTS: u64 = 100_000_000;
/// Longest run.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// HTTP version spoken to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HttpVersion {
    /// HTTP/1.1 with keep-alive, one request at a time per connection.
    #[value(name = "1")]
    Http1,
    /// HTTP/2 (cleartext, prior knowledge), streams multiplexed over the connections.
    #[value(name = "2")]
    Http2,
}

/// Load against an event gateway.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Base URL of the gateway, e.g. http://127.0.0.1:8080. Required: loadtest never picks a
    /// target by itself.
    #[arg(long)]
    pub url: Option<String>,
    /// Open loop: start this many requests per second whatever the answers (latency counted
    /// from each request's intended start). Without it, a closed loop sends as fast as the
    /// connections allow.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Connections to the target (open loop: the most requests in flight).
    #[arg(long, default_value = "64")]
    pub connections: usize,
    /// Stop after this long (e.g. 30s, 2m). Default 10s unless --requests is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// What to send.
    #[arg(long, value_enum, default_value = "webhook")]
    pub scenario: ScenarioKind,
    /// HTTP version.
    #[arg(long, value_enum, default_value = "1")]
    pub http: HttpVersion,
    /// Store id (webhook and sdk scenarios); --setup finds it.
    #[arg(long)]
    pub store: Option<String>,
    /// API key `keyId:secret` for the api and batch scenarios and for --verify; --setup finds
    /// the one it stored or makes one.
    #[arg(long)]
    pub key: Option<String>,
    /// Create (or reuse) the integration, event types and API key the scenario needs, using
    /// this admin key. The API key it mints is stored in the --state file and reused by later
    /// runs against the same gateway and store; a new one is minted only when the stored key
    /// answers 401.
    #[arg(long)]
    pub setup: bool,
    /// Where --setup keeps the API keys it minted, keyed by gateway URL and store. Default
    /// $XDG_STATE_HOME/sluice-loadtest/keys.json (~/.local/state/… without it). The file holds
    /// secrets and is written readable by its owner only.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Sign every webhook event with this secret (HMAC-SHA256 of the body, hex, in
    /// `X-Hub-Signature-256: sha256=…`, as GitHub does); --setup makes the webhook type verify
    /// it, so the run measures verification too. At least 16 characters.
    #[arg(long, env = "SLUICE_LOADTEST_WEBHOOK_SECRET")]
    pub webhook_secret: Option<String>,
    /// Admin API key for --setup.
    #[arg(long, env = "SLUICE_ADMIN_KEY")]
    pub admin_key: Option<String>,
    /// After the run, wait until every event answered 201 appears in the contacts API and
    /// report lost and duplicated events.
    #[arg(long)]
    pub verify: bool,
    /// How long --verify waits for events to show up downstream.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub verify_timeout: Duration,
    /// Distinct contacts the generated events spread over.
    #[arg(long, default_value = "10000")]
    pub contacts: u64,
    /// Approximate body size of a valid event, in bytes.
    #[arg(long, default_value = "1024")]
    pub payload_bytes: usize,
    /// Events per request in the batch scenario.
    #[arg(long, default_value = "100")]
    pub batch_size: usize,
    /// Mixed scenario: share of events missing a required field (expect 422).
    #[arg(long, default_value = "0.05")]
    pub invalid_share: f64,
    /// Mixed scenario: share of bodies over the 512 KiB limit (expect 413).
    #[arg(long, default_value = "0.01")]
    pub oversize_share: f64,
    /// Mixed scenario: share of SDK events from one client address, sent past its rate limit
    /// (expect 201 or 429).
    #[arg(long, default_value = "0.05")]
    pub over_limit_share: f64,
    /// SDK scenario: send every connection from one source address. By default, against a
    /// loopback --url given as an IPv4 address (127.x.y.z), each connection binds its own
    /// source address, 127.0.0.2 to 127.0.0.254 in turn, so the gateway's per-client-IP
    /// limit on the SDK path (default 50/s) applies per simulated visitor (Linux routes all of
    /// 127.0.0.0/8 to loopback; elsewhere, give this flag). Against any other target all
    /// connections share this machine's one address, and so one per-IP limit.
    /// The mixed scenario always uses one address: its over-limit share is meant to pass it.
    #[arg(long)]
    pub single_source: bool,
    /// Exit with code 3 when more than this percent of requests failed (connect, timeout, io)
    /// or got an answer their intent did not expect, or when no request succeeded at all.
    /// Exit codes: 0 success, 1 an error (bad arguments, --setup failed), 2 --verify found
    /// lost or duplicated events (takes precedence), 3 this threshold passed.
    #[arg(long, default_value = "1")]
    pub max_unexpected: f64,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write per-second latency and throughput as CSV here.
    #[arg(long)]
    pub latency_csv: Option<PathBuf>,
    /// Don't print the live progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stop {
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
}

/// A checked run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub target: url::Url,
    pub rate: Option<f64>,
    pub connections: usize,
    pub stop: Stop,
    pub http: HttpVersion,
    pub timeout: Duration,
    pub mix: Mix,
    /// Connections bind their own loopback source addresses (the SDK scenario).
    pub spread_sources: bool,
}

impl RunArgs {
    /// Checks the arguments; the error names the flag and what it needs.
    pub(crate) fn plan(&self) -> Result<Plan, String> {
        let url = self.url.as_deref().ok_or(
            "--url is required: give the gateway's address, e.g. --url http://127.0.0.1:8080",
        )?;
        let target =
            url::Url::parse(url).map_err(|e| format!("--url {url:?} is not a URL: {e}"))?;
        if target.scheme() != "http" {
            return Err(format!(
                "--url must be an http:// URL, not {}://",
                target.scheme()
            ));
        }
        if target.host().is_none() {
            return Err("--url has no host".into());
        }
        if let Some(rate) = self.rate {
            check_rate(rate)?;
        }
        if !(1..=100_000).contains(&self.connections) {
            return Err(format!(
                "--connections must be between 1 and 100000, got {}",
                self.connections
            ));
        }
        let stop = Stop {
            duration: match (self.duration, self.requests) {
                (None, None) => Some(Duration::from_secs(10)),
                (duration, _) => duration,
            },
            requests: self.requests,
        };
        if let Some(duration) = stop.duration {
            if duration.is_zero() || duration > MAX_DURATION {
                return Err("--duration must be more than 0 and at most 24h".into());
            }
        }
        if let Some(requests) = stop.requests {
            if requests == 0 || requests > MAX_REQUESTS {
                return Err(format!("--requests must be between 1 and {MAX_REQUESTS}"));
            }
        }
        if self.contacts == 0 {
            return Err("--contacts must be at least 1".into());
        }
        if !(64..=400 * 1024).contains(&self.payload_bytes) {
            return Err("--payload-bytes must be between 64 and 409600".into());
        }
        if !(1..=1000).contains(&self.batch_size) {
            return Err(
                "--batch-size must be between 1 and 1000 (the gateway's batch limit)".into(),
            );
        }
        for (flag, share) in [
            ("--invalid-share", self.invalid_share),
            ("--oversize-share", self.oversize_share),
            ("--over-limit-share", self.over_limit_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{flag} must be between 0 and 1, got {share}"));
            }
        }
        if self.invalid_share + self.oversize_share + self.over_limit_share > 1.0 {
            return Err(
                "--invalid-share, --oversize-share and --over-limit-share add up to more than 1"
                    .into(),
            );
        }
        if !(self.max_unexpected.is_finite() && (0.0..=100.0).contains(&self.max_unexpected)) {
            return Err(format!(
                "--max-unexpected is a percent between 0 and 100, got {}",
                self.max_unexpected
            ));
        }
        if self.setup && self.admin_key.is_none() {
            return Err("--setup needs --admin-key (or SLUICE_ADMIN_KEY)".into());
        }
        if !self.setup {
            if self.scenario.needs_store() && self.store.is_none() {
                return Err(format!(
                    "the {} scenario needs --store (or --setup)",
                    self.scenario.name()
                ));
            }
            if (self.scenario.needs_key() || self.verify) && self.key.is_none() {
                return Err(format!(
                    "the {} scenario{} needs --key (or --setup)",
                    self.scenario.name(),
                    if self.verify { " with --verify" } else { "" }
                ));
            }
        }
        Ok(Plan {
            target,
            rate: self.rate,
            connections: self.connections,
            stop,
            http: self.http,
            timeout: self.timeout,
            mix: Mix {
                kind: self.scenario,
                contacts: self.contacts,
                payload_bytes: self.payload_bytes,
                batch_size: self.batch_size,
                invalid_share: self.invalid_share,
                oversize_share: self.oversize_share,
                over_limit_share: self.over_limit_share,
            },
            spread_sources: self.scenario == ScenarioKind::Sdk && !self.single_source,
        })
    }
}

impl RunArgs {
    /// Where --setup keeps its keys: --state, else under $XDG_STATE_HOME, else under
    /// ~/.local/state; None when none of them is known.
    pub(crate) fn state_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.state {
            return Some(path.clone());
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|dir| !dir.is_empty())
                    .map(|home| PathBuf::from(home).join(".local/state"))
            })?;
        Some(base.join("sluice-loadtest/keys.json"))
    }
}

/// The open-loop rates `run` and `bench --cpu` accept.
pub(crate) fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 {
        Ok(rate)
    } else {
        Err(format!(
            "--rate must be between 0 and 10000000 requests/s, got {rate}"
        ))
    }
}

/// `--rate` of `bench --cpu`, checked as `run` checks it.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("--rate {text:?} is not a number"))?;
    check_rate(rate)
}
