//! The webhook dispatcher against a real SQLite outbox and a real HTTP receiver: a delivery
//! is POSTed once, signed, and marked delivered; a failing endpoint is retried on the schedule,
//! then dead-lettered, and disabled once it has failed for long enough; one slow endpoint holds
//! only its own slots; private targets are refused unless allowed; shutdown stops it; an
//! attempt whose claim was superseded records nothing; the outbox is read and claimed endpoint
//! by endpoint.

use std::time::Duration;

use consumer::webhooks::{DeliveryConfig, Dispatcher, RetrySchedule};
use sqlx::AnyPool;
use store::outbox::{self, DeliveryView, NewDelivery, RetryNow};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::apply::sqlite;
use crate::receiver::Receiver;
use crate::support::wait_until;

/// Long enough for a loaded CI machine; every wait ends as soon as its outcome is seen.
const WAIT: Duration = Duration::from_secs(15);

/// Fast retries, a short poll and two requests at a time per endpoint; loopback allowed.
fn config() -> DeliveryConfig {
    DeliveryConfig {
        allow_private_targets: true,
        timeout: Duration::from_secs(30),
        retries: RetrySchedule::new(vec![Duration::from_millis(50), Duration::from_millis(50)]),
        per_endpoint: 2,
        poll_every: Duration::from_millis(20),
        ..DeliveryConfig::default()
    }
}

/// A dispatcher running on its own task.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    fn start(db: &AnyPool, config: DeliveryConfig) -> Running {
        let dispatcher = Dispatcher::new(db.clone(), config).expect("dispatcher");
        let stop = CancellationToken::new();
        let task = tokio::spawn(dispatcher.run(stop.clone()));
        Running { stop, task }
    }

    /// Cancels it and waits for it to end, which must take no longer than its grace for
    /// attempts in flight (2 s) and then some.
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the dispatcher stops after shutdown")
            .expect("the dispatcher does not panic");
    }
}

/// A store `s` with a subscription `id` to every type (or to `types`), at `url`; returns its
/// signing secret.
async fn subscribe(db: &AnyPool, id: &str, url: &str, types: &str) -> String {
    let now = store::clock::now();
    sqlx::query(
        "INSERT INTO stores (id, name, created_at) VALUES ('s', 'test', $1) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&now)
    .execute(db)
    .await
    .expect("store");
    let secret = store::webhooks::generate_secret();
    sqlx::query(
        "INSERT INTO webhooks (id, store_id, target_url, types, is_active, status, secret, \
         created_at, updated_at) VALUES ($1, 's', $2, $3, 1, 'enabled', $4, $5, $5)",
    )
    .bind(id)
    .bind(url)
    .bind(types)
    .bind(&secret)
    .bind(&now)
    .execute(db)
    .await
    .expect("webhook");
    secret
}

/// Adds `n` deliveries for `webhook`, due now.
async fn enqueue(db: &AnyPool, webhook: &str, n: usize) {
    let deliveries: Vec<NewDelivery> = (0..n)
        .map(|i| {
            let message_id = store::webhooks::new_message_id();
            NewDelivery {
                store_id: "s".into(),
                payload: format!(
                    r#"{{"id":"{message_id}","type":"custom_event.received","n":{i}}}"#
                ),
                message_id,
                webhook_id: Some(webhook.into()),
                event_type_id: None,
                event: "custom_event.received".into(),
                contact_key: None,
            }
        })
        .collect();
    let mut tx = db.begin().await.expect("tx");
    outbox::enqueue(&mut tx, &deliveries, &store::clock::now())
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
}

/// A webhook's deliveries, newest first.
async fn deliveries(db: &AnyPool, webhook: &str) -> Vec<DeliveryView> {
    outbox::list(db, webhook, None, None, 1000)
        .await
        .expect("deliveries")
}

/// Waits until all `n` deliveries of `webhook` have `status`; returns them.
async fn wait_for_status(db: &AnyPool, webhook: &str, n: usize, status: &str) -> Vec<DeliveryView> {
    wait_until(
        WAIT,
        format!("{n} {status} deliveries to {webhook}"),
        || async {
            let found = deliveries(db, webhook).await;
            (found.len() == n && found.iter().all(|d| d.status == status)).then_some(found)
        },
    )
    .await
}

#[tokio::test]
async fn a_delivery_is_posted_once_signed_and_marked_delivered() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;
    let secret = subscribe(&db, "w1", &receiver.url("/ok"), "").await;
    enqueue(&db, "w1", 1).await;
    let dispatcher = Running::start(&db, config());

    let delivered = wait_for_status(&db, "w1", 1, outbox::DELIVERED).await;
    dispatcher.stop().await;
    assert_eq!(delivered[0].attempts, 1);
    assert_eq!(delivered[0].last_status_code, Some(200));
    let received = receiver.received("/ok");
    assert_eq!(received.len(), 1, "sent once");
    let request = &received[0];
    // The Standard Webhooks project's own verifier, not our code, checks the signature.
    standardwebhooks::Webhook::new(&secret)
        .expect("secret parses")
        .verify(&request.body, &request.headers)
        .expect("a valid signature");
    assert_eq!(request.header("webhook-id"), delivered[0].message_id);
    assert_eq!(request.header("x-sluice-event"), "custom_event.received");
    assert_eq!(request.header("content-type"), "application/json");
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["id"], delivered[0].message_id.as_str());
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_on_the_schedule_then_dead_lettered() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;
    subscribe(&db, "w1", &receiver.url("/fail"), "").await;
    enqueue(&db, "w1", 1).await;
    let dispatcher = Running::start(&db, config());

    let failed = wait_for_status(&db, "w1", 1, outbox::FAILED).await;
    dispatcher.stop().await;
    // The first attempt and one retry per delay in the schedule, then no more.
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(failed[0].last_status_code, Some(500));
    let received = receiver.received("/fail");
    assert_eq!(received.len(), 3);
    for pair in received.windows(2) {
        assert_eq!(pair[0].header("webhook-id"), pair[1].header("webhook-id"));
        // 50 ms less the schedule's jitter of a fifth.
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(40), "retried after {gap:?}");
    }
    let (status,): (String,) = sqlx::query_as("SELECT status FROM webhooks WHERE id = 'w1'")
        .fetch_one(&db)
        .await
        .expect("webhook");
    assert_eq!(
        status,
        store::webhooks::ENABLED,
        "a day's failing is allowed"
    );
}

