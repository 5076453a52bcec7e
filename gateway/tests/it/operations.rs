//! Health, readiness, metrics, routing errors, the command line and graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::on_both_stores;

on_both_stores! {
    async fn health_readiness_and_metrics(gw: TestGateway) {
        let live = gw.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(live.status, StatusCode::OK);
        let ready = gw.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
        gw.get("/v1/custom-integrations/", &gw.admin_key).await;
        let metrics = gw.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(metrics.status, StatusCode::OK);
        let text = metrics.body.as_str().expect("text");
        assert!(
            text.contains("sluice_http_requests_total{route=\"custom_integrations\",status=\"200\"}"),
            "{text}"
        );
        assert!(text.contains("sluice_http_request_duration_seconds_bucket"), "{text}");
    }

    async fn the_openapi_document_is_served_without_a_key(gw: TestGateway) {
        let document = gw.call(Method::GET, "/openapi.json", None, None).await;
        assert_eq!(document.status, StatusCode::OK);
        assert_eq!(document.headers["content-type"], "application/json");
        assert_eq!(document.body["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        assert!(
            document.body["paths"]["/v1/custom-events/alias/{alias}"]["post"].is_object(),
            "{}",
            document.body
        );
    }

    async fn unknown_routes_and_methods(gw: TestGateway) {
        gw.call(Method::GET, "/v1/nothing-here", Some(&gw.admin_key), None)
            .await
            .problem(StatusCode::NOT_FOUND);
        gw.call(Method::DELETE, "/v1/custom-integrations/", Some(&gw.admin_key), None)
            .await
            .problem(StatusCode::METHOD_NOT_ALLOWED);
        gw.call(Method::POST, "/healthz", None, None)
            .await
            .problem(StatusCode::METHOD_NOT_ALLOWED);
    }

    async fn stops_gracefully(gw: TestGateway) {
        let base = gw.base.clone();
        gw.stop().await;
        assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "no longer listening");
    }
}

fn gateway_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
}

#[test]
fn store_create_prints_the_store_and_a_working_key() {
    let dir = tempfile::tempdir().expect("dir");
    let output = gateway_binary()
        .args(["store", "create", "--name", "Acme", "--data-dir"])
        .arg(dir.path())
        .env_remove("SLUICE_DATABASE_URL")
        .output()
        .expect("run gateway store create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert!(printed["storeId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(printed["apiKey"].as_str().is_some_and(|k| k.contains(':')));
    assert!(dir.path().join("sluice.db").exists());
}

#[test]
fn first_start_on_an_empty_data_dir_prints_an_admin_key_once() {
    let dir = tempfile::tempdir().expect("dir");
    let start = || {
        let mut child = gateway_binary()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("SLUICE_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gateway");
        // The gateway logs "gateway listening" on stderr once it serves; stdout carries the
        // key, printed before that.
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let ready = lines.by_ref().take(50).any(|line| {
            line.map(|l| l.contains("gateway listening"))
                .unwrap_or(false)
        });
        let _ = child.kill();
        let output = child.wait_with_output().expect("stopped");
        assert!(ready, "gateway did not start");
        String::from_utf8(output.stdout).expect("utf8")
    };
    let first = start();
    let printed: serde_json::Value =
        serde_json::from_str(first.lines().next().expect("a line on stdout")).expect("JSON");
    assert!(printed["apiKey"].as_str().is_some_and(|k| k.contains(':')));
    let second = start();
    assert!(
        second.trim().is_empty(),
        "a second start prints no key: {second}"
    );
}

/// Every metric family on `/metrics` carries HELP text, so a dashboard or an operator reading
/// the exposition knows what each one counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_says_what_it_measures() {
    use crate::harness::{Backend, TestGateway};
    use crate::ingest::{webhook_path, webhook_type};

    let gw = TestGateway::start(Backend::Sqlite).await;
    gw.event_type(webhook_type()).await;
    let event =
        serde_json::json!({"customer": {"email": "help@example.com"}, "order": {"total": 1}});
    let reply = gw
        .call(Method::POST, &webhook_path(&gw), None, Some(&event))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // Stored, so the consumer's metrics have been reported too.
    gw.activities_eventually("help@example.com", 1).await;
    let metrics = gw.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("text");
    let families: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    for expected in [
        "sluice_http_requests_total",
        "sluice_events_accepted_total",
        "sluice_queue_publish_duration_seconds",
        "sluice_consumer_events_total",
        "sluice_event_end_to_end_seconds",
    ] {
        assert!(
            families.contains(&expected),
            "{expected} missing from\n{text}"
        );
    }
    for family in families {
        let help = text
            .lines()
            .find_map(|line| line.strip_prefix(&format!("# HELP {family} ")));
        assert!(
            help.is_some_and(|help| !help.trim().is_empty()),
            "{family} has no HELP text"
        );
    }
}

/// Replicas of one Deployment start together on an empty PostgreSQL database: one of them
/// creates the first store and prints its key, the others find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_starting_together_create_one_first_store() {
    let dir = tempfile::tempdir().expect("dir");
    let url = crate::harness::fresh_database(crate::harness::Backend::Postgres, dir.path()).await;
    let storage = gateway::config::StorageConfig {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(url.clone()),
    };
    // The schema exists before the race, as after any earlier start.
    let db = store::connect(&url).await.expect("migrate");
    // Hold the gate closed until every start has found no store and waits at it, so they all
    // reach the decision together rather than one after another.
    let mut gate = db.acquire().await.expect("connection");
    let lock = store::registry::stores::FIRST_STORE_LOCK;
    sqlx::query(&format!("SELECT pg_advisory_lock({lock})"))
        .execute(&mut *gate)
        .await
        .expect("lock");
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let storage = storage.clone();
            tokio::spawn(async move { gateway::create_first_store(&storage).await })
        })
        .collect();
    crate::harness::wait_until(Duration::from_secs(20), "every start to wait", || async {
        // This lock only, in this database: a 64-bit key is classid (high half) and objid.
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(lock >> 32)
        .bind(lock & 0xffff_ffff)
        .fetch_one(&db)
        .await
        .expect("pg_locks");
        (waiting == 8).then_some(())
    })
    .await;
    sqlx::query(&format!("SELECT pg_advisory_unlock({lock})"))
        .execute(&mut *gate)
        .await
        .expect("unlock");
    drop(gate);
    let mut created = 0;
    for start in starts {
        if start.await.expect("task").expect("start").is_some() {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one first store");
    assert_eq!(store::registry::stores::count(&db).await.expect("count"), 1);
}
