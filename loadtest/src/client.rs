//! Connections to the target: HTTP/1.1 keep-alive (one request at a time per connection, on
//! the generator's own lean client) or HTTP/2 with prior knowledge (hyper, streams
//! multiplexed). A broken connection is replaced.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};

use crate::args::HttpVersion;
use crate::h1::Http1;
use crate::scenario::Planned;
use crate::sources::Sources;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Failure {
    /// Could not connect.
    Connect,
    /// No complete answer within `--timeout`.
    Timeout,
    /// The connection broke mid-request, or the answer was not HTTP.
    Io,
}

/// A status and a body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `host:port` to connect to.
    pub address: String,
    /// The Host header.
    pub authority: String,
    pub http: HttpVersion,
    pub timeout: Duration,
    /// Each new connection's own loopback source address, when spreading.
    pub sources: Option<Arc<Sources>>,
}

impl Target {
    /// With `spread`, connections to a loopback `url` come from 127.0.0.2–254 in turn; to any
    /// other host, they all come from this machine's one address.
    pub(crate) fn of(url: &url::Url, http: HttpVersion, timeout: Duration, spread: bool) -> Target {
        // `host_str` keeps an IPv6 address's brackets, as `host:port` needs them.
        let host = url.host_str().unwrap_or("127.0.0.1");
        let port = url.port_or_known_default().unwrap_or(80);
        let address = format!("{host}:{port}");
        Target {
            authority: address.clone(),
            address,
            http,
            timeout,
            sources: spread
                .then(|| Sources::for_target(url))
                .flatten()
                .map(Arc::new),
        }
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let Some(sources) = &self.sources else {
            return TcpStream::connect(&self.address).await;
        };
        let socket = TcpSocket::new_v4()?;
        socket.bind(sources.next())?;
        socket.connect(sources.target()).await
    }
}

/// One connection's sending half.
#[derive(Debug)]
pub(crate) enum Connection {
    Http1(Http1),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Connection {
    /// Opens a connection and drives it on its own task.
    pub(crate) async fn open(target: &Target) -> Result<Connection, Failure> {
        let stream = tokio::time::timeout(target.timeout, target.connect())
            .await
            .map_err(|_| Failure::Connect)?
            .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        match target.http {
            HttpVersion::Http1 => Ok(Connection::Http1(Http1::new(stream))),
            HttpVersion::Http2 => {
                let io = TokioIo::new(stream);
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|_| Failure::Connect)?;
                tokio::spawn(connection);
                Ok(Connection::Http2(sender))
            }
        }
    }

    /// Another handle on an HTTP/2 connection, whose streams are multiplexed; HTTP/1.1
    /// connections carry one request at a time and are not shared.
    pub(crate) fn share(&self) -> Option<Connection> {
        match self {
            Connection::Http1(_) => None,
            Connection::Http2(sender) => Some(Connection::Http2(sender.clone())),
        }
    }

    /// Whether the connection can take another request.
    pub(crate) fn is_open(&self) -> bool {
        match self {
            Connection::Http1(connection) => connection.is_open(),
            Connection::Http2(sender) => !sender.is_closed(),
        }
    }

    /// Sends one request and reads the whole answer, within the target's timeout.
    pub(crate) async fn send(
        &mut self,
        target: &Target,
        planned: &Planned,
    ) -> Result<Answer, Failure> {
        if let Connection::Http1(connection) = self {
            let authorization = planned.key.as_ref().map(|key| format!("apiKey {key}"));
            let mut headers = vec![("content-type", planned.content_type)];
            if let Some(value) = &authorization {
                headers.push(("authorization", value.as_str()));
            }
            if let Some(signature) = &planned.signature {
                headers.push(("x-hub-signature-256", signature.as_str()));
            }
            let exchange =
                connection.post(&target.authority, &planned.path, &headers, &planned.body);
            let (status, body) = tokio::time::timeout(target.timeout, exchange)
                .await
                .map_err(|_| Failure::Timeout)??;
            return Ok(Answer { status, body });
        }
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(planned.path.as_str())
            .header(header::HOST, target.authority.as_str())
            .header(header::CONTENT_TYPE, planned.content_type);
        if let Some(key) = &planned.key {
            request = request.header(header::AUTHORIZATION, format!("apiKey {key}"));
        }
        if let Some(signature) = &planned.signature {
            request = request.header("x-hub-signature-256", signature.as_str());
        }
        let request = request
            .body(Full::new(planned.body.clone()))
            .map_err(|_| Failure::Io)?;
        let exchange = async {
            let response = match self {
                Connection::Http1(_) => return Err(Failure::Io),
                Connection::Http2(sender) => {
                    sender.ready().await.map_err(|_| Failure::Io)?;
                    sender.send_request(request).await
                }
            }
            .map_err(|_| Failure::Io)?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| Failure::Io)?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(target.timeout, exchange)
            .await
            .map_err(|_| Failure::Timeout)?
    }
}
