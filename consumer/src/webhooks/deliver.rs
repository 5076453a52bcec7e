//! The dispatcher: claims due deliveries from the outbox, sends each signed, and records what
//! happened. Each endpoint has its own small concurrency limit and endpoints at their limit are
//! skipped when claiming, so a slow or dead endpoint holds only its own slots and never delays
//! another's deliveries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use store::clock;
use store::outbox::{self, Claimed, Outcome};

use super::record::{record, Attempted, Verdict};
use super::send::{send, targets, Target};
use super::{target, RetrySchedule, CLAIM_ROUNDS};
use crate::metrics;

/// Wakes the dispatcher when deliveries were just added, instead of waiting for its next poll.
pub type Wake = Arc<Notify>;

/// How deliveries are sent.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Let deliveries reach loopback, private and link-local addresses.
    pub allow_private_targets: bool,
    /// How long an endpoint has to answer.
    pub timeout: Duration,
    /// When failed deliveries are tried again.
    pub retries: RetrySchedule,
    /// How long an endpoint may fail before it is disabled.
    pub disable_after: Duration,
    /// Attempts in flight to one endpoint at once.
    pub per_endpoint: usize,
    /// Attempts in flight in all.
    pub max_in_flight: usize,
    /// How often the outbox is read when nothing wakes the dispatcher.
    pub poll_every: Duration,
    /// How long delivered and dead-lettered deliveries are kept for the deliveries API.
    pub retention: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            allow_private_targets: false,
            timeout: Duration::from_secs(15),
            retries: RetrySchedule::default(),
            disable_after: Duration::from_secs(24 * 60 * 60),
            per_endpoint: 4,
            max_in_flight: 256,
            poll_every: Duration::from_millis(500),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// Sends the outbox's deliveries until shut down.
#[derive(Debug)]
pub struct Dispatcher {
    db: AnyPool,
    /// Its own connection, kept across rounds ([`store::kept_connection`]): on SQLite a pool
    /// connection finds its page cache dropped whenever another wrote, and with a pool
    /// connection per statement the dispatcher read its pages again for nearly every one
    /// (tens of reads per delivery); now only other writers (the consumer) drop it.
    connection: Option<PoolConnection<Any>>,
    shared: Arc<Shared>,
    endpoints: HashMap<String, Endpoint>,
    /// Endpoints that had due deliveries when last looked, oldest due first; one leaves when a
    /// claim finds fewer than it asked for.
    due: Vec<String>,
    /// Where the next look for endpoints starts, when the last stopped at its bound; empty
    /// when the next look starts from the first endpoint.
    look_after: String,
    in_flight: Arc<Semaphore>,
    /// Attempts' outcomes, recorded by the dispatcher itself between claims: with a recorder
    /// task beside it, the two waited for each other on SQLite's write lock, in the busy
    /// handler's sleeps (1 ms and up), which were most of a delivery's time.
    results: mpsc::Receiver<Attempted>,
}

/// Outcomes recorded per transaction, at most.
const RECORDED_AT_ONCE: usize = 512;

/// Endpoints with pending deliveries looked at per look; past that many, the next look goes
/// on after the last, adding to what the earlier ones found.
const ENDPOINTS_PER_LOOK: usize = 1024;

/// One endpoint's limits. `sending` bounds the requests open to it; `claimed` bounds the
/// deliveries reserved for it (sending, waiting to send, or waiting to be recorded) at
/// [`CLAIM_ROUNDS`] times that, so the next deliveries are already claimed when requests end
/// and start without a trip to the store: a fast endpoint's rate is bounded by what one round
/// trip to the store claims (one endpoint: 4.1k / 3.8k deliveries/s at two rounds, 7.3k / 7.2k
/// at four, deliver bench). Its waiting rounds plus its attempt fit in a claim's lease.
#[derive(Debug, Clone)]
struct Endpoint {
    sending: Arc<Semaphore>,
    claimed: Arc<Semaphore>,
}

impl Endpoint {
    fn new(per_endpoint: usize) -> Endpoint {
        Endpoint {
            sending: Arc::new(Semaphore::new(per_endpoint)),
            claimed: Arc::new(Semaphore::new(window(per_endpoint))),
        }
    }
}

/// Deliveries an endpoint may have claimed.
fn window(per_endpoint: usize) -> usize {
    per_endpoint * CLAIM_ROUNDS as usize
}

/// What every attempt needs.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: DeliveryConfig,
    pub(super) client: reqwest::Client,
    wake: Wake,
    results: mpsc::Sender<Attempted>,
}

