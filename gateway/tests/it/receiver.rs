//! A real HTTP server that receives outbound webhooks in tests, answering as told: at once,
//! with failures first, or never (holding the request open).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 at once.
    Ok,
    /// This status at once.
    Status(u16),
    /// Never: the request is held open until the receiver is dropped.
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Answers to give first, in order; then `answer`.
    scripted: VecDeque<Answer>,
    answer: Option<Answer>,
    received: Vec<Received>,
    hanging: usize,
}

/// A webhook receiver on a loopback port.
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    stop: Arc<Notify>,
}

impl Receiver {
    /// A receiver answering `answer` to every request.
    pub async fn start(answer: Answer) -> Receiver {
        Receiver::scripted(Vec::new(), answer).await
    }

    /// A receiver giving `first` answers in order, then `then` to every request.
    pub async fn scripted(first: Vec<Answer>, then: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State {
            scripted: first.into(),
            answer: Some(then),
            ..State::default()
        }));
        let arrived = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let (s, a, st) = (state.clone(), arrived.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = st.notified() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let (s, a, st) = (s.clone(), a.clone(), st.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, s.clone(), a.clone(), st.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("http://{address}/hooks"),
            state,
            arrived,
            stop,
        }
    }

    /// Changes the answer to requests from now on.
    pub fn answer(&self, answer: Answer) {
        let mut state = self.state.lock().expect("state");
        state.scripted.clear();
        state.answer = Some(answer);
    }

    /// Everything received so far (held requests included).
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("state").received.clone()
    }

    /// Requests being held open right now.
    pub fn hanging(&self) -> usize {
        self.state.lock().expect("state").hanging
    }

    /// Waits until `count` requests that `matches` accepts have arrived; fails after `limit`.
    pub async fn wait_for(
        &self,
        count: usize,
        limit: Duration,
        matches: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.arrived.notified();
            let found: Vec<Received> = self.received().into_iter().filter(|r| matches(r)).collect();
            if found.len() >= count {
                return found;
            }
            let waited = tokio::time::timeout_at(deadline, arrived).await;
            assert!(
                waited.is_ok(),
                "only {} of {count} expected requests reached {} within {limit:?}",
                found.len(),
                self.url
            );
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.notify_waiters();
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    stop: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let answer = {
        let mut state = state.lock().expect("state");
        state.received.push(Received {
            headers: parts.headers,
            body,
        });
        let answer = state
            .scripted
            .pop_front()
            .or(state.answer)
            .unwrap_or(Answer::Ok);
        if answer == Answer::Hang {
            state.hanging += 1;
        }
        answer
    };
    arrived.notify_waiters();
    let status = match answer {
        Answer::Ok => StatusCode::OK,
        Answer::Status(code) => StatusCode::from_u16(code).expect("status"),
        Answer::Hang => {
            stop.notified().await;
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("response"))
}
