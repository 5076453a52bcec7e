//! A hostile client over real sockets: idle and trickling connections, oversized heads,
//! malformed requests, answers given before the body was read, and odd methods and codings.
//! Each names the bad input it sends; timeouts are shortened so the tests run in seconds.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::harness::{Backend, TestGateway};

fn short_timeouts(config: &mut gateway::Config) {
    config.header_timeout = Duration::from_secs(1);
    config.body_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(3);
}

fn address(gw: &TestGateway) -> String {
    gw.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&received).into_owned(), true);
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

/// Reads one answer whose body has a content-length; the connection stays open.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before a whole answer: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

fn body_of(answer: &str) -> Value {
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn assert_problem(answer: &str, status: u16) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "{answer}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert_eq!(body_of(answer)["status"], status, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_and_cannot_starve_new_clients() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        short_timeouts(config);
        config.max_connections = std::num::NonZeroU32::new(20).expect("non-zero");
    })
    .await;
    // Bad input: as many connections as the gateway serves at once, sending nothing.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(address(&gw)).await.expect("connect"));
    }
    let started = Instant::now();
    let reply = gw.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a new client waited {:?}",
        started.elapsed()
    );
    for mut stream in idle {
        let (sent, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(
            closed && sent.is_empty(),
            "an idle socket was not closed: {sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_the_quietest_socket_makes_room_at_once() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        // Timeouts far beyond the test: only shedding can serve the new client in time.
        config.header_timeout = Duration::from_secs(60);
        config.idle_timeout = Duration::from_secs(60);
        config.max_connections = std::num::NonZeroU32::new(20).expect("non-zero");
    })
    .await;
    // Bad input: every connection slot held by a socket that sends nothing.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(address(&gw)).await.expect("connect"));
    }
    // A moment for the accept loop to take all twenty, so the limit is reached before the
    // first real client arrives (the server exposes no count of open sockets to poll).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for round in 0..3 {
        let started = Instant::now();
        let reply = timeout(
            Duration::from_secs(5),
            gw.call(Method::GET, "/healthz", None, None),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: a new client waited over 5 s"));
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // The sockets that made room were closed; the server counts them.
    let mut closed = 0;
    for stream in &mut idle {
        let mut probe = [0u8; 8];
        if let Ok(Ok(0)) = timeout(Duration::from_millis(50), stream.read(&mut probe)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle socket was shed");
    let metrics = gw.call(Method::GET, "/metrics", None, None).await;
    assert!(metrics
        .body
        .as_str()
        .expect("text")
        .contains("sluice_http_connections_shed_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_byte_by_byte_are_cut_off_at_the_header_timeout() {
    let gw = TestGateway::start_with(Backend::Sqlite, short_timeouts).await;
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    // Bad input: a header byte every 200 ms, forever.
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(Ok(0)) = timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "the trickling connection was held for 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_closes() {
    let gw = TestGateway::start_with(Backend::Sqlite, short_timeouts).await;
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    // Bad input: a body announced as 1000 bytes, of which 10 ever arrive.
    let head = format!(
        "POST /v1/custom-integrations/ HTTP/1.1\r\nHost: x\r\nAuthorization: apiKey {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \"",
        gw.admin_key
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_problem(&answer, 408);
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_lives_past_the_header_timeout_until_the_idle_timeout() {
    let gw = TestGateway::start_with(Backend::Sqlite, short_timeouts).await;
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.expect("write");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Idle longer than the header timeout (1 s) but within the idle timeout (3 s): still served.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stream.write_all(request).await.expect("write");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Then idle past the idle timeout: closed.
    let started = Instant::now();
    let (sent, closed) = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert!(closed && sent.is_empty(), "{sent:?}");
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_secs(2) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_heads_get_problem_json() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    // Bad input: a 400 KiB header.
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(400 * 1024)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_problem(&answer, 431);
    // Bad input: a request line that is not HTTP.
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/9.9 junk\r\n\r\n")
        .await
        .expect("write");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_problem(&answer, 400);
    assert!(closed);
    // Bad input: a header name with a space.
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_problem(&answer, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    // A second connection that never sent a byte.
    let _silent = TcpStream::connect(address(&gw)).await.expect("connect");
    let started = Instant::now();
    timeout(Duration::from_secs(5), gw.stop())
        .await
        .expect("the gateway stopped within 5 s though its grace period is 20 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(1)).await;
    assert!(closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_before_the_body_was_read_closes_the_connection_and_one_after_does_not() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let body = json!({"email": "a@example.com"}).to_string();
    // Bad input: an event for an alias that does not exist, sent on a keep-alive connection.
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    let request = format!(
        "POST /v1/{}/custom-events/alias/nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        gw.store_id,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let answer = read_answer(&mut stream).await;
    assert_problem(&answer, 404);
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // A management body that was read in full and refused keeps the connection.
    let mut stream = TcpStream::connect(address(&gw)).await.expect("connect");
    let bad = r#"{"name": 5}"#;
    let request = format!(
        "POST /v1/custom-integrations/ HTTP/1.1\r\nHost: x\r\nAuthorization: apiKey {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{bad}",
        gw.admin_key,
        bad.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let answer = read_answer(&mut stream).await;
    assert_problem(&answer, 422);
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_auth_and_codings_are_answered_precisely() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    // Bad input: a method the route does not have.
    let reply = gw
        .call(Method::PUT, "/v1/webhooks", Some(&gw.admin_key), None)
        .await;
    reply.problem(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD, POST");
    // Bad input: no key.
    let reply = gw.call(Method::GET, "/v1/webhooks", None, None).await;
    reply.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["www-authenticate"], "apiKey");
    // HEAD on a GET route.
    let reply = gw.call(Method::HEAD, "/healthz", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Bad input: a gzip-encoded body.
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/custom-integrations/", gw.base))
        .header("authorization", format!("apiKey {}", gw.admin_key))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 0, 0])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A key without the scope: the 403 names the scope that is missing.
    let key = gw.key_with(&["webhooks:read"]).await;
    let reply = gw
        .post("/v1/custom-integrations/", &key, json!({"name": "x"}))
        .await;
    let problem = reply.problem(StatusCode::FORBIDDEN);
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("customIntegrations:write"),
        "{problem}"
    );
}

/// Resident memory of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Kills the gateway process when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stores_and_aliases_do_not_grow_memory() {
    // A gateway process of its own, so its memory is not mixed with other tests'.
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let gateway = Killed(
        std::process::Command::new(crate::harness::binary("gateway"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start gateway"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::harness::wait_until(Duration::from_secs(30), "the gateway to start", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(drop)
    })
    .await;
    let send = move |round: usize| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            // Bad input: a fresh well-formed store id and a 64-character alias every time, and
            // every tenth an 8 KB alias or a long fake store id.
            let store = uuid::Uuid::new_v4();
            let path = match round % 10 {
                0 => format!("/v1/{}/custom-events/alias/{}", "s".repeat(8000), "a"),
                1 => format!("/v1/{store}/custom-events/alias/{}", "b".repeat(8000)),
                _ => format!("/v1/{store}/custom-events/alias/{round:064}"),
            };
            let response = client
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("sent");
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
    };
    // Warm up: allocator arenas, connection pools and the first cache entries.
    for round in 0..2_000 {
        send(round).await;
    }
    let pid = gateway.0.id();
    let before = rss_kib(pid);
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..12_500 {
                send(worker * 100_000 + round).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender");
    }
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "50,000 requests for unknown names grew the gateway's RSS by {grown} KiB (from {before} KiB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_outside_visible_ascii_are_refused_before_any_claim() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    gw.event_type(crate::ingest::webhook_type()).await;
    let path = crate::ingest::webhook_path(&gw);
    let event = json!({"customer": {"email": "k@example.com"}, "order": {"total": 1}});
    // Bad input: a space, a tab, an empty key and one of 256 characters.
    let long = "k".repeat(256);
    for key in ["order 123", "order\t123", "", long.as_str()] {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", gw.base))
            .header("idempotency-key", key)
            .json(&event)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{key:?}");
    }
    // Nothing was claimed or accepted for them.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(gw.storage.database_url.as_deref().expect("url"))
        .await
        .expect("db");
    let (claims,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(claims, 0);
    db.close().await;
}
