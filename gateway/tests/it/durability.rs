//! What survives a crash and a stop: a gateway killed with SIGKILL after acknowledging N events
//! has exactly N activities once restarted; SIGTERM drains and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::wait_until;

struct Process {
    child: Child,
    base: String,
}

/// Starts the gateway binary on a free port and waits until it answers /healthz.
async fn start(data_dir: &std::path::Path) -> (Process, Option<Value>) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
        probe.local_addr().expect("address").port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env_remove("SLUICE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gateway");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until(Duration::from_secs(20), "the gateway to start", || async {
        let reply = client.get(format!("{base}/healthz")).send().await.ok()?;
        (reply.status() == StatusCode::OK).then_some(())
    })
    .await;
    // The first start prints the admin key; later starts print nothing, so only read a line
    // when one is there to read.
    let stdout = child.stdout.take().expect("stdout");
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        line
    });
    let printed = tokio::time::timeout(Duration::from_millis(500), first_line)
        .await
        .ok()
        .and_then(|line| line.ok())
        .and_then(|line| serde_json::from_str(&line).ok());
    (Process { child, base }, printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut gateway, printed) = start(dir.path()).await;
    let printed = printed.expect("the first start prints the admin key");
    let key = printed["apiKey"].as_str().expect("key").to_owned();
    let store = printed["storeId"].as_str().expect("store").to_owned();
    let client = reqwest::Client::new();
    let auth = format!("apiKey {key}");
    let integration: Value = client
        .post(format!("{}/v1/custom-integrations/", gateway.base))
        .header("authorization", &auth)
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let created = client
        .post(format!("{}/v1/custom-integrations/{}/custom-event-types/", gateway.base, integration["id"].as_str().expect("id")))
        .header("authorization", &auth)
        .json(&json!({
            "name": "Tick", "category": "receive", "alias": "tick", "receiveType": "webhook",
            "fields": [{"id": "email", "name": "Email", "type": "email", "required": true, "isPrimaryKey": true},
                       {"id": "n", "name": "N", "type": "integer", "required": true}]
        }))
        .send().await.expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);

    // Many concurrent senders; count exactly the events answered 201, then kill without warning
    // while more are still arriving.
    let url = format!("{}/v1/{store}/custom-events/alias/tick", gateway.base);
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (client, url) = (client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..1000 {
                let reply = client
                    .post(&url)
                    .json(&json!({"email": "crash@example.com", "n": sender * 1000 + n}))
                    .send()
                    .await;
                match reply {
                    Ok(reply) if reply.status() == StatusCode::CREATED => {
                        let body: Value = reply.json().await.unwrap_or_default();
                        if let Some(id) = body["id"].as_str() {
                            acknowledged.push(id.to_owned());
                        }
                    }
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    // The senders' load runs this long before the kill lands in the middle of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gateway.child.kill().expect("SIGKILL");
    gateway.child.wait().expect("reaped");
    let mut acknowledged = Vec::new();
    for sender in senders {
        acknowledged.extend(sender.await.expect("sender"));
    }
    assert!(
        !acknowledged.is_empty(),
        "no event was acknowledged before the kill"
    );

    let (mut restarted, printed) = start(dir.path()).await;
    assert!(printed.is_none(), "a restart prints no new key");
    let activities_url = format!(
        "{}/v1/contacts/crash@example.com/activities?limit=1000",
        restarted.base
    );
    let wanted = format!(
        "the {} acknowledged events to be stored",
        acknowledged.len()
    );
    let stored: Vec<String> = wait_until(Duration::from_secs(30), wanted, || async {
        let mut ids = Vec::new();
        let mut next = Some(activities_url.clone());
        while let Some(url) = next.take() {
            let page: Value = client
                .get(&url)
                .header("authorization", &auth)
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            for activity in page["results"].as_array().cloned().unwrap_or_default() {
                ids.push(activity["eventId"].as_str().expect("id").to_owned());
            }
            next = page["links"]["next"]
                .as_str()
                .map(|path| format!("{}{path}", restarted.base));
        }
        (ids.len() >= acknowledged.len()).then_some(ids)
    })
    .await;
    let _ = restarted.child.kill();
    let _ = restarted.child.wait();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort();
    stored_sorted.dedup();
    assert_eq!(
        stored_sorted.len(),
        stored.len(),
        "an event was recorded twice"
    );
    for id in &acknowledged {
        assert!(
            stored_sorted.binary_search(id).is_ok(),
            "acknowledged event {id} was lost"
        );
    }
    // Events in flight at the kill may also have been written without their answer reaching
    // the sender; none was acknowledged and lost, none recorded twice.
    assert!(stored.len() >= acknowledged.len());
    eprintln!(
        "acknowledged {} events before SIGKILL; {} stored after restart",
        acknowledged.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut gateway, _) = start(dir.path()).await;
    let status = Command::new("kill")
        .args(["-TERM", &gateway.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let child = &mut gateway.child;
    let exit = wait_until(
        Duration::from_secs(20),
        "the gateway to stop after SIGTERM",
        || {
            let exited = child.try_wait().expect("wait");
            async move { exited }
        },
    )
    .await;
    assert!(exit.success(), "exit status {exit}");
    assert!(reqwest::get(format!("{}/healthz", gateway.base))
        .await
        .is_err());
}
