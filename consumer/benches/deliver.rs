//! Delivery throughput, measured against a baseline in the same run:
//!
//! 1. Deliveries per second from the outbox to a local receiver that answers at once, next to
//!    the same POSTs sent straight with one HTTP client at the same concurrency (no outbox, no
//!    signing): the ratio is what the durable outbox costs.
//! 2. 1,000 deliveries over 20 endpoints when 2 of them (10%) never answer, next to the same
//!    1,000 when every endpoint answers: how long the healthy endpoints' deliveries take.
//!
//! `cargo bench -p consumer --bench deliver` (SQLite in a temporary directory).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use consumer::webhooks::{DeliveryConfig, Dispatcher};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sqlx::AnyPool;
use store::outbox::{self, NewDelivery};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const PAYLOAD: &str = r#"{"id":"msg_bench","type":"custom_event.received","createdAt":"2026-01-01T00:00:00.000Z","storeId":"s","data":{"eventId":"e","alias":"order-paid","contact":{"email":"ann@example.com"},"fields":{"email":"ann@example.com","orderId":"o-1","total":12.5}}}"#;

#[tokio::main]
async fn main() {
    let receiver = start_receiver().await;
    let fast_url = format!("http://{receiver}/ok");
    let hang_url = format!("http://{receiver}/hang");

    println!("== deliveries per second, receiver answering at once ==");
    for endpoints in [1usize, 16] {
        let n = 4000;
        let concurrency = endpoints * DeliveryConfig::default().per_endpoint;
        let raw = raw_rate(&fast_url, n, concurrency).await;
        let (elapsed, _) = run_outbox(&vec![fast_url.clone(); endpoints], n, n).await;
        let rate = n as f64 / elapsed.as_secs_f64();
        println!(
            "{endpoints:>2} endpoint(s), {concurrency:>2} in flight: outbox {rate:>8.0}/s, \
             direct client {raw:>8.0}/s, ratio {:.2}",
            rate / raw
        );
    }

    println!("== 1,000 deliveries over 20 endpoints ==");
    let healthy = vec![fast_url.clone(); 20];
    let (all_fast, _) = run_outbox(&healthy, 1000, 1000).await;
    let mut with_hanging = vec![fast_url.clone(); 18];
    with_hanging.extend([hang_url.clone(), hang_url.clone()]);
    let (healthy_done, delivered) = run_outbox(&with_hanging, 1000, 900).await;
    println!(
        "every endpoint answers:        1000 delivered in {:>6.0} ms",
        all_fast.as_secs_f64() * 1e3
    );
    println!(
        "2 of 20 endpoints never answer: {delivered} delivered in {:>6.0} ms (the other 100 wait \
         for the 15 s timeout, then retry); ratio {:.2}",
        healthy_done.as_secs_f64() * 1e3,
        healthy_done.as_secs_f64() / all_fast.as_secs_f64()
    );
}

/// Fills a fresh outbox with `n` deliveries spread over `targets` (one subscription each),
/// runs a dispatcher, and returns when `wanted` have been delivered.
async fn run_outbox(targets: &[String], n: usize, wanted: usize) -> (Duration, i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = store::connect(&store::sqlite_url(dir.path()))
        .await
        .expect("sqlite");
    let now = store::clock::now();
    sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ('s', 'bench', $1)")
        .bind(&now)
        .execute(&db)
        .await
        .expect("store");
    for (i, url) in targets.iter().enumerate() {
        sqlx::query(
            "INSERT INTO webhooks (id, store_id, target_url, types, is_active, status, secret, \
             created_at, updated_at) VALUES ($1, 's', $2, '', 1, 'enabled', $3, $4, $4)",
        )
        .bind(format!("w{i:02}"))
        .bind(url)
        .bind(store::webhooks::generate_secret())
        .bind(&now)
        .execute(&db)
        .await
        .expect("webhook");
    }
    let deliveries: Vec<NewDelivery> = (0..n)
        .map(|i| NewDelivery {
            store_id: "s".into(),
            message_id: store::webhooks::new_message_id(),
            webhook_id: Some(format!("w{:02}", i % targets.len())),
            event_type_id: None,
            event: "custom_event.received".into(),
            payload: PAYLOAD.into(),
            contact_key: None,
        })
        .collect();
    let mut tx = db.begin().await.expect("tx");
    outbox::enqueue(&mut tx, &deliveries, &now)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");

    let config = DeliveryConfig {
        allow_private_targets: true,
        ..DeliveryConfig::default()
    };
    let dispatcher = Dispatcher::new(db.clone(), config).expect("dispatcher");
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(dispatcher.run(stop.clone()));
    let delivered = loop {
        let count = delivered(&db).await;
        if count as usize >= wanted {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = task.await;
    db.close().await;
    (elapsed, delivered)
}

async fn delivered(db: &AnyPool) -> i64 {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
            .fetch_one(db)
            .await
            .expect("count");
    count
}

/// The same POSTs straight from one client, `concurrency` at a time: the baseline.
async fn raw_rate(url: &str, n: usize, concurrency: usize) -> f64 {
    let client = reqwest::Client::new();
    let slots = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = slots.clone().acquire_owned().await.expect("slot");
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(PAYLOAD)
                .send()
                .await
                .expect("post");
            assert!(response.status().is_success());
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// A receiver: `/ok` answers 200 at once, `/hang` never answers.
async fn start_receiver() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let hang = request.uri().path() == "/hang";
                        let _ = request.into_body().collect().await;
                        if hang {
                            std::future::pending::<()>().await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}