#[tokio::test]
async fn an_endpoint_failing_past_the_limit_is_disabled_and_others_told() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;
    subscribe(&db, "w1", &receiver.url("/fail"), "").await;
    subscribe(&db, "w2", &receiver.url("/ok"), "webhook.disabled").await;
    enqueue(&db, "w1", 1).await;
    let config = DeliveryConfig {
        disable_after: Duration::ZERO,
        ..config()
    };
    let dispatcher = Running::start(&db, config);

    // Disabled by its first failure, the delivery is not tried again.
    let failed = wait_for_status(&db, "w1", 1, outbox::FAILED).await;
    let notice = wait_for_status(&db, "w2", 1, outbox::DELIVERED).await;
    dispatcher.stop().await;
    assert_eq!(failed[0].attempts, 2);
    assert_eq!(receiver.received("/fail").len(), 1);
    assert_eq!(notice[0].event, "webhook.disabled");
    let body: serde_json::Value =
        serde_json::from_slice(&receiver.received("/ok")[0].body).expect("JSON");
    assert_eq!(body["data"]["webhookId"], "w1");
    let (status,): (String,) = sqlx::query_as("SELECT status FROM webhooks WHERE id = 'w1'")
        .fetch_one(&db)
        .await
        .expect("webhook");
    assert_eq!(status, store::webhooks::DISABLED);
}

#[tokio::test]
async fn a_slow_endpoint_holds_only_its_own_slots() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;
    subscribe(&db, "slow", &receiver.url("/slow"), "").await;
    subscribe(&db, "fast", &receiver.url("/ok"), "").await;
    enqueue(&db, "slow", 8).await;
    enqueue(&db, "fast", 8).await;
    let dispatcher = Running::start(&db, config());

    // While the slow endpoint holds every request, the fast one gets all of its deliveries.
    wait_for_status(&db, "fast", 8, outbox::DELIVERED).await;
    wait_until(WAIT, "the slow endpoint to hold two requests", || async {
        (receiver.open("/slow") >= 2).then_some(())
    })
    .await;
    assert_eq!(receiver.received("/slow").len(), 2);
    receiver.open_gate();
    wait_for_status(&db, "slow", 8, outbox::DELIVERED).await;
    dispatcher.stop().await;
    assert_eq!(
        receiver.most_open("/slow"),
        2,
        "at most per_endpoint in flight"
    );
    assert_eq!(receiver.received("/slow").len(), 8, "each sent once");
    assert_eq!(receiver.received("/ok").len(), 8);
}

