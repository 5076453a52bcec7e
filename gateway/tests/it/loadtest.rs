//! The load generator against a real gateway: `--setup` prepares a fresh store and `--verify`
//! finds every accepted event downstream, once, in the mixed scenario (valid, invalid,
//! oversize and over-limit requests).

use std::process::Command;

use crate::harness::{binary, Backend, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_verify_against_a_fresh_gateway() {
    let gw = TestGateway::start_with(Backend::Sqlite, |config| {
        config.rate_limit_sdk = std::num::NonZeroU32::new(5).expect("non-zero");
    })
    .await;
    let report = tempfile::NamedTempFile::new().expect("report file");
    let (url, key, path) = (
        gw.base.clone(),
        gw.admin_key.clone(),
        report.path().to_owned(),
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
