//! Starts real gateways for tests: one per test, on `127.0.0.1:0`, with a fresh SQLite file or a
//! fresh PostgreSQL database, and a store with its admin key.

use std::time::Duration;

use gateway::{Config, StorageConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which store engine a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each test twice, once per store engine, so both pass the same suite. With
/// `with CONFIGURE;` first, each gateway starts with that function applied to its config.
#[macro_export]
macro_rules! on_both_stores {
    (with $configure:expr; $(async fn $name:ident($gw:ident: TestGateway) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $gw = $crate::harness::TestGateway::start_with(
                        $crate::harness::Backend::Sqlite, $configure).await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $gw = $crate::harness::TestGateway::start_with(
                        $crate::harness::Backend::Postgres, $configure).await;
                    $body
                }
            )*
        }
    };
    ($(async fn $name:ident($gw:ident: TestGateway) $body:block)*) => {
        $crate::on_both_stores! {
            with |_: &mut gateway::Config| {};
            $(async fn $name($gw: TestGateway) $body)*
        }
    };
}

pub use crate::support::wait_until;

/// A workspace binary beside this test binary (`cargo test --workspace` builds it).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run cargo test --workspace",
        binary.display()
    );
    binary
}

/// A fresh database URL for `backend`, inside `dir` for SQLite.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/sluice.db?mode=rwc", dir.display()),
        Backend::Postgres => {
            let admin = std::env::var("SLUICE_TEST_POSTGRES_URL").expect(
                "SLUICE_TEST_POSTGRES_URL is not set: run the tests with ./scripts/test, \
                 which starts PostgreSQL",
            );
            sqlx::any::install_default_drivers();
            let name = format!("sluice_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::AnyPool::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .expect("create a test database");
            pool.close().await;
            let mut url = url::Url::parse(&admin).expect("admin url");
            url.set_path(&name);
            url.to_string()
        }
    }
}

/// A running gateway and what a test needs to talk to it.
pub struct TestGateway {
    pub base: String,
    pub store_id: String,
    pub admin_key: String,
    pub storage: StorageConfig,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestGateway {
    pub async fn start(backend: Backend) -> TestGateway {
        TestGateway::start_with(backend, |_| {}).await
    }

    /// A gateway on a fresh database with `configure` applied to its defaults.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            database_url: Some(fresh_database(backend, dir.path()).await),
        };
        let created = gateway::create_store(&storage, "test")
            .await
            .expect("store");
        TestGateway::serve(storage, created, dir, configure).await
    }

    /// A gateway on an existing database server's `url`, with a store created there.
    pub async fn start_on_database(
        url: String,
        configure: impl FnOnce(&mut Config),
    ) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            database_url: Some(url),
        };
        let created = gateway::create_store(&storage, "test")
            .await
            .expect("store");
        TestGateway::serve(storage, created, dir, configure).await
    }

    /// Another gateway on the same database, with its own data directory (its own queue).
    pub async fn beside(&self, configure: impl FnOnce(&mut Config)) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            database_url: self.storage.database_url.clone(),
        };
        let created = gateway::CreatedStore {
            store_id: self.store_id.clone(),
            api_key: self.admin_key.clone(),
        };
        TestGateway::serve(storage, created, dir, configure).await
    }

    async fn serve(
        storage: StorageConfig,
        created: gateway::CreatedStore,
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut Config),
    ) -> TestGateway {
        gateway::metrics::install_recorder().expect("metrics recorder");
        // SLUICE_TEST_LOG=debug shows the gateways' logs beside a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("SLUICE_TEST_LOG"))
            .with_test_writer()
            .try_init();
        let mut config = Config::with_defaults();
        config.storage = storage.clone();
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        config.listen = address;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway::run(config, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("gateway runs");
        });
        TestGateway {
            base: format!("http://{address}"),
            store_id: created.store_id,
            admin_key: created.api_key,
            storage,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A request with `key` (if any) and a JSON body (if any); returns status, headers, body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("authorization", format!("apiKey {key}"));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::from(request.send().await.expect("request sent")).await
    }

    /// A request with a raw body and content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.header("authorization", format!("apiKey {key}"));
        }
        Reply::from(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(&body)).await
    }

    /// Mints a key with exactly these scopes, using the admin key.
    pub async fn key_with(&self, scopes: &[&str]) -> String {
        let reply = self
            .post(
                "/v1/api-keys",
                &self.admin_key,
                serde_json::json!({"name": "scoped", "scopes": scopes}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["key"].as_str().expect("key").to_owned()
    }

    /// Creates an event type in a new integration and returns the created body.
    pub async fn event_type(&self, definition: Value) -> Value {
        let integration = self.integration().await;
        let reply = self
            .post(
                &format!("/v1/custom-integrations/{integration}/custom-event-types/"),
                &self.admin_key,
                definition,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// Polls the activities of `email` until there are `count`, or fails after 20 s.
    pub async fn activities_eventually(&self, email: &str, count: usize) -> Vec<Value> {
        self.activities_within(email, count, Duration::from_secs(20))
            .await
    }

    /// Polls the activities of `email` until there are `count`, or fails after `limit`.
    pub async fn activities_within(
        &self,
        email: &str,
        count: usize,
        limit: Duration,
    ) -> Vec<Value> {
        let path = format!("/v1/contacts/{email}/activities?limit=1000");
        let found = wait_until(limit, format!("{count} activities for {email}"), || async {
            let reply = self.get(&path, &self.admin_key).await;
            let found = reply.body["results"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (found.len() >= count).then_some(found)
        })
        .await;
        assert_eq!(
            found.len(),
            count,
            "more activities than expected: {found:?}"
        );
        found
    }

    /// Creates an integration and returns its id.
    pub async fn integration(&self) -> String {
        let reply = self
            .post(
                "/v1/custom-integrations/",
                &self.admin_key,
                serde_json::json!({"name": "ERP"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    /// Stops the gateway the way SIGTERM does, then starts a new one on the same data
    /// directory and database with `configure` applied.
    pub async fn restart(mut self, configure: impl FnOnce(&mut Config)) -> TestGateway {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("gateway task");
        }
        let created = gateway::CreatedStore {
            store_id: self.store_id.clone(),
            api_key: self.admin_key.clone(),
        };
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        TestGateway::serve(self.storage.clone(), created, dir, configure).await
    }

    /// Stops the gateway the way SIGTERM does and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("gateway task");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Asserts a problem+json answer with this status, and returns its body.
    pub fn problem(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        let content_type = self.headers.get("content-type").expect("content type");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["title"].is_string(), "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
        &self.body
    }

    /// The JSON pointers a 422 names.
    pub fn violation_paths(&self) -> Vec<String> {
        let body = self.problem(StatusCode::UNPROCESSABLE_ENTITY);
        body["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| e["path"].as_str().expect("path").to_owned())
            .collect()
    }
}