#[tokio::test]
async fn endpoints_with_backlogs_leave_slots_for_the_others() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;
    // Eight deliveries in flight in all; one request at a time per endpoint, so a window of
    // four claimed, or two once half the eight are taken.
    let config = DeliveryConfig {
        per_endpoint: 1,
        max_in_flight: 8,
        ..config()
    };
    subscribe(&db, "hang1", &receiver.url("/slow"), "").await;
    subscribe(&db, "hang2", &receiver.url("/slow"), "").await;
    subscribe(&db, "fast", &receiver.url("/ok"), "").await;
    enqueue(&db, "hang1", 10).await;
    enqueue(&db, "hang2", 10).await;
    let dispatcher = Running::start(&db, config);
    wait_until(WAIT, "both hanging endpoints to hold a request", || async {
        (receiver.open("/slow") == 2).then_some(())
    })
    .await;
    // Four and two claimed: two of the eight are left. With a full window each, the two
    // hanging endpoints would hold all eight until their attempts time out (30 s).
    enqueue(&db, "fast", 2).await;
    wait_for_status(&db, "fast", 2, outbox::DELIVERED).await;
    receiver.open_gate();
    wait_for_status(&db, "hang1", 10, outbox::DELIVERED).await;
    wait_for_status(&db, "hang2", 10, outbox::DELIVERED).await;
    dispatcher.stop().await;
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;
    subscribe(&db, "w1", &receiver.url("/ok"), "").await;
    enqueue(&db, "w1", 1).await;
    let refusing = DeliveryConfig {
        allow_private_targets: false,
        ..config()
    };
    let dispatcher = Running::start(&db, refusing);

    // Refused for good, without a retry and without a connection.
    let failed = wait_for_status(&db, "w1", 1, outbox::FAILED).await;
    dispatcher.stop().await;
    assert_eq!(failed[0].attempts, 1);
    let error = failed[0].last_error.as_deref().unwrap_or_default();
    assert!(error.starts_with("target refused"), "{error}");
    assert!(receiver.received("/ok").is_empty());

    let retried = outbox::retry_now(&db, "w1", &failed[0].id)
        .await
        .expect("retry");
    assert!(matches!(retried, RetryNow::Queued(_)), "{retried:?}");
    let dispatcher = Running::start(&db, config());
    wait_for_status(&db, "w1", 1, outbox::DELIVERED).await;
    dispatcher.stop().await;
    assert_eq!(receiver.received("/ok").len(), 1);
}

#[tokio::test]
async fn shutdown_stops_the_dispatcher_even_with_an_attempt_in_flight() {
    let (db, _dir) = sqlite().await;
    let receiver = Receiver::start().await;

    // Idle: it stops at once.
    Running::start(&db, config()).stop().await;

    subscribe(&db, "slow", &receiver.url("/slow"), "").await;
    enqueue(&db, "slow", 1).await;
    let dispatcher = Running::start(&db, config());
    wait_until(WAIT, "the slow endpoint to hold the request", || async {
        (receiver.open("/slow") == 1).then_some(())
    })
    .await;
    dispatcher.stop().await;
    // The attempt was cut off unrecorded: the delivery waits, pending, for its lease to end.
    let pending = deliveries(&db, "slow").await;
    assert_eq!(pending[0].status, outbox::PENDING);
    assert_eq!(pending[0].attempts, 1);
}

#[tokio::test]
async fn an_attempt_whose_lease_ran_out_and_was_claimed_again_records_nothing() {
    let (db, _dir) = sqlite().await;
    subscribe(&db, "w1", "http://127.0.0.1:9/never", "").await;
    enqueue(&db, "w1", 3).await;
    let now = store::clock::now();
    // A lease that has already run out: the deliveries are due again at once, as if their
    // attempts had hung past it.
    let mut connection = db.acquire().await.expect("connection");
    let first = outbox::claim_due(&mut connection, &[("w1", 10)], &now, &now)
        .await
        .expect("claim");
    assert_eq!(first.len(), 3);
    let again = outbox::claim_due(
        &mut connection,
        &[("w1", 1)],
        &now,
        &store::clock::after(WAIT),
    )
    .await
    .expect("claim again");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let mut due: Vec<String> = first.iter().map(|c| c.id.clone()).collect();
    // The one claimed again first.
    due.sort_by_key(|id| *id != again[0].id);
    let ok = outbox::Outcome {
        status_code: Some(200),
        error: None,
    };
    let delivered = |claimed| outbox::Attempt {
        claimed,
        status: outbox::DELIVERED,
        retry_at: None,
        outcome: &ok,
    };
    // The first claims' outcomes, all in one statement: the one claimed again is not theirs.
    let mut tx = db.begin().await.expect("tx");
    let attempts: Vec<_> = first.iter().map(delivered).collect();
    outbox::record_all(&mut tx, &attempts, &now)
        .await
        .expect("record");
    tx.commit().await.expect("commit");
    let status = |id: &str, views: &[DeliveryView]| {
        views
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.status.clone())
            .expect("listed")
    };
    let views = deliveries(&db, "w1").await;
    assert_eq!(
        status(&due[0], &views),
        outbox::PENDING,
        "the newer claim's to record"
    );
    assert_eq!(status(&due[1], &views), outbox::DELIVERED);
    assert_eq!(status(&due[2], &views), outbox::DELIVERED);
    let mut tx = db.begin().await.expect("tx");
    outbox::record_all(&mut tx, &[delivered(&again[0])], &now)
        .await
        .expect("record");
    tx.commit().await.expect("commit");
    let views = deliveries(&db, "w1").await;
    assert_eq!(status(&due[0], &views), outbox::DELIVERED);
}

