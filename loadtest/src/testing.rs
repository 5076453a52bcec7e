//! A small in-process gateway stand-in for the generator's tests: it accepts webhook events,
//! answers 201 with an id, can stall once or drop one event on purpose, and serves the
//! contacts API's activities listing from memory.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// How the stand-in misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    /// The first request after this long is answered only after `stall_for`.
    pub stall_after: Option<Duration>,
    pub stall_for: Duration,
    /// This event (counting from 0) is answered 201 but not stored.
    pub drop_event: Option<u64>,
}

#[derive(Default)]
struct State {
    activities: Mutex<HashMap<String, Vec<String>>>,
    next_id: AtomicU64,
    stalled: AtomicBool,
}

/// Serves on a loopback port until the test ends; returns its URL.
pub(crate) async fn start(faults: Faults) -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    let state = Arc::new(State::default());
    let started = Instant::now();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    answer(request, state.clone(), faults, started)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url::Url::parse(&format!("http://{address}")).expect("url")
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    state: Arc<State>,
    faults: Faults,
    started: Instant,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let post = request.method() == hyper::Method::POST;
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(after) = faults.stall_after {
        if started.elapsed() >= after && !state.stalled.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(faults.stall_for).await;
        }
    }
    if post {
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let email = event["customer"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let n = state.next_id.fetch_add(1, Ordering::SeqCst);
        let id = format!("ev-{n}");
        if faults.drop_event != Some(n) {
            if let Ok(mut activities) = state.activities.lock() {
                activities.entry(email).or_default().push(id.clone());
            }
        }
        return Ok(json(201, serde_json::json!({"id": id})));
    }
    // GET /v1/contacts/{email}/activities
    let email = path.split('/').nth(3).unwrap_or_default().to_owned();
    let ids = state
        .activities
        .lock()
        .ok()
        .and_then(|a| a.get(&email).cloned());
    match ids {
        None => Ok(json(404, serde_json::json!({"status": 404}))),
        Some(ids) => {
            let results: Vec<_> = ids
                .iter()
                .map(|id| serde_json::json!({"eventId": id}))
                .collect();
            Ok(json(
                200,
                serde_json::json!({"results": results, "links": {"next": null}}),
            ))
        }
    }
}

fn json(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}