impl Dispatcher {
    /// A dispatcher with its HTTP client; fails only if the TLS backend cannot start.
    pub fn new(db: AnyPool, config: DeliveryConfig) -> Result<Dispatcher, reqwest::Error> {
        let mut client = reqwest::Client::builder()
            .user_agent(concat!("Sluice-Webhooks/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead anywhere, including inside; it counts as a failure.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the target itself, past the guarded resolver.
            .no_proxy()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(config.per_endpoint);
        if !config.allow_private_targets {
            client = client.dns_resolver(target::guarded_resolver());
        }
        let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
        // Every result holds an in-flight slot, so the channel never holds more than this.
        let (results_tx, results) = mpsc::channel(config.max_in_flight);
        Ok(Dispatcher {
            db,
            connection: None,
            shared: Arc::new(Shared {
                client: client.build()?,
                config,
                wake: Arc::new(Notify::new()),
                results: results_tx,
            }),
            endpoints: HashMap::new(),
            due: Vec::new(),
            look_after: String::new(),
            in_flight,
            results,
        })
    }

    /// The handle that wakes this dispatcher.
    pub fn wake(&self) -> Wake {
        self.shared.wake.clone()
    }

    /// Dispatches until `shutdown`; attempts still in flight then get a short grace, and any
    /// cut off are tried again once their lease runs out.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut attempts = JoinSet::new();
        let mut finished = Vec::new();
        // The outbox is swept at start and then every tenth of the retention, at most hourly.
        let sweep_every = (self.shared.config.retention / 10).min(Duration::from_secs(3600));
        let mut next_sweep = Instant::now();
        // Looked for at least every poll, even while outcomes keep the dispatcher busy:
        // retries and expired leases fall due with no other sign.
        let mut next_look = Instant::now();
        let mut look = true;
        // Checked each round too: while rounds keep starting attempts, the wait below is
        // never reached.
        while !shutdown.is_cancelled() {
            while attempts.try_join_next().is_some() {}
            look |= Instant::now() >= next_look;
            if Instant::now() >= next_sweep {
                next_sweep = Instant::now() + sweep_every;
                let cutoff =
                    clock::format(time::OffsetDateTime::now_utc() - self.shared.config.retention);
                match outbox::forget_finished(&self.db, &cutoff).await {
                    Ok(0) => {}
                    Ok(removed) => {
                        tracing::info!(removed, "removed finished deliveries past retention")
                    }
                    Err(error) => tracing::warn!(%error, "sweeping the delivery outbox failed"),
                }
            }
            // Outcomes first: recording them frees their slots for the claims below.
            self.record_finished(&mut finished, RECORDED_AT_ONCE).await;
            let full = window(self.shared.config.per_endpoint);
            self.endpoints
                .retain(|_, endpoint| endpoint.claimed.available_permits() < full);
            let started = match self.round(look, &mut attempts).await {
                Ok(started) => {
                    if look {
                        look = false;
                        next_look = Instant::now() + self.shared.config.poll_every;
                    }
                    started
                }
                Err(error) => {
                    tracing::warn!(%error, "reading the delivery outbox failed; retrying");
                    next_look = Instant::now() + self.shared.config.poll_every;
                    0
                }
            };
            if started > 0 {
                continue;
            }
            // Deliveries added: look for endpoints again. Outcomes: recorded, their slots go
            // to the endpoints known to have due deliveries.
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = self.results.recv_many(&mut finished, RECORDED_AT_ONCE) => {}
                () = self.shared.wake.notified() => look = true,
                () = tokio::time::sleep_until(next_look.into()) => {}
            }
        }
        // A short grace for attempts in flight; what they found is then recorded.
        let grace = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                () = &mut grace => break,
                joined = attempts.join_next() => if joined.is_none() { break },
            }
        }
        attempts.abort_all();
        while attempts.join_next().await.is_some() {}
        self.record_finished(&mut finished, usize::MAX).await;
    }

    /// Records `finished` and the outcomes waiting, up to `at_most` in all, in one transaction.
    async fn record_finished(&mut self, finished: &mut Vec<Attempted>, at_most: usize) {
        while finished.len() < at_most {
            let Ok(attempted) = self.results.try_recv() else {
                break;
            };
            finished.push(attempted);
        }
        record(
            &self.db,
            &mut self.connection,
            &self.shared.config,
            finished,
        )
        .await;
    }

    /// Looks for endpoints with due deliveries when `look`, then claims and starts what can
    /// start; returns how many attempts started. A failure drops the kept connection.
    async fn round(
        &mut self,
        look: bool,
        attempts: &mut JoinSet<()>,
    ) -> Result<usize, sqlx::Error> {
        let mut kept = self.connection.take();
        let connection = store::kept_connection(&self.db, &mut kept).await?;
        if look {
            self.look_for_due(connection).await?;
        }
        let started = self.dispatch_due(connection, attempts).await?;
        self.connection = kept;
        Ok(started)
    }

    /// Finds the endpoints with deliveries due now, oldest due first. A look that starts after
    /// the last one's bound adds to what that one found.
    async fn look_for_due(&mut self, db: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let pending = outbox::pending_endpoints(db, &self.look_after, ENDPOINTS_PER_LOOK).await?;
        let more = pending.len() >= ENDPOINTS_PER_LOOK;
        let last = pending.iter().map(|p| &p.endpoint).max().cloned();
        let now = clock::now();
        let mut due: Vec<(String, String)> = pending
            .into_iter()
            .filter_map(|p| Some((p.earliest?, p.endpoint)))
            .filter(|(earliest, _)| *earliest <= now)
            .collect();
        due.sort();
        if self.look_after.is_empty() {
            self.due.clear();
        } else {
            let known: HashSet<&String> = self.due.iter().collect();
            due.retain(|(_, endpoint)| !known.contains(endpoint));
        }
        self.due
            .extend(due.into_iter().map(|(_, endpoint)| endpoint));
        self.look_after = last.filter(|_| more).unwrap_or_default();
        Ok(())
    }

    /// Claims what can start now for the endpoints with due deliveries and free slots, and
    /// starts it; returns how many attempts started.
    async fn dispatch_due(
        &mut self,
        db: &mut AnyConnection,
        attempts: &mut JoinSet<()>,
    ) -> Result<usize, sqlx::Error> {
        let per_endpoint = self.shared.config.per_endpoint;
        let mut free = self.in_flight.available_permits();
        let mut wanted: Vec<(&str, usize)> = Vec::new();
        for endpoint in &self.due {
            if free == 0 {
                break;
            }
            // Once half the deliveries in flight are taken, an endpoint claims two rounds at
            // most: a few endpoints with backlogs (or hanging) must not take every slot.
            let allowed = if free * 2 > self.shared.config.max_in_flight {
                window(per_endpoint)
            } else {
                per_endpoint * 2
            };
            let held = self
                .endpoints
                .get(endpoint)
                .map_or(0, |e| window(per_endpoint) - e.claimed.available_permits());
            let slots = allowed.saturating_sub(held).min(free);
            if slots > 0 {
                wanted.push((endpoint, slots));
                free -= slots;
            }
        }
        if wanted.is_empty() {
            return Ok(0);
        }
        let now = clock::now();
        let lease_until = clock::after(super::lease(self.shared.config.timeout));
        let claimed = outbox::claim_due(&mut *db, &wanted, &now, &lease_until).await?;
        // An endpoint that gave fewer than asked has nothing more due now.
        let mut got: HashMap<&str, usize> = HashMap::new();
        for delivery in &claimed {
            *got.entry(delivery.endpoint()).or_default() += 1;
        }
        let drained: HashSet<String> = wanted
            .iter()
            .filter(|(endpoint, asked)| got.get(endpoint).copied().unwrap_or(0) < *asked)
            .map(|(endpoint, _)| (*endpoint).to_owned())
            .collect();
        self.due.retain(|endpoint| !drained.contains(endpoint));
        let targets = targets(db, &claimed).await?;
        let mut started = 0;
        for delivery in claimed {
            let endpoint = self
                .endpoints
                .entry(delivery.endpoint().to_owned())
                .or_insert_with(|| Endpoint::new(per_endpoint))
                .clone();
            // Both succeed: slots were counted above and only this loop takes them. Should
            // one not, the lease makes the delivery due again.
            let (Ok(claim), Ok(global)) = (
                endpoint.claimed.clone().try_acquire_owned(),
                self.in_flight.clone().try_acquire_owned(),
            ) else {
                continue;
            };
            let target = targets
                .get(delivery.endpoint())
                .cloned()
                .unwrap_or(Target::Closed("the endpoint no longer exists"));
            attempts.spawn(attempt(
                self.shared.clone(),
                delivery,
                target,
                endpoint.sending,
                [claim, global],
            ));
            started += 1;
        }
        Ok(started)
    }
}

