//! Kafka connection security reaching the client, against real peers: a tansu broker that
//! requires SASL (SCRAM) authentication, and a TCP listener that reads what a TLS client sends.
//! tansu 0.6 does not serve TLS and cannot be given a user before authentication is required
//! (its users live in the storage the broker guards), so what stays untested here is a
//! successful TLS session and a successful SCRAM login; the flags are shown to produce a real
//! SCRAM exchange and a real TLS handshake.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::binary;
use crate::processes::OwnBroker;

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
    listener.set_nonblocking(false).expect("blocking listener");
    let (mut peer, _) = listener.accept().expect("the client connects");
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut record = [0u8; 6];
    peer.read_exact(&mut record)
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