#[tokio::test]
async fn the_outbox_is_read_endpoint_by_endpoint_and_claimed_oldest_first_within_each() {
    let (db, _dir) = sqlite().await;
    for id in ["a", "b", "idle", "paused"] {
        subscribe(&db, id, "http://127.0.0.1:9/never", "").await;
    }
    // Five for `a`, a few milliseconds apart so their order is their age.
    for _ in 0..5 {
        enqueue(&db, "a", 1).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    enqueue(&db, "b", 1).await;
    enqueue(&db, "paused", 3).await;
    sqlx::query("UPDATE webhooks SET is_active = 0 WHERE id = 'paused'")
        .execute(&db)
        .await
        .expect("pause");
    let mut connection = db.acquire().await.expect("connection");
    let names = |found: Vec<outbox::PendingEndpoint>| -> Vec<String> {
        let mut names: Vec<String> = found.into_iter().map(|p| p.endpoint).collect();
        names.sort();
        names
    };

    // Endpoints with pending deliveries (none for `idle`); a paused one's wait, undated.
    let found = outbox::pending_endpoints(&mut connection, "", 10)
        .await
        .expect("endpoints");
    let a_ids: Vec<String> = {
        let mut ids: Vec<String> = deliveries(&db, "a")
            .await
            .into_iter()
            .map(|d| d.id)
            .collect();
        ids.sort();
        ids
    };
    let earliest = |id: &str| {
        let found = found.iter().find(|p| p.endpoint == id).expect("listed");
        found.earliest.clone()
    };
    assert!(
        earliest("a").is_some() && earliest("a") <= earliest("b"),
        "a's oldest came first"
    );
    assert_eq!(earliest("paused"), None);
    assert_eq!(names(found), ["a", "b", "paused"]);
    // Bounded, going on after the last one listed.
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = outbox::pending_endpoints(&mut connection, &after, 1)
            .await
            .expect("page");
        assert!(page.len() <= 1, "{page:?}");
        let Some(last) = page.first() else { break };
        after = last.endpoint.clone();
        paged.push(after.clone());
    }
    assert_eq!(paged, ["a", "b", "paused"]);

    // Each endpoint gives at most what is asked of it, its oldest first; a paused one nothing.
    let now = store::clock::now();
    let lease = store::clock::after(WAIT);
    let claimed = outbox::claim_due(
        &mut connection,
        &[("a", 2), ("b", 5), ("paused", 5)],
        &now,
        &lease,
    )
    .await
    .expect("claim");
    let mut of_a: Vec<String> = claimed
        .iter()
        .filter(|c| c.endpoint() == "a")
        .map(|c| c.id.clone())
        .collect();
    of_a.sort();
    assert_eq!(of_a, a_ids[..2]);
    assert_eq!(claimed.iter().filter(|c| c.endpoint() == "b").count(), 1);
    assert!(claimed.iter().all(|c| c.endpoint() != "paused"));
    // Claimed ones are not due again within their lease; the rest of `a` are.
    let rest = outbox::claim_due(&mut connection, &[("a", 10), ("b", 10)], &now, &lease)
        .await
        .expect("claim the rest");
    let mut rest: Vec<String> = rest.into_iter().map(|c| c.id).collect();
    rest.sort();
    assert_eq!(rest, a_ids[2..]);
    // Still pending (leased), so still listed, but due only when the lease runs out.
    let found = outbox::pending_endpoints(&mut connection, "", 10)
        .await
        .expect("endpoints");
    assert!(
        found
            .iter()
            .all(|p| p.endpoint == "paused" || p.earliest.as_deref() > Some(now.as_str())),
        "{found:?}"
    );
}
