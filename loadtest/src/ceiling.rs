//! The ceiling: a bare hyper 1 server that reads each request body whole and answers `201`
//! with `{"id":"x"}`, doing nothing else. It has the gateway's transport (hyper-util's auto
//! builder, HTTP/1.1 keep-alive, a multi-thread tokio runtime) and none of its work, so the
//! gateway's throughput divided by this one's is the share of the machine the gateway's own
//! work leaves to transport.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The answer to every request, as the gateway's ingest answers an accepted event.
const ACCEPTED_BODY: &[u8] = br#"{"id":"x"}"#;

/// Serves on `listen` until the process is stopped.
pub(crate) fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(serve(listen))
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("ceiling listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: the next accept may succeed.
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        // Small requests and answers: send each as soon as it is written, as the gateway does.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            // Connection errors (a client closing mid-request) only end that connection.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(io, service_fn(answer))
                .await;
        });
    }
}

/// Reads the body whole, then answers 201.
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::CREATED,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(ACCEPTED_BODY)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