/// One attempt, from send to recorded outcome. It waits for one of the endpoint's sending
/// slots and frees it as soon as the request ends; the claim slots are held until the
/// outcome is recorded.
async fn attempt(
    shared: Arc<Shared>,
    delivery: Claimed,
    target: Target,
    sending: Arc<Semaphore>,
    _slots: [OwnedSemaphorePermit; 2],
) {
    // The semaphore is never closed, so this only waits.
    let Ok(sending) = sending.acquire_owned().await else {
        return;
    };
    let started = Instant::now();
    let refused = |why: &str| Outcome {
        status_code: None,
        error: Some(why.to_owned()),
    };
    let (outcome, verdict) = match &target {
        Target::Closed(why) => (refused(why), Verdict::Final),
        Target::Held(why) => (refused(why), Verdict::Held),
        Target::Paused => (refused("the webhook is paused"), Verdict::NotAttempted),
        Target::Send {
            url,
            secret,
            headers,
        } => send(&shared, &delivery, url, secret, headers).await,
    };
    metrics::report_delivery_duration(started.elapsed());
    drop(sending);
    let attempted = Attempted {
        delivery,
        outcome,
        verdict,
        _slots,
    };
    // Fails only when the dispatcher has stopped; the lease then makes the delivery due again.
    let _ = shared.results.send(attempted).await;
}
