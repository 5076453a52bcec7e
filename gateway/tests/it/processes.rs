//! Processes the integration tests start and own: the `consumer` binary, a tansu broker and a
//! PostgreSQL server of a test's own (so stopping or pausing them disturbs no other test), and
//! the consumer's operations endpoint. Each is stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::TestGateway;

pub fn brokers() -> String {
    std::env::var("SLUICE_TEST_KAFKA_BROKERS").expect(
        "SLUICE_TEST_KAFKA_BROKERS is not set: run the tests with ./scripts/test, which starts a broker",
    )
}

/// A plain client of the test broker, for reading and writing its topics directly.
pub fn client_config() -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", brokers());
    config
}

pub fn consumer_binary() -> PathBuf {
    crate::harness::binary("consumer")
}

pub struct ConsumerProcess(pub Child);

impl ConsumerProcess {
    pub fn start(gw: &TestGateway, topic: &str, group: &str) -> ConsumerProcess {
        ConsumerProcess::start_on(&brokers(), gw, topic, group)
    }

    pub fn start_on(brokers: &str, gw: &TestGateway, topic: &str, group: &str) -> ConsumerProcess {
        ConsumerProcess::start_with(
            brokers,
            gw,
            topic,
            group,
            &["--metrics-listen", "127.0.0.1:0"],
        )
    }

    /// With `extra` flags after the usual ones (they may repeat one, and then win).
    pub fn start_with(
        brokers: &str,
        gw: &TestGateway,
        topic: &str,
        group: &str,
        extra: &[&str],
    ) -> ConsumerProcess {
        let child = Command::new(consumer_binary())
            .args([
                "--kafka-brokers",
                brokers,
                "--kafka-topic",
                topic,
                "--group",
                group,
            ])
            // Webhook receivers in these tests listen on loopback; retries come quickly.
            .args([
                "--allow-private-targets",
                "--webhook-retry-schedule",
                "100ms,200ms,400ms",
            ])
            .arg("--database-url")
            .arg(gw.storage.database_url.as_deref().expect("database url"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("SLUICE_TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start consumer");
        ConsumerProcess(child)
    }

    /// SIGTERM: the consumer finishes its batch, commits, leaves the group and exits.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                assert!(status.success(), "the consumer exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the consumer did not stop within 30 s of SIGTERM");
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A broker of this test's own, so pausing it disturbs no other test.
pub struct OwnBroker {
    child: Child,
    pub brokers: String,
}

impl OwnBroker {
    pub async fn start() -> OwnBroker {
        OwnBroker::start_with(&[]).await
    }

    /// With `extra` broker flags, e.g. `--authentication`.
    pub async fn start_with(extra: &[&str]) -> OwnBroker {
        OwnBroker::start_advertising(None, extra).await
    }

    /// Advertising `advertised` (a port of a proxy in front of it) to clients instead of its
    /// own port, when given.
    pub async fn start_advertising(advertised: Option<u16>, extra: &[&str]) -> OwnBroker {
        let bin = std::env::var("SLUICE_TEST_TANSU")
            .expect("SLUICE_TEST_TANSU is not set: run the tests with ./scripts/test");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", advertised.unwrap_or(port));
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        crate::harness::wait_until(Duration::from_secs(30), "tansu to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        })
        .await;
        OwnBroker {
            child,
            brokers: format!("127.0.0.1:{port}"),
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server of this test's own, so restarting it disturbs no other test.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let bin = PathBuf::from(
            std::env::var("SLUICE_TEST_POSTGRES_BIN")
                .expect("SLUICE_TEST_POSTGRES_BIN is not set: run the tests with ./scripts/test"),
        );
        let dir = tempfile::tempdir().expect("dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = OwnPostgres { bin, dir, port };
        if server.as_root() {
            // PostgreSQL refuses to run as root; the Debian package made the postgres user.
            let status = Command::new("chown")
                .args(["postgres:", &server.dir.path().display().to_string()])
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        server.pg_ctl("start");
        server
    }

    pub fn as_root(&self) -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false)
    }

    /// A PostgreSQL tool, run as the postgres user when this test runs as root.
    pub fn tool(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    pub fn run(&self, tool: &str, args: &[&str]) {
        let mut command = self.tool(tool);
        let output = command.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data").display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-m", "fast", "-o", &options, action,
            ],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = self
            .tool("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

/// A free loopback port for a process this test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// GET on the consumer's operations port: status and body.
pub async fn ops(port: u16, path: &str) -> (StatusCode, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("ops endpoint answers");
    let status = response.status();
    (status, response.text().await.expect("text"))
}

/// Polls the ops endpoint until `path` answers `status`, for at most `limit`; the body.
pub async fn ops_until(port: u16, path: &str, status: StatusCode, limit: Duration) -> String {
    let what = format!("{path} to answer {status}");
    crate::harness::wait_until(limit, &what, || async {
        let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .ok()?;
        if response.status() != status {
            return None;
        }
        response.text().await.ok()
    })
    .await
}
