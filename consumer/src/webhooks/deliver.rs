//! The dispatcher: claims due deliveries from the outbox, sends each signed, and records what
//! happened. Each endpoint has its own small concurrency limit and endpoints at their limit are
//! skipped when claiming, so a slow or dead endpoint holds only its own slots and never delays
//! another's deliveries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemas::EventTypeDefinition;
use sqlx::AnyPool;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use store::clock;
use store::outbox::{self, Claimed, Outcome};
use store::webhooks::ENABLED;

use super::{sign, target, RetrySchedule};
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
    shared: Arc<Shared>,
    endpoints: HashMap<String, Endpoint>,
    in_flight: Arc<Semaphore>,
    results: mpsc::Receiver<Attempted>,
}

/// One endpoint's limits. `sending` bounds the requests open to it; `claimed` bounds the
/// deliveries reserved for it (sending, waiting to send, or waiting to be recorded) at twice
/// that, so the next delivery is already claimed when a request ends and starts without a
/// trip to the store. One waiting round plus one attempt fits in a claim's lease.
#[derive(Debug, Clone)]
struct Endpoint {
    sending: Arc<Semaphore>,
    claimed: Arc<Semaphore>,
}

impl Endpoint {
    fn new(per_endpoint: usize) -> Endpoint {
        Endpoint {
            sending: Arc::new(Semaphore::new(per_endpoint)),
            claimed: Arc::new(Semaphore::new(per_endpoint * 2)),
        }
    }
}

/// What every attempt needs.
#[derive(Debug)]
struct Shared {
    config: DeliveryConfig,
    client: reqwest::Client,
    wake: Wake,
    results: mpsc::Sender<Attempted>,
}

/// An attempt's result on its way to the store. Its slots are freed only once it is
/// recorded, so an endpoint's limit also covers attempts not yet written down.
#[derive(Debug)]
struct Attempted {
    delivery: Claimed,
    outcome: Outcome,
    verdict: Verdict,
    _slots: [OwnedSemaphorePermit; 2],
}

