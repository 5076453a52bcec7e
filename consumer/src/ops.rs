//! The consumer binary's operations endpoint: `/metrics`, `/healthz` and `/readyz`, and 404
//! for anything else. Readiness means the store and the broker answer and no batch has been
//! failing for longer than allowed, so an orchestrator stops routing to (and alerts on) a
//! consumer stuck behind a fault instead of trusting a process that merely runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use queue::kafka::BrokerProbe;

/// What the endpoint reads to answer.
#[derive(Clone)]
pub(crate) struct Ops {
    pub(crate) metrics: PrometheusHandle,
    pub(crate) db: AnyPool,
    pub(crate) health: Arc<Health>,
    pub(crate) broker: BrokerProbe,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").finish_non_exhaustive()
    }
}

/// Slow or idle scrapers are cut off like any other client (an idle keep-alive connection
/// too: hyper's head timeout also runs between requests).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once: a few scrapers and probes need a handful; past this the next
/// client waits in the kernel's backlog, not in memory here.
const MAX_CONNECTIONS: usize = 64;

/// Serves `listener` until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, ops: Ops, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = crate::process::accept(&listener) => accepted,
        };
        let ops = ops.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let ops = ops.clone();
                async move { Ok::<_, Infallible>(answer(&ops, request).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

async fn answer(ops: &Ops, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match request.uri().path() {
        "/metrics" => text(StatusCode::OK, &ops.metrics.render()),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match not_ready(ops).await {
            None => text(StatusCode::OK, "ready\n"),
            Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{why}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Why the consumer is not ready, if it is not.
async fn not_ready(ops: &Ops) -> Option<String> {
    if ops.health.is_stuck() {
        return Some(format!(
            "a batch has been failing for {}s",
            ops.health.failing_for().as_secs()
        ));
    }
    if let Err(error) = store::ping(&ops.db).await {
        tracing::warn!(%error, "store not reachable");
        return Some("the store is not reachable".to_owned());
    }
    if !ops.broker.reachable().await {
        return Some("the Kafka brokers are not reachable".to_owned());
    }
    None
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
