//! A real HTTP server on a loopback port that receives the dispatcher's POSTs, answering by
//! path: `/ok` with 200 at once, `/fail` with 500 at once, `/slow` with 200 once the gate is
//! opened (until then the request is held). It counts the requests open on each path, and the
//! most ever open at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    open: HashMap<String, usize>,
    most_open: HashMap<String, usize>,
}

/// The receiver; its server task ends with the test's runtime.
pub(crate) struct Receiver {
    base: String,
    state: Arc<Mutex<State>>,
    gate: watch::Sender<bool>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State::default()));
        let (gate, opened) = watch::channel(false);
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, opened) = (shared.clone(), opened.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, state.clone(), opened.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            base: format!("http://{address}"),
            state,
            gate,
        }
    }

    /// The URL of `path` (`/ok`, `/fail` or `/slow`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests to `path` received so far, held ones included, in arrival order.
    pub(crate) fn received(&self, path: &str) -> Vec<Received> {
        let state = self.state.lock().expect("state");
        state
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Requests to `path` open right now.
    pub(crate) fn open(&self, path: &str) -> usize {
        let state = self.state.lock().expect("state");
        state.open.get(path).copied().unwrap_or_default()
    }

    /// The most requests to `path` ever open at once.
    pub(crate) fn most_open(&self, path: &str) -> usize {
        let state = self.state.lock().expect("state");
        state.most_open.get(path).copied().unwrap_or_default()
    }

    /// Lets `/slow` answer: the held requests and every later one.
    pub(crate) fn open_gate(&self) {
        self.gate.send_replace(true);
    }
}

/// Counts a request open until it is answered or its connection drops.
struct Open {
    state: Arc<Mutex<State>>,
    path: String,
}

impl Open {
    fn new(state: Arc<Mutex<State>>, path: String) -> Open {
        {
            let mut guard = state.lock().expect("state");
            let open = guard.open.entry(path.clone()).or_default();
            *open += 1;
            let now = *open;
            let most = guard.most_open.entry(path.clone()).or_default();
            *most = (*most).max(now);
        }
        Open { state, path }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(open) = state.open.get_mut(&self.path) {
                *open -= 1;
            }
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    mut opened: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let _open = Open::new(state.clone(), path.clone());
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.lock().expect("state").received.push(Received {
        path: path.clone(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    });
    let status = match path.as_str() {
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "/slow" => {
            let _ = opened.wait_for(|open| *open).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("response"))
}
