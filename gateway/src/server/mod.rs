//! The accept loop: a bounded number of connections, HTTP/1.1 and h2c on one port, every
//! connection held to header, body and idle timeouts, and a stop that closes idle connections
//! at once and lets in-flight requests finish within a deadline.

mod connection;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::routes;
use crate::state::AppState;
use connection::{Activity, Connections, Timeouts, Watched};

/// Serves until `shutdown` resolves, then drains for at most the configured grace period.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) {
    let config = state.config.clone();
    let connections = Arc::new(Semaphore::new(config.max_connections.get() as usize));
    let grace = config.shutdown_grace;
    let timeouts = Timeouts {
        header: config.header_timeout,
        idle: config.idle_timeout,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The read buffer bounds the request head: past it hyper answers 431.
    builder
        .http1()
        .max_buf_size(config.max_header_bytes as usize);
    let builder = Arc::new(builder);
    let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
    let tracker = TaskTracker::new();
    let open = Arc::new(Connections::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = consumer::process::accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        // At the limit, the connection quiet the longest (a socket that sent nothing, an idle
        // keep-alive) makes room, so such sockets cannot make a new client wait out their
        // timeouts. If every connection is serving a request, the new one waits for a slot,
        // and the clients after it wait in the kernel's backlog, not in memory here.
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                open.shed_quietest();
                tokio::select! {
                    permit = connections.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = Watched::new(stream, activity.clone(), config.max_header_bytes);
        let (state, watched) = (state.clone(), activity.clone());
        let ip = peer.ip();
        let service = service_fn(move |request| {
            let state = state.clone();
            let in_flight = watched.request();
            async move {
                let response = routes::handle(state, ip, request).await;
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let (stop, abort) = (stop.clone(), abort.clone());
        let (id, evict) = open.add(activity.clone());
        let open = open.clone();
        tracker.spawn(async move {
            let ended = connection::drive(
                connection,
                |connection| connection.graceful_shutdown(),
                activity,
                timeouts,
                stop,
                abort,
                evict,
            )
            .await;
            if let Some(Err(error)) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            open.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: closing idle connections, draining in-flight requests");
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(?grace, "grace period over; closing remaining connections");
        abort.cancel();
        tracker.wait().await;
    }
}
