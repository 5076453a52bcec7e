//! The generator against a local stand-in: the rate it holds, latency through a stall, and
//! `--verify` catching an event dropped on purpose.

use std::time::Duration;

use crate::args::{HttpVersion, Plan, Stop};
use crate::scenario::{Mix, Scenario, ScenarioKind, Targets};
use crate::testing::{self, Faults};

fn plan(target: url::Url, rate: Option<f64>, connections: usize, duration: Duration) -> Plan {
    Plan {
        target,
        rate,
        connections,
        stop: Stop {
            duration: Some(duration),
            requests: None,
        },
        http: HttpVersion::Http1,
        timeout: Duration::from_secs(10),
        mix: Mix {
            kind: ScenarioKind::Webhook,
            contacts: 100,
            payload_bytes: 256,
            batch_size: 1,
            invalid_share: 0.0,
            oversize_share: 0.0,
            over_limit_share: 0.0,
        },
        spread_sources: false,
    }
}

fn scenario(plan: &Plan) -> Scenario {
    Scenario::new(
        plan.mix.clone(),
        Targets {
            store: "s".into(),
            key: Some("k:s".into()),
            webhook_secret: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_controller_holds_the_target_rate() {
    let url = testing::start(Faults::default()).await;
    let plan = plan(url, Some(1000.0), 16, Duration::from_secs(3));
    let outcome = crate::generate::run(plan.clone(), scenario(&plan), false, true).await;
    let report = crate::report_of(&plan, &outcome);
    assert_eq!(
        report.requests, 3000,
        "exactly rate x duration requests are sent"
    );
    let achieved = report.answers_per_s;
    assert!(
        (achieved - 1000.0).abs() / 1000.0 <= 0.02,
        "achieved {achieved:.1}/s against 1000/s"
    );
    for second in &outcome.seconds[..outcome.seconds.len().saturating_sub(1)] {
        assert!((second.answers as f64 - 1000.0).abs() <= 50.0, "{second:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_counts_the_wait_through_a_stall() {
    let faults = Faults {
        stall_after: Some(Duration::from_millis(500)),
        stall_for: Duration::from_millis(500),
        drop_event: None,
    };
    // One connection: while it is stalled, every request due meanwhile waits for it.
    let open = plan(
        testing::start(faults).await,
        Some(200.0),
        1,
        Duration::from_secs(2),
    );
    let outcome = crate::generate::run(open.clone(), scenario(&open), false, true).await;
    let slow = outcome.tally.latency.count_between(100_000, u64::MAX);
    // About 100 requests were due during the 500 ms stall; most waited more than 100 ms.
    assert!(
        slow >= 60,
        "only {slow} requests counted as slow: the stall was omitted"
    );
    assert!(outcome.tally.latency.max() >= 450_000);

    // The same stall measured closed-loop, from each send, hides the wait: one slow request.
    let closed = plan(
        testing::start(faults).await,
        None,
        1,
        Duration::from_secs(2),
    );
    let outcome = crate::generate::run(closed.clone(), scenario(&closed), false, true).await;
    assert!(outcome.tally.latency.count_between(100_000, u64::MAX) <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_an_event_dropped_on_purpose() {
    let faults = Faults {
        drop_event: Some(17),
        ..Faults::default()
    };
    let url = testing::start(faults).await;
    let mut plan = plan(url.clone(), None, 4, Duration::from_secs(60));
    plan.stop = Stop {
        duration: None,
        requests: Some(200),
    };
    let outcome = crate::generate::run(plan.clone(), scenario(&plan), true, true).await;
    assert_eq!(outcome.tally.accepted.len(), 200);
    let api = crate::setup::Management::new(&url, "k:s").expect("client");
    let verified = crate::verify::verify(api, &outcome.tally.accepted, Duration::from_secs(2))
        .await
        .expect("verify");
    assert_eq!(verified.expected, 200);
    assert_eq!(verified.found, 199);
    assert_eq!(verified.lost, 1);
    assert_eq!(verified.duplicated, 0);
    assert!(
        verified.lost_samples[0].starts_with("ev-17 "),
        "{:?}",
        verified.lost_samples
    );
    assert!(!verified.is_clean());

    // Nothing dropped: clean.
    let url = testing::start(Faults::default()).await;
    plan.target = url.clone();
    let outcome = crate::generate::run(plan.clone(), scenario(&plan), true, true).await;
    let api = crate::setup::Management::new(&url, "k:s").expect("client");
    let verified = crate::verify::verify(api, &outcome.tally.accepted, Duration::from_secs(2))
        .await
        .expect("verify");
    assert!(verified.is_clean() && verified.found == 200, "{verified:?}");
}

#[test]
fn the_exit_code_counts_failed_and_unexpected_requests_and_lost_events_outrank_them() {
    use crate::client::{Answer, Failure};
    use crate::verdict::Verdict;

    let url = url::Url::parse("http://127.0.0.1:9").expect("url");
    let mut run = plan(url, None, 1, Duration::from_secs(1));
    run.stop = Stop {
        duration: None,
        requests: Some(100),
    };
    let planned = scenario(&run).request(0, &mut rand::rng());
    let outcome = |accepted: u64, refused: u64, failed: u64| {
        let mut tally = crate::report::Tally::new();
        for (status, n) in [(201, accepted), (500, refused)] {
            for _ in 0..n {
                let answer = Answer {
                    status,
                    body: bytes::Bytes::from_static(br#"{"id":"e"}"#),
                };
                tally.record(&planned, &answer, 1000, false);
            }
        }
        for _ in 0..failed {
            tally.fail(Failure::Timeout, planned.intent);
        }
        crate::generate::Outcome {
            tally,
            seconds: Vec::new(),
            elapsed: Duration::from_secs(1),
        }
    };
    let clean = crate::report_of(&run, &outcome(99, 1, 0));
    assert_eq!(clean.unexpected_percent, 1.0);
    assert_eq!(Verdict::of(&clean, 1.0), Verdict::Passed);
    let noisy = crate::report_of(&run, &outcome(98, 1, 1));
    assert_eq!(noisy.events_refused, 1);
    assert_eq!(Verdict::of(&noisy, 1.0), Verdict::Unexpected);
    assert_eq!(Verdict::of(&noisy, 2.0), Verdict::Passed);

    let mut lost = crate::report_of(&run, &outcome(98, 1, 1));
    lost.verify = Some(crate::verify::Verified {
        expected: 98,
        found: 97,
        lost: 1,
        duplicated: 0,
        unacknowledged: 0,
        waited_s: 0.0,
        lost_samples: Vec::new(),
    });
    assert_eq!(Verdict::of(&lost, 1.0), Verdict::Lost);

    // Oversize bodies refused by a reset connection are the refusal they meant to provoke;
    // the same reset on a valid event is a failure.
    let mut tally = outcome(98, 0, 0).tally;
    let mut oversize = planned.clone();
    oversize.intent = crate::scenario::Intent::Oversize;
    tally.fail(Failure::Io, oversize.intent);
    tally.fail(Failure::Io, oversize.intent);
    let reset = crate::generate::Outcome {
        tally,
        seconds: Vec::new(),
        elapsed: Duration::from_secs(1),
    };
    let report = crate::report_of(&run, &reset);
    assert_eq!((report.requests, report.failures_expected), (100, 2));
    assert_eq!(report.unexpected_percent, 0.0);
    assert_eq!(Verdict::of(&report, 0.0), Verdict::Passed);
    let mut tally = reset.tally;
    tally.fail(Failure::Io, planned.intent);
    let report = crate::report_of(&run, &crate::generate::Outcome { tally, ..reset });
    assert_eq!(Verdict::of(&report, 0.5), Verdict::Unexpected);
}
