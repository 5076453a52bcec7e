//! Kafka mode end to end, against a real broker (tansu, started by `scripts/test`), real
//! PostgreSQL and the real `consumer` binary: gateway → broker → consumer → PostgreSQL, seen
//! over HTTP only. Faults tried: a consumer killed with SIGKILL while events stream in and
//! restarted, the same message delivered twice, and a message that is not an envelope. The
//! consumer binary also runs workflows and delivers signed webhooks, retrying a failure.

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{wait_until, Backend, TestGateway};
use crate::processes::{
    brokers, consumer_binary, free_port, ops, ops_until, ConsumerProcess, OwnBroker, OwnPostgres,
};

/// The Kafka tests run one at a time: each starts gateways, consumers and sometimes a broker,
/// which together would starve two cores and turn timeouts into noise.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A gateway in Kafka mode on a fresh PostgreSQL database and a fresh topic.
async fn kafka_gateway() -> (TestGateway, String) {
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let brokers = brokers();
    let topic_for_config = topic.clone();
    let gw = TestGateway::start_with(Backend::Postgres, move |config| {
        config.queue = gateway::QueueKind::Kafka;
        config.kafka.kafka_brokers = brokers;
        config.kafka_topic = topic_for_config;
        config.topics.kafka_partitions = std::num::NonZeroU32::new(3).expect("non-zero");
        config.delivery.allow_private_targets = true;
    })
    .await;
    gw.event_type(order_paid()).await;
    (gw, topic)
}

fn order_paid() -> serde_json::Value {
    json!({
        "name": "Order paid", "category": "receive", "alias": "order-paid", "receiveType": "webhook",
        "fields": [{"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
                   {"id": "n", "name": "N", "type": "integer", "required": true}]
    })
}

/// Posts one order-paid event to the webhook path, whatever the answer.
async fn post(gw: &TestGateway, email: &str, n: u64) -> crate::harness::Reply {
    gw.call(
        Method::POST,
        &format!("/v1/{}/custom-events/alias/order-paid", gw.store_id),
        None,
        Some(&json!({"email": email, "n": n})),
    )
    .await
}

/// Posts one order-paid event that must be accepted; its id.
async fn send(gw: &TestGateway, email: &str, n: u64) -> String {
    let reply = post(gw, email, n).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_through_kafka_and_survive_a_killed_consumer() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let ready = gw.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let mut consumer = ConsumerProcess::start(&gw, &topic, &group);
    for n in 0..50 {
        send(&gw, &format!("k{}@example.com", n % 5), n).await;
    }
    for c in 0..5 {
        gw.activities_within(&format!("k{c}@example.com"), 10, Duration::from_secs(60))
            .await;
    }
    // Kill the consumer without warning while more events stream in, then start another.
    let sender = {
        let (base, store) = (gw.base.clone(), gw.store_id.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..300u64 {
                let reply = client
                    .post(format!("{base}/v1/{store}/custom-events/alias/order-paid"))
                    .json(&json!({"email": "stream@example.com", "n": n}))
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(reply.status(), StatusCode::CREATED);
            }
        })
    };
    // Poison in the stream as well: messages that are no envelope, and envelopes PostgreSQL
    // refuses. Each must be dead-lettered with its reason and hold up nothing.
    let producer: FutureProducer = crate::processes::client_config()
        .create()
        .expect("producer");
    let mut poison: Vec<Vec<u8>> = Vec::new();
    for p in 0..3 {
        poison.push(format!("{{garbage {p}").into_bytes());
        poison.push(
            json!({
                "id": uuid::Uuid::now_v7().to_string(), "storeId": gw.store_id,
                "eventTypeId": "t", "eventTypeVersion": 1, "alias": "order-paid",
                "receiveType": "webhook", "receivedAt": "2026-11-23T10:00:00.000Z",
                "contact": {"trackerId": format!("poison\u{0}{p}")}, "fields": {}
            })
            .to_string()
            .into_bytes(),
        );
    }
    for (i, payload) in poison.iter().enumerate() {
        producer
            .send(
                FutureRecord::<str, [u8]>::to(&topic)
                    .key(&format!("poison-{i}"))
                    .payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
        if i == 2 {
            // A moment for the consumer to take some of the stream, so the kill lands in the
            // middle of it; the assertions below hold whatever it had read by then.
            tokio::time::sleep(Duration::from_millis(300)).await;
            consumer.kill();
        }
    }
    sender.await.expect("sender");
    // The replacement joins a new group, so it reads the topic from the start: every event
    // the killed consumer had applied comes again, and must change nothing. (A replacement in
    // the same group also works, but tansu sometimes never finishes rebalancing a group whose
    // member died mid-join, which would make this test depend on the broker's luck.)
    let _restarted = ConsumerProcess::start(&gw, &topic, &format!("{group}-after"));
    // The killed member's partitions move once its session times out.
    let activities = gw
        .activities_within("stream@example.com", 300, Duration::from_secs(90))
        .await;
    let mut seen: Vec<u64> = activities
        .iter()
        .map(|a| a["fields"]["n"].as_u64().expect("n"))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..300).collect::<Vec<_>>(),
        "each event exactly once"
    );
    // Every poison message is on the dead-letter topic with its reason (twice for those the
    // killed consumer had reached: the replacement read the topic again).
    let letters = dead_letters(&topic, poison.len(), Duration::from_secs(60)).await;
    for message in &poison {
        let reason = letters
            .iter()
            .find(|(payload, _)| payload == message)
            .map(|(_, reason)| reason.as_str())
            .unwrap_or_else(|| {
                panic!("{} was not dead-lettered", String::from_utf8_lossy(message))
            });
        let expected = if message.starts_with(b"{garbage") {
            "not an event envelope"
        } else {
            "the store refused the event"
        };
        assert!(reason.starts_with(expected), "{reason}");
    }
}

