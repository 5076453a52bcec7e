//! The load generator against a real gateway: `--setup` prepares a fresh store and `--verify`
//! finds every accepted event downstream, once, in the mixed scenario (valid, invalid,
//! oversize and over-limit requests) and the batch scenario; `--setup` reuses the key it
//! stored; a run of unexpected answers fails; the SDK scenario's visitors each have their own
//! loopback address, so the per-IP limit applies to each.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{binary, Backend, TestGateway};

/// Runs the real `loadtest` binary with `args` and waits for it.
async fn loadtest(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(binary("loadtest"))
            .args(&args)
            .output()
            .expect("run loadtest")
    })
    .await
    .expect("join")
}

fn args(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read report")).expect("json report")
}

/// Rows in the store's api_keys table: every key ever minted for it.
async fn api_keys(gw: &TestGateway) -> i64 {
    sqlx::any::install_default_drivers();
    let url = gw.storage.database_url.clone().expect("database url");
    let pool = sqlx::AnyPool::connect(&url)
        .await
        .expect("connect to the store");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
        .fetch_one(&pool)
        .await
        .expect("count keys");
    pool.close().await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_verify_against_a_fresh_gateway() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        config.rate_limit_sdk = std::num::NonZeroU32::new(5).expect("non-zero");
    })
    .await;
    let report = tempfile::NamedTempFile::new().expect("report file");
    let state = tempfile::tempdir().expect("state dir");
    let keys = state.path().join("keys.json");
    let (url, key, path, keys_path) = (
        gw.base.clone(),
        gw.admin_key.clone(),
        report.path().to_owned(),
        keys.clone(),
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary("loadtest"))
            .args([
                "run",
                "--url",
                &url,
                "--setup",
                "--admin-key",
                &key,
                "--verify",
            ])
            .args([
                "--scenario",
                "mixed",
                "--requests",
                "400",
                "--connections",
                "8",
            ])
            .args(["--over-limit-share", "0.1", "--contacts", "50", "--quiet"])
            .arg("--report")
            .arg(&path)
            .arg("--state")
            .arg(&keys_path)
            .output()
            .expect("run loadtest")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).expect("read report")).expect("json");
    assert_eq!(report["requests"], 400, "{report}");
    assert_eq!(report["unexpected"], 0, "{stdout}");
    // The only requests without an answer may be oversize bodies cut off by a reset.
    let failed: u64 = report["failures"]
        .as_object()
        .map(|all| all.values().filter_map(serde_json::Value::as_u64).sum())
        .unwrap_or(0);
    assert_eq!(report["failures_expected"], failed, "{report}");
    let statuses = &report["statuses"];
    for status in ["201", "422", "413", "429"] {
        assert!(
            statuses[status].as_u64().unwrap_or(0) > 0,
            "no {status} in {statuses}"
        );
    }
    let verify = &report["verify"];
    assert_eq!(verify["lost"], 0, "{verify}");
    assert_eq!(verify["duplicated"], 0, "{verify}");
    assert_eq!(verify["found"], report["events_accepted"], "{verify}");
    assert!(
        report["events_accepted"].as_u64().unwrap_or(0) > 200,
        "{report}"
    );

    // A second run reuses what the first set up.
    let (url, key) = (gw.base.clone(), gw.admin_key.clone());
    let again = tokio::task::spawn_blocking(move || {
        Command::new(binary("loadtest"))
            .args([
                "run",
                "--url",
                &url,
                "--setup",
                "--admin-key",
                &key,
                "--requests",
                "20",
                "--quiet",
            ])
            .arg("--state")
            .arg(&keys)
            .output()
            .expect("run loadtest")
    })
    .await
    .expect("join");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let integrations = gw.get("/v1/custom-integrations/", &gw.admin_key).await;
    assert_eq!(
        integrations.body["results"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_accepted_item_by_item_and_setup_reuses_its_key() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys.json");
    let run_report = dir.path().join("run.json");
    let common = format!(
        "run --url {} --setup --admin-key {} --state {} --report {} --quiet",
        gw.base,
        gw.admin_key,
        keys.display(),
        run_report.display()
    );
    let before = api_keys(&gw).await;

    let first = loadtest(args(&format!(
        "{common} --scenario batch --batch-size 20 --requests 10 --connections 2 \
         --contacts 30 --verify --verify-timeout 30s"
    )))
    .await;
    assert!(first.status.success(), "{}", shown(&first));
    let report = read_report(&run_report);
    assert_eq!(report["statuses"]["200"], 10, "{report}");
    assert_eq!(
        report["events_accepted"], 200,
        "every item accepted: {report}"
    );
    assert_eq!(report["events_refused"], 0, "{report}");
    assert_eq!(report["unexpected"], 0, "{report}");
    let verify = &report["verify"];
    assert_eq!(verify["found"], 200, "{verify}");
    assert_eq!(
        (&verify["lost"], &verify["duplicated"]),
        (&0.into(), &0.into())
    );
    assert_eq!(
        api_keys(&gw).await,
        before + 1,
        "the first run mints one key"
    );
    let stored = std::fs::read(&keys).expect("the key was stored");

    // A second run finds the stored key and mints none.
    let second = loadtest(args(&format!(
        "{common} --scenario batch --batch-size 5 --requests 4 --connections 1"
    )))
    .await;
    assert!(second.status.success(), "{}", shown(&second));
    assert_eq!(read_report(&run_report)["events_accepted"], 20);
    assert_eq!(
        api_keys(&gw).await,
        before + 1,
        "no second key: {}",
        shown(&second)
    );
    assert_eq!(
        std::fs::read(&keys).expect("keys"),
        stored,
        "the file is unchanged"
    );

    // A stored key the gateway no longer knows answers 401: a new one is minted and stored.
    let entry = format!("{} {}", gw.base, gw.store_id);
    std::fs::write(
        &keys,
        serde_json::json!({ entry.as_str(): "k_unknown:secret" }).to_string(),
    )
    .expect("replace the stored key");
    let third = loadtest(args(&format!(
        "{common} --scenario batch --batch-size 5 --requests 2 --connections 1"
    )))
    .await;
    assert!(third.status.success(), "{}", shown(&third));
    assert_eq!(api_keys(&gw).await, before + 2);
    let replaced: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&keys).expect("keys")).expect("json");
    let new_key = replaced[entry.as_str()]
        .as_str()
        .expect("a key for this store");
    assert_ne!(new_key, "k_unknown:secret");
    assert_eq!(read_report(&run_report)["events_accepted"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_unexpected_answers_fails_with_exit_code_3() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run_report = dir.path().join("run.json");
    // A key the gateway does not know: every batch answers 401.
    let output = loadtest(args(&format!(
        "run --url {} --scenario batch --key k_unknown:secret --batch-size 3 --requests 12 \
         --connections 2 --quiet --report {}",
        gw.base,
        run_report.display()
    )))
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", shown(&output));
    let report = read_report(&run_report);
    assert_eq!(report["statuses"]["401"], 12, "{report}");
    assert_eq!(report["unexpected"], 12, "{report}");
    assert_eq!(report["events_accepted"], 0, "{report}");
    assert_eq!(report["events_refused"], 36, "{report}");
    assert_eq!(report["unexpected_percent"], 100.0, "{report}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILED: 100.00%"), "{stdout}");

    // The same refusals within a threshold that allows them: the run passes... except that
    // none succeeded, which no threshold allows.
    let output = loadtest(args(&format!(
        "run --url {} --scenario batch --key k_unknown:secret --batch-size 3 --requests 4 \
         --connections 1 --quiet --max-unexpected 100",
        gw.base
    )))
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", shown(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_visitors_each_get_the_per_ip_limit_from_their_own_loopback_address() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        config.rate_limit_sdk = std::num::NonZeroU32::new(5).expect("non-zero");
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run_report = dir.path().join("run.json");
    // 100 requests/s over 40 connections: about 2.5/s from each address, under the limit of
    // 5/s per address; from one address, 20 times it.
    let common = format!(
        "run --url {} --setup --admin-key {} --state {} --report {} --quiet --scenario sdk \
         --rate 100 --requests 100 --connections 40 --max-unexpected 0",
        gw.base,
        gw.admin_key,
        dir.path().join("keys.json").display(),
        run_report.display()
    );
    let spread = loadtest(args(&common)).await;
    assert!(spread.status.success(), "{}", shown(&spread));
    let report = read_report(&run_report);
    assert_eq!(report["statuses"]["201"], 100, "{report}");
    assert_eq!(report["events_accepted"], 100, "{report}");

    let single = loadtest(args(&format!("{common} --single-source"))).await;
    assert_eq!(single.status.code(), Some(3), "{}", shown(&single));
    let report = read_report(&run_report);
    let limited = report["statuses"]["429"].as_u64().unwrap_or(0);
    assert!(limited > 50, "one address is limited: {report}");
}

