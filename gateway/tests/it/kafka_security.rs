//! Kafka connection security against real peers: events through a verified TLS session (a TLS
//! terminator in front of tansu, which speaks plaintext only), a tansu broker that requires
//! SASL (SCRAM) authentication, and a TCP listener that reads what a TLS client sends. tansu 0.6
//! cannot be given a user before authentication is required (its users live in the storage
//! the broker guards), so a successful SCRAM login stays untested: the flags are shown to
//! produce a real SCRAM exchange, which the broker answers "unknown-user".

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{binary, wait_until, Backend, TestGateway};
use crate::processes::{free_port, OwnBroker};
use crate::webhooks::{order_type, post_order};

/// A gateway in Kafka mode started with `flags`; its log lines arrive on `lines`.
struct Gateway {
    child: Child,
    lines: mpsc::Receiver<String>,
    _data: tempfile::TempDir,
}

impl Gateway {
    fn start(brokers: &str, flags: &[&str]) -> Gateway {
        let data = tempfile::tempdir().expect("data dir");
        let mut child = Command::new(binary("gateway"))
            .args(["--listen", "127.0.0.1:0", "--queue", "kafka"])
            .args(["--kafka-brokers", brokers])
            .arg("--data-dir")
            .arg(data.path())
            .args(flags)
            .env("SLUICE_LOG", "info")
            .env("SLUICE_LOG_JSON", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gateway");
        let stderr = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Gateway {
            child,
            lines,
            _data: data,
        }
    }

    /// The first log line containing `needle`, within `limit`.
    fn line_with(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits (20 s at most) for the gateway to exit, which must be a failure, and returns
    /// everything it logged.
    fn refused_start(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the gateway did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success(), "{status}");
        let mut log = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            log.push_str(&line);
        }
        log
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn scram_credentials_are_presented_to_the_broker() {
    let broker = OwnBroker::start_with(&["--authentication"]).await;
    let gateway = Gateway::start(
        &broker.brokers,
        &[
            "--kafka-security-protocol",
            "sasl_plaintext",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "nobody-registered",
            "--kafka-sasl-password",
            "not-a-secret-of-anyone",
        ],
    );
    // The broker took part in a SCRAM exchange and refused the user it does not know: the
    // mechanism and the user name reached it.
    let line = gateway
        .line_with("SASL SCRAM authentication failed", Duration::from_secs(20))
        .expect("the SCRAM exchange with the broker is logged");
    assert!(line.contains("unknown-user"), "{line}");
}

#[test]
fn sasl_without_its_credentials_is_refused_at_start() {
    let mut gateway = Gateway::start(
        "127.0.0.1:9",
        &[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "PLAIN",
        ],
    );
    let rest = gateway.refused_start();
    assert!(rest.contains("--kafka-sasl-username"), "{rest}");
}

#[test]
fn tls_is_spoken_to_the_brokers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = listener.local_addr().expect("address").to_string();
    let _gateway = Gateway::start(&address, &["--kafka-security-protocol", "ssl"]);
    // Accepted on a thread, so a gateway that never connects fails the test instead of
    // hanging it.
    let (send, first_bytes) = mpsc::channel();
    std::thread::spawn(move || {
        let read = listener.accept().and_then(|(mut peer, _)| {
            peer.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut record = [0u8; 6];
            peer.read_exact(&mut record).map(|()| record)
        });
        let _ = send.send(read);
    });
    let record = first_bytes
        .recv_timeout(Duration::from_secs(20))
        .expect("the client connects within 20 s")
        .expect("the client's first bytes");
    // A TLS handshake record (22) whose first message is a ClientHello (1).
    assert_eq!(record[0], 22, "handshake record: {record:?}");
    assert_eq!(record[1], 3, "TLS version major: {record:?}");
    assert_eq!(record[5], 1, "ClientHello: {record:?}");
}

#[test]
fn the_ca_location_reaches_the_client() {
    let mut gateway = Gateway::start(
        "127.0.0.1:9",
        &[
            "--kafka-security-protocol",
            "ssl",
            "--kafka-ca-location",
            "/nonexistent/kafka-ca.pem",
        ],
    );
    let rest = gateway.refused_start();
    assert!(rest.contains("ssl.ca.location"), "{rest}");
}

/// A throw-away certificate authority and a certificate it signs for 127.0.0.1, made with the
/// openssl command in `dir`; returns (authority, certificate, key).
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/test installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kafka-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
    ]);
    std::fs::write(dir.join("broker.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "broker.ext",
        "-out",
        "broker.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("broker.pem"),
        dir.join("broker.key"),
    )
}

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS session end to end. tansu speaks plaintext only, so a TLS terminator (socat, with a
/// certificate signed by a throw-away authority) stands in front of it, and it is the only
/// address the broker advertises: every connection the clients make, bootstrap and broker
/// alike, is TLS, verified against `--kafka-ca-location` (hostname included). A gateway
/// publishes through it and its in-process consumer reads the event back through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_travel_over_verified_tls_to_the_broker_and_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = certificates(dir.path());
    let tls_port = free_port();
    let broker = OwnBroker::start_advertising(Some(tls_port), &[]).await;
    let listen = format!(
        "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
        cert.display(),
        key.display()
    );
    let _proxy = Killed(
        Command::new("socat")
            .args([listen, format!("TCP:{}", broker.brokers)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/test installs it)"),
    );
    wait_until(
        Duration::from_secs(10),
        "the TLS terminator to listen",
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
                .await
                .ok()
                .map(drop)
        },
    )
    .await;
    let topic = format!("tls-{}", uuid::Uuid::new_v4().simple());
    let gw = TestGateway::start_with(Backend::Sqlite, move |config| {
        config.queue = gateway::QueueKind::Kafka;
        config.with_consumer = Some(true);
        config.kafka.kafka_brokers = format!("127.0.0.1:{tls_port}");
        config.kafka.kafka_security_protocol = queue::kafka::SecurityProtocol::Ssl;
        config.kafka.kafka_ca_location = Some(ca);
        config.kafka_topic = topic;
    })
    .await;
    gw.event_type(order_type()).await;
    post_order(&gw, "tls@example.com", "o-1", 9.5).await;
    let activities = gw.activities_eventually("tls@example.com", 1).await;
    assert_eq!(activities[0]["fields"]["orderId"], "o-1");
    // Stopped while its broker is still there: a consumer left running when the terminator and
    // the broker go would block the test's runtime on a broker call that never returns.
    gw.stop().await;
}