/// Reads the dead-letter topic of `topic` until it holds `at_least` distinct payloads;
/// each payload with its `sluice-reason`.
async fn dead_letters(topic: &str, at_least: usize, limit: Duration) -> Vec<(Vec<u8>, String)> {
    let reader: StreamConsumer = crate::processes::client_config()
        .set("group.id", format!("dlq-{}", uuid::Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("reader");
    reader
        .subscribe(&[&queue::kafka::dead_letter_topic(topic)])
        .expect("subscribe");
    let deadline = tokio::time::Instant::now() + limit;
    let mut letters: Vec<(Vec<u8>, String)> = Vec::new();
    loop {
        let mut distinct: Vec<&Vec<u8>> = letters.iter().map(|(p, _)| p).collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() >= at_least {
            return letters;
        }
        let message = tokio::time::timeout_at(deadline, reader.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} dead letters within {limit:?}", distinct.len()))
            .expect("message");
        let reason = message
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|h| h.key == "sluice-reason")
                    .and_then(|h| h.value)
            })
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        letters.push((message.payload().unwrap_or_default().to_vec(), reason));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_joining_and_leaving_the_group_lose_and_double_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let contacts = 10;
    let mut first = ConsumerProcess::start(&gw, &topic, &group);
    let send_round = |round: u64| {
        let gw = &gw;
        async move {
            for n in 0..100 {
                send(
                    gw,
                    &format!("g{}@example.com", n % contacts),
                    round * 100 + n,
                )
                .await;
            }
        }
    };
    let all_stored = |per_contact: usize| {
        let gw = &gw;
        async move {
            for c in 0..contacts {
                gw.activities_within(
                    &format!("g{c}@example.com"),
                    per_contact,
                    Duration::from_secs(90),
                )
                .await;
            }
        }
    };
    send_round(0).await;
    all_stored(10).await;
    // A second member joins: the partitions are shared out again.
    let _second = ConsumerProcess::start(&gw, &topic, &group);
    send_round(1).await;
    all_stored(20).await;
    // The first leaves cleanly: its partitions move to the second, from committed offsets.
    first.terminate();
    send_round(2).await;
    all_stored(30).await;
    let mut seen: Vec<u64> = Vec::new();
    for c in 0..contacts {
        let activities = gw
            .activities_within(&format!("g{c}@example.com"), 30, Duration::from_secs(5))
            .await;
        seen.extend(
            activities
                .iter()
                .map(|a| a["fields"]["n"].as_u64().expect("n")),
        );
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..300).collect::<Vec<_>>(),
        "each event exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_change_nothing_and_poison_messages_are_dead_lettered() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let _consumer = ConsumerProcess::start(&gw, &topic, &group);
    let producer: FutureProducer = crate::processes::client_config()
        .create()
        .expect("producer");

    // An envelope as the gateway writes it, delivered twice, and garbage between the two.
    let first = send(&gw, "dup@example.com", 1).await;
    gw.activities_eventually("dup@example.com", 1).await;
    let envelope = json!({
        "id": "0196f0a0-0000-7000-8000-000000000001", "storeId": gw.store_id,
        "eventTypeId": "t", "eventTypeVersion": 1, "alias": "order-paid", "receiveType": "webhook",
        "receivedAt": "2026-11-23T10:00:00.000Z", "contact": {"email": "dup@example.com"},
        "fields": {"email": "dup@example.com", "n": 2}
    })
    .to_string();
    // An envelope PostgreSQL refuses (U+0000 in text), as an older gateway could write.
    let refused = json!({
        "id": "0196f0a0-0000-7000-8000-00000000dead", "storeId": gw.store_id,
        "eventTypeId": "t", "eventTypeVersion": 1, "alias": "order-paid", "receiveType": "webhook",
        "receivedAt": "2026-11-23T10:00:00.000Z", "contact": {"trackerId": "nul\u{0}tracker"},
        "fields": {}
    })
    .to_string();
    for payload in [
        envelope.as_bytes(),
        b"{not an envelope".as_slice(),
        refused.as_bytes(),
        envelope.as_bytes(),
    ] {
        producer
            .send(
                FutureRecord::<str, [u8]>::to(&topic)
                    .key("k")
                    .payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }
    // Consumption goes on past the poison message: a later event arrives.
    let last = send(&gw, "dup@example.com", 3).await;
    let activities = gw.activities_eventually("dup@example.com", 3).await;
    let ids: Vec<&str> = activities
        .iter()
        .map(|a| a["eventId"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(&first.as_str()) && ids.contains(&last.as_str()));
    assert!(ids.contains(&"0196f0a0-0000-7000-8000-000000000001"));

    // Both poison messages are on the dead-letter topic, each with its reason.
    let reasons = dead_letters(&topic, 2, Duration::from_secs(20)).await;
    assert_eq!(reasons[0].0, b"{not an envelope".to_vec());
    assert!(
        reasons[0].1.starts_with("not an event envelope"),
        "{:?}",
        reasons[0].1
    );
    assert_eq!(reasons[1].0, refused.as_bytes().to_vec());
    assert!(
        reasons[1].1.starts_with("the store refused the event") && reasons[1].1.contains("0x00"),
        "{:?}",
        reasons[1].1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_gets_503s_and_nothing_acknowledged_is_lost() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let broker = OwnBroker::start().await;
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let (brokers, topic_for_config) = (broker.brokers.clone(), topic.clone());
    let gw = TestGateway::start_with(Backend::Postgres, move |config| {
        config.queue = gateway::QueueKind::Kafka;
        config.kafka.kafka_brokers = brokers;
        config.kafka_topic = topic_for_config;
        config.kafka_delivery_timeout = Duration::from_millis(1500);
    })
    .await;
    gw.event_type(order_paid()).await;
    let mut acknowledged = Vec::new();
    for n in 0..10 {
        acknowledged.push(send(&gw, "stall@example.com", n).await);
    }

    // The broker stops answering: events are refused with 503 and Retry-After, never
    // acknowledged and dropped.
    broker.signal("-STOP");
    let mut refused = 0;
    for n in 10..14 {
        let reply = post(&gw, "stall@example.com", n).await;
        match reply.status {
            StatusCode::CREATED => {
                acknowledged.push(reply.body["id"].as_str().expect("id").to_owned())
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                reply.problem(StatusCode::SERVICE_UNAVAILABLE);
                assert!(reply.headers.contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(refused > 0, "a stalled broker must not yield 201s");
    wait_until(
        Duration::from_secs(15),
        "readyz to report the broker",
        || async {
            let status = gw.call(Method::GET, "/readyz", None, None).await.status;
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
        },
    )
    .await;

    // It comes back: events are accepted again, and every acknowledged one is stored once.
    broker.signal("-CONT");
    let attempt = std::sync::atomic::AtomicU64::new(100);
    let recovered = wait_until(
        Duration::from_secs(30),
        "events accepted after the broker resumed",
        || async {
            let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let reply = post(&gw, "stall@example.com", n).await;
            (reply.status == StatusCode::CREATED).then_some(reply)
        },
    )
    .await;
    acknowledged.push(recovered.body["id"].as_str().expect("id").to_owned());
    // Consumed once the broker is healthy: the stall is the producer's test.
    let _consumer = ConsumerProcess::start_on(&broker.brokers, &gw, &topic, "stall");
    wait_until(
        Duration::from_secs(60),
        "every acknowledged event stored",
        || async {
            let page = gw
                .get(
                    "/v1/contacts/stall@example.com/activities?limit=1000",
                    &gw.admin_key,
                )
                .await;
            let stored: Vec<String> = page.body["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|a| a["eventId"].as_str().expect("id").to_owned())
                .collect();
            let mut unique = stored.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), stored.len(), "an event was stored twice");
            acknowledged
                .iter()
                .all(|id| stored.contains(id))
                .then_some(())
        },
    )
    .await;
}

/// A gateway in Kafka mode on `postgres`, publishing to `topic`, with the order-paid type.
async fn kafka_gateway_on(postgres: &OwnPostgres, topic: &str) -> TestGateway {
    let (brokers, topic, url) = (brokers(), topic.to_owned(), postgres.url());
    let gw = TestGateway::start_on_database(url, move |config| {
        config.queue = gateway::QueueKind::Kafka;
        config.kafka.kafka_brokers = brokers;
        config.kafka_topic = topic;
    })
    .await;
    gw.event_type(order_paid()).await;
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_the_consumer_loses_and_doubles_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let postgres = OwnPostgres::start();
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let gw = kafka_gateway_on(&postgres, &topic).await;
    let _consumer = ConsumerProcess::start(&gw, &topic, "restart");
    let mut acknowledged = Vec::new();
    for n in 0..100 {
        acknowledged.push(send(&gw, "pg@example.com", n).await);
    }
    // Restart the store while the consumer is still working through those events.
    postgres.pg_ctl("restart");
    for n in 100..120 {
        acknowledged.push(send(&gw, "pg@example.com", n).await);
    }
    let activities = gw
        .activities_within("pg@example.com", 120, Duration::from_secs(60))
        .await;
    let mut stored: Vec<&str> = activities
        .iter()
        .map(|a| a["eventId"].as_str().expect("id"))
        .collect();
    stored.sort_unstable();
    acknowledged.sort();
    assert_eq!(
        stored,
        acknowledged.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_binary_runs_workflows_and_delivers_signed_webhooks() {
    use crate::receiver::{Answer, Receiver};
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let trigger = gw.get("/v1/custom-integrations/", &gw.admin_key).await.body["results"][0]["id"]
        .as_str()
        .map(|integration| format!("/v1/custom-integrations/{integration}/custom-event-types/"))
        .expect("the integration kafka_gateway made");
    let types = gw.get(&trigger, &gw.admin_key).await;
    let type_id = types.body["results"][0]["id"]
        .as_str()
        .expect("type id")
        .to_owned();
    let receiver = Receiver::scripted(vec![Answer::Status(502)], Answer::Ok).await;
    let hook = gw
        .post(
            "/v1/webhooks",
            &gw.admin_key,
            json!({"targetUrl": receiver.url, "types": ["custom_event.received"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let workflow = gw
        .post(
            "/v1/workflows",
            &gw.admin_key,
            json!({
                "name": "Remember n", "trigger": {"customEventTypeId": type_id},
                "actions": [{"type": "setContactFields", "fields": {"lastN": "{{event.n}}"}}]
            }),
        )
        .await;
    assert_eq!(workflow.status, StatusCode::CREATED, "{}", workflow.body);
    let _consumer = ConsumerProcess::start(
        &gw,
        &topic,
        &format!("group-{}", uuid::Uuid::new_v4().simple()),
    );
    let id = send(&gw, "wf@example.com", 7).await;

    // Refused once, then delivered again with the same message id and a valid signature.
    let received = receiver
        .wait_for(2, Duration::from_secs(60), |_| true)
        .await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    let secret = hook.body["secret"].as_str().expect("secret");
    standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .verify(&received[1].body, &received[1].headers)
        .expect("valid signature");
    assert_eq!(received[1].json()["data"]["eventId"], id.as_str());
    let contact = gw.get("/v1/contacts/wf@example.com", &gw.admin_key).await;
    assert_eq!(contact.body["fields"], json!({"lastN": 7}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stuck_on_an_unreachable_store_says_so_and_recovers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let postgres = OwnPostgres::start();
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let gw = kafka_gateway_on(&postgres, &topic).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _consumer = ConsumerProcess::start_with(
        &brokers(),
        &gw,
        &topic,
        "stuck",
        &["--metrics-listen", &listen, "--stuck-after", "1s"],
    );
    send(&gw, "stuck@example.com", 0).await;
    gw.activities_within("stuck@example.com", 1, Duration::from_secs(60))
        .await;
    ops_until(port, "/readyz", StatusCode::OK, Duration::from_secs(20)).await;
    assert_eq!(ops(port, "/nope").await.0, StatusCode::NOT_FOUND);

    // The store goes away; events keep arriving on the topic (written here, as a gateway that
    // had its types cached would).
    postgres.pg_ctl("stop");
    let producer: FutureProducer = crate::processes::client_config()
        .create()
        .expect("producer");
    for n in 1..=20u64 {
        let envelope = json!({
            "id": uuid::Uuid::now_v7().to_string(), "storeId": gw.store_id,
            "eventTypeId": "t", "eventTypeVersion": 1, "alias": "order-paid",
            "receiveType": "webhook", "receivedAt": "2026-11-23T10:00:00.000Z",
            "contact": {"email": "stuck@example.com"},
            "fields": {"email": "stuck@example.com", "n": n}
        })
        .to_string();
        producer
            .send(
                FutureRecord::<str, str>::to(&topic)
                    .key("stuck")
                    .payload(&envelope),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }
    // Not ready once the batch has failed past --stuck-after; the lag and the failing-batch
    // gauge say why.
    // (It may first say the store does not answer its ping; the stuck batch is what must show.)
    wait_until(
        Duration::from_secs(30),
        "readiness to report the stuck batch",
        || async {
            let (status, why) = ops(port, "/readyz").await;
            (status == StatusCode::SERVICE_UNAVAILABLE && why.contains("failing")).then_some(())
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "the lag and failing-batch gauges to show the stall",
        || async {
            let (_, metrics) = ops(port, "/metrics").await;
            let gauge = |name: &str| {
                metrics
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            (gauge("sluice_consumer_lag_events ") >= 20.0
                && gauge("sluice_consumer_failing_batch_seconds ") > 0.0)
                .then_some(())
        },
    )
    .await;

    // The store is back: the batch goes through, readiness returns, every event is stored.
    postgres.pg_ctl("start");
    gw.activities_within("stuck@example.com", 21, Duration::from_secs(60))
        .await;
    ops_until(port, "/readyz", StatusCode::OK, Duration::from_secs(30)).await;

    // The consumer binary's exposition says what each metric is, and its latencies are
    // histograms (buckets a dashboard can aggregate across consumers), not summaries.
    let (_, metrics) = ops(port, "/metrics").await;
    for line in [
        "# HELP sluice_consumer_lag_events ",
        "# HELP sluice_event_end_to_end_seconds ",
        "# TYPE sluice_event_end_to_end_seconds histogram",
        "sluice_event_end_to_end_seconds_bucket{le=\"0.5\"}",
    ] {
        assert!(metrics.contains(line), "{line:?} missing from\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_binary_starts_cleanly_or_says_why_not() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite:{}/consumer.db", dir.path().display());
    let run = |args: Vec<String>| {
        let database = database.clone();
        async move {
            let child = tokio::process::Command::new(consumer_binary())
                .args(["--database-url", &database])
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("start consumer");
            let output = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
                .await
                .expect("the consumer gave up within 40 s")
                .expect("output");
            (
                output.status,
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    // Bad input: a metrics port another process holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let (status, stderr) = run(vec!["--metrics-listen".into(), address.clone()]).await;
    assert!(!status.success());
    assert!(stderr.contains(&address), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
    // Bad input: brokers nobody listens on.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (status, stderr) = run(vec![
        "--kafka-brokers".into(),
        nowhere.clone(),
        "--metrics-listen".into(),
        "127.0.0.1:0".into(),
    ])
    .await;
    assert!(!status.success());
    assert!(stderr.contains(&nowhere), "the brokers are named: {stderr}");

    // Started before any gateway, the consumer creates the topic with the partitions asked for.
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let mut child = Command::new(consumer_binary())
        .args(["--database-url", &database, "--kafka-brokers", &brokers()])
        .args(["--kafka-topic", &topic, "--kafka-partitions", "4"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start consumer");
    let admin: StreamConsumer = crate::processes::client_config()
        .set("group.id", "metadata")
        .create()
        .expect("client");
    let partitions = wait_until(Duration::from_secs(30), "the topic to exist", || async {
        admin
            .fetch_metadata(Some(&topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
            .filter(|found| *found > 0)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(partitions, 4);
}

/// `consumer::run` is the whole consumer process, so a test can run it in-process on port 0:
/// it joins the group, stores what the gateway publishes, answers readiness on its own
/// listener, and returns `Ok` once its shutdown future resolves, closing that listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_run_consumes_in_process_and_returns_when_told_to_stop() {
    use clap::Parser;
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let config = consumer::config::Config::try_parse_from([
        "consumer",
        "--kafka-brokers",
        &brokers(),
        "--kafka-topic",
        &topic,
        "--group",
        &group,
        "--database-url",
        gw.storage.database_url.as_deref().expect("database url"),
    ])
    .expect("consumer flags");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    // A recorder of its own, not installed: the process-wide one belongs to `main`.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer::run(config, metrics, listener, async {
        let _ = stopped.await;
    }));
    for n in 0..5 {
        send(&gw, "in-process@example.com", n).await;
    }
    gw.activities_eventually("in-process@example.com", 5).await;
    ops_until(port, "/readyz", StatusCode::OK, Duration::from_secs(30)).await;

    stop.send(()).expect("the consumer is running");
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stops within 30 s")
        .expect("task")
        .expect("stops cleanly");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the operations port is closed once run returns"
    );
}

/// Segments in Kafka mode: two consumer processes share the topic (each with its own sweeper,
/// on one PostgreSQL), a contact enters when its third order within the window arrives and
/// leaves when the window passes, and each transition is delivered once, signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_keep_segments_and_announce_each_transition_once() {
    use crate::receiver::{Answer, Receiver};
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let integration = gw.get("/v1/custom-integrations/", &gw.admin_key).await.body["results"][0]
        ["id"]
        .as_str()
        .expect("the integration kafka_gateway made")
        .to_owned();
    let types = gw
        .get(
            &format!("/v1/custom-integrations/{integration}/custom-event-types/"),
            &gw.admin_key,
        )
        .await;
    let type_id = types.body["results"][0]["id"]
        .as_str()
        .expect("type id")
        .to_owned();
    let receiver = Receiver::start(Answer::Ok).await;
    let hook = gw
        .post(
            "/v1/webhooks",
            &gw.admin_key,
            json!({"targetUrl": receiver.url, "types": ["segment.entered", "segment.exited"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let segment = gw
        .post(
            "/v1/segments",
            &gw.admin_key,
            json!({"name": "Busy", "conditions": [{"event": {"customEventTypeId": type_id,
                   "within": "4s", "count": {"op": "gte", "value": 3}}}]}),
        )
        .await;
    assert_eq!(segment.status, StatusCode::CREATED, "{}", segment.body);
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let _first = ConsumerProcess::start(&gw, &topic, &group);
    let _second = ConsumerProcess::start(&gw, &topic, &group);
    for email in ["ann@example.com", "bob@example.com"] {
        for n in 1..=3 {
            send(&gw, email, n).await;
        }
    }
    let kinds = |kind: &'static str| {
        move |r: &crate::receiver::Received| r.header("x-sluice-event") == kind
    };
    receiver
        .wait_for(2, Duration::from_secs(60), kinds("segment.entered"))
        .await;
    receiver
        .wait_for(2, Duration::from_secs(60), kinds("segment.exited"))
        .await;
    // Settled: two consumers, two sweepers, and still one message per transition.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let secret = hook.body["secret"].as_str().expect("secret");
    let verifier = standardwebhooks::Webhook::new(secret).expect("secret");
    let mut seen: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            verifier.verify(&r.body, &r.headers).expect("signed");
            let body = r.json();
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["data"]["contact"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, String)> = [
        ("segment.entered", "ann@example.com"),
        ("segment.entered", "bob@example.com"),
        ("segment.exited", "ann@example.com"),
        ("segment.exited", "bob@example.com"),
    ]
    .iter()
    .map(|(k, e)| ((*k).to_owned(), (*e).to_owned()))
    .collect();
    assert_eq!(seen, expected);
    gw.stop().await;
}

/// Erasing a contact while its events are still in the queue: the erasure takes what is
/// stored, and the queued event, consumed later, makes a new contact holding only itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_does_not_reach_into_the_queue() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (gw, topic) = kafka_gateway().await;
    let group = format!("group-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = ConsumerProcess::start(&gw, &topic, &group);
    let stored = send(&gw, "erased@example.com", 1).await;
    gw.activities_eventually("erased@example.com", 1).await;
    // Stopped cleanly, so its position is committed: the erased event is not delivered again
    // (were it, it would be recorded anew, as any event for the email consumed later is).
    consumer.terminate();
    let queued = send(&gw, "erased@example.com", 2).await;
    let erased = gw
        .call(
            Method::DELETE,
            "/v1/contacts/erased@example.com",
            Some(&gw.admin_key),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.body);
    let _consumer = ConsumerProcess::start(&gw, &topic, &group);
    let activities = gw.activities_eventually("erased@example.com", 1).await;
    let ids: Vec<&str> = activities
        .iter()
        .filter_map(|a| a["eventId"].as_str())
        .collect();
    assert_eq!(
        ids,
        [queued.as_str()],
        "the erased event {stored} stays erased"
    );
    gw.stop().await;
}