/// `--webhook-secret`: --setup makes the webhook type verify GitHub-style signatures and the
/// run signs every event, all taken; a run that does not sign against that type is refused
/// (401, unexpected), and --setup without the secret removes the verification again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhook_runs_are_verified() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run_report = dir.path().join("run.json");
    let common = format!(
        "run --url {} --admin-key {} --state {} --report {} --quiet --scenario webhook \
         --requests 40 --connections 2 --contacts 10",
        gw.base,
        gw.admin_key,
        dir.path().join("keys.json").display(),
        run_report.display()
    );
    let secret = "loadtest-secret-0123456789";
    let signed = loadtest(args(&format!(
        "{common} --setup --webhook-secret {secret} --verify --verify-timeout 30s"
    )))
    .await;
    assert!(signed.status.success(), "{}", shown(&signed));
    let report = read_report(&run_report);
    assert_eq!(report["statuses"]["201"], 40, "{report}");
    assert_eq!(report["verify"]["found"], 40, "{report}");

    let unsigned = loadtest(args(&format!("{common} --store {}", gw.store_id))).await;
    assert_eq!(unsigned.status.code(), Some(3), "{}", shown(&unsigned));
    assert_eq!(read_report(&run_report)["statuses"]["401"], 40);

    let plain = loadtest(args(&format!("{common} --setup"))).await;
    assert!(plain.status.success(), "{}", shown(&plain));
    assert_eq!(read_report(&run_report)["statuses"]["201"], 40);
}