/// Where a claimed delivery goes and how it is signed, read when it is claimed so that a
/// changed URL or secret applies to pending retries too.
#[derive(Debug, Clone)]
enum Target {
    Send {
        url: String,
        secret: String,
        headers: Vec<(String, String)>,
    },
    /// Not to be sent now, through no fault of the endpoint (the send type has no signing
    /// secret yet): tried again on the schedule.
    Held(&'static str),
    /// The subscription was paused after the delivery was found due: not attempted, and the
    /// claim is given back without counting an attempt.
    Paused,
    /// Never to be sent: the subscription was disabled or the send type deleted.
    Closed(&'static str),
}

/// What a failed attempt means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The endpoint failed: retried, and counted toward disabling it.
    EndpointFailed,
    /// Retried, without blaming the endpoint.
    Held,
    /// Not retried.
    Final,
    /// No attempt was made (the subscription is paused): the claim is given back.
    NotAttempted,
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
            shared: Arc::new(Shared {
                client: client.build()?,
                config,
                wake: Arc::new(Notify::new()),
                results: results_tx,
            }),
            endpoints: HashMap::new(),
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
        let results = std::mem::replace(&mut self.results, mpsc::channel(1).1);
        let recorder = tokio::spawn(record_results(
            self.db.clone(),
            self.shared.config.clone(),
            self.shared.wake.clone(),
            results,
        ));
        let mut attempts = JoinSet::new();
        // The outbox is swept at start and then every tenth of the retention, at most hourly.
        let sweep_every = (self.shared.config.retention / 10).min(Duration::from_secs(3600));
        let mut next_sweep = Instant::now();
        loop {
            while attempts.try_join_next().is_some() {}
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
            let full = self.shared.config.per_endpoint * 2;
            self.endpoints
                .retain(|_, endpoint| endpoint.claimed.available_permits() < full);
            let started = match self.dispatch_due(&mut attempts).await {
                Ok(started) => started,
                Err(error) => {
                    tracing::warn!(%error, "reading the delivery outbox failed; retrying");
                    0
                }
            };
            if started > 0 {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.shared.wake.notified() => {}
                () = tokio::time::sleep(self.shared.config.poll_every) => {}
            }
        }
        let drained = tokio::time::timeout(Duration::from_secs(2), async {
            while attempts.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            attempts.abort_all();
        }
        // The last sender goes with the dispatcher; the recorder then writes what it holds.
        drop(attempts);
        drop(self);
        let _ = recorder.await;
    }

    /// Claims what can start now and starts it; returns how many attempts started.
    async fn dispatch_due(&mut self, attempts: &mut JoinSet<()>) -> Result<usize, sqlx::Error> {
        let free = self.in_flight.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let saturated: Vec<String> = self
            .endpoints
            .iter()
            .filter(|(_, endpoint)| endpoint.claimed.available_permits() == 0)
            .map(|(endpoint, _)| endpoint.clone())
            .collect();
        let now = clock::now();
        let due = outbox::due(&self.db, &now, &saturated, free.min(256) * 2).await?;
        let per_endpoint = self.shared.config.per_endpoint;
        let mut slots: HashMap<&str, usize> = HashMap::new();
        let mut picked = Vec::new();
        for (id, endpoint) in &due {
            let left = slots.entry(endpoint.as_str()).or_insert_with(|| {
                self.endpoints
                    .get(endpoint)
                    .map_or(per_endpoint * 2, |e| e.claimed.available_permits())
            });
            if *left > 0 && picked.len() < free {
                *left -= 1;
                picked.push(id.clone());
            }
        }
        let lease_until = clock::after(super::lease(self.shared.config.timeout));
        let claimed = outbox::claim(&self.db, &picked, &now, &lease_until).await?;
        let targets = targets(&self.db, &claimed).await?;
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

/// Reads the targets of claimed deliveries: two queries, whatever the number.
async fn targets(
    db: &AnyPool,
    claimed: &[Claimed],
) -> Result<HashMap<String, Target>, sqlx::Error> {
    let mut found = HashMap::new();
    let webhooks: Vec<&str> = claimed
        .iter()
        .filter_map(|c| c.webhook_id.as_deref())
        .collect();
    if !webhooks.is_empty() {
        let sql = format!(
            "SELECT id, target_url, secret, is_active, status FROM webhooks WHERE id IN ({})",
            store::sql::list_placeholders(1, webhooks.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, String, i64, String)>(&sql);
        for id in &webhooks {
            query = query.bind(*id);
        }
        for (id, url, secret, active, status) in query.fetch_all(db).await? {
            let target = if active == 0 {
                Target::Paused
            } else if status != ENABLED {
                Target::Closed("the webhook was disabled after failing for too long")
            } else {
                Target::Send {
                    url,
                    secret,
                    headers: Vec::new(),
                }
            };
            found.insert(id, target);
        }
    }
    let types: Vec<&str> = claimed
        .iter()
        .filter(|c| c.webhook_id.is_none())
        .filter_map(|c| c.event_type_id.as_deref())
        .collect();
    if !types.is_empty() {
        let sql = format!(
            "SELECT id, body, signing_secret FROM event_types WHERE id IN ({})",
            store::sql::list_placeholders(1, types.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, Option<String>)>(&sql);
        for id in &types {
            query = query.bind(*id);
        }
        for (id, body, secret) in query.fetch_all(db).await? {
            let target = match serde_json::from_str::<EventTypeDefinition>(&body) {
                // Never sent unsigned: a type saved before send types had secrets gets one
                // when it is replaced (PUT), which shows it.
                Ok(EventTypeDefinition {
                    webhook_url: Some(_),
                    ..
                }) if secret.is_none() => Target::Held(
                    "the send type has no signing secret yet: replace it (PUT) to create one",
                ),
                Ok(EventTypeDefinition {
                    webhook_url: Some(url),
                    webhook_headers,
                    ..
                }) => Target::Send {
                    url,
                    secret: secret.unwrap_or_default(),
                    headers: webhook_headers
                        .into_iter()
                        .map(|h| (h.name, h.value))
                        .collect(),
                },
                _ => Target::Closed("the event type is no longer a send type"),
            };
            found.insert(id, target);
        }
    }
    Ok(found)
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
    // Fails only when the recorder has stopped; the lease then makes the delivery due again.
    let _ = shared.results.send(attempted).await;
}

/// Writes attempt results in batches, one transaction each: a single writer keeps SQLite's
/// lock uncontended and turns hundreds of small commits into a few.
async fn record_results(
    db: AnyPool,
    config: DeliveryConfig,
    wake: Wake,
    mut results: mpsc::Receiver<Attempted>,
) {
    let mut batch = Vec::new();
    while results.recv_many(&mut batch, 512).await > 0 {
        for attempt in 1.. {
            match record(&db, &config, &batch).await {
                Ok(()) => break,
                Err(error) if attempt < 5 => {
                    tracing::warn!(%error, "recording delivery attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(error) => {
                    // Their leases make these deliveries due again: retried, not lost.
                    tracing::error!(%error, count = batch.len(), "could not record delivery attempts");
                    break;
                }
            }
        }
        batch.clear();
        wake.notify_one();
    }
}

/// POSTs the payload with its Standard Webhooks headers; None error means a 2xx.
async fn send(
    shared: &Shared,
    delivery: &Claimed,
    url: &str,
    secret: &str,
    headers: &[(String, String)],
) -> (Outcome, Verdict) {
    let failed = |error: String| Outcome {
        status_code: None,
        error: Some(error),
    };
    // An address refused by its form (an internal IP literal, localhost) stays refused.
    if let Err(error) = schemas::target::check_url(url, shared.config.allow_private_targets) {
        return (failed(format!("target refused: {error}")), Verdict::Final);
    }
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign::signature(
        secret,
        &delivery.message_id,
        timestamp,
        delivery.payload.as_bytes(),
    );
    let mut request = shared
        .client
        .post(url)
        .timeout(shared.config.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .header("webhook-id", delivery.message_id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("x-sluice-event", delivery.event.as_str())
        .body(delivery.payload.clone());
    let outcome = match request.send().await {
        Ok(response) => {
            let status = response.status();
            Outcome {
                status_code: Some(status.as_u16()),
                error: (!status.is_success()).then(|| format!("the endpoint answered {status}")),
            }
        }
        Err(error) if error.is_timeout() => failed(format!(
            "no answer within {} s",
            shared.config.timeout.as_secs_f64()
        )),
        Err(error) => failed(describe(&error)),
    };
    (outcome, Verdict::EndpointFailed)
}

/// The innermost cause, which says what went wrong (refused address, connection refused).
fn describe(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let detail = cause.to_string();
    if error.is_connect() {
        format!("could not connect: {detail}")
    } else {
        format!("request failed: {detail}")
    }
}

/// Stores each outcome (delivered, due again later, or failed for good) and tracks how long
/// each subscription has been failing, all in one transaction.
async fn record(
    db: &AnyPool,
    config: &DeliveryConfig,
    batch: &[Attempted],
) -> Result<(), sqlx::Error> {
    let now = clock::now();
    let mut tx = db.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for Attempted {
        delivery,
        outcome,
        verdict,
        ..
    } in batch
    {
        if *verdict == Verdict::NotAttempted {
            outbox::release(&mut *tx, delivery, &now).await?;
            continue;
        }
        let delivered = outcome.error.is_none();
        let (status, retry_at, label) = if delivered {
            (outbox::DELIVERED, None, "delivered")
        } else {
            let retry = (*verdict != Verdict::Final)
                .then(|| config.retries.after(delivery.attempts))
                .flatten();
            match retry {
                Some(delay) => (outbox::PENDING, Some(clock::after(delay)), "retrying"),
                None => (outbox::FAILED, None, "failed"),
            }
        };
        outbox::record(
            &mut *tx,
            delivery,
            status,
            retry_at.as_deref(),
            outcome,
            &now,
        )
        .await?;
        if let Some(webhook) = &delivery.webhook_id {
            if delivered {
                super::health::succeeded(&mut *tx, webhook).await?;
            } else if *verdict == Verdict::EndpointFailed {
                super::health::failed(&mut tx, webhook, config.disable_after).await?;
            }
        }
        outcomes.push(label);
    }
    tx.commit().await?;
    for label in outcomes {
        metrics::report_delivery(label);
    }
    Ok(())
}
