//! `--verify`: after the run, reads every contact the run's accepted events were about from
//! the contacts API until each accepted event id is there, and reports events lost (answered
//! 201, never stored), duplicated (stored twice) and stored without an answer (the answer was
//! lost to a timeout). No general load tool can tell this.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::setup::Management;

/// What `--verify` found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verified {
    pub expected: u64,
    pub found: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub unacknowledged: u64,
    pub waited_s: f64,
    pub lost_samples: Vec<String>,
}

impl Verified {
    pub(crate) fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0
    }
}

/// Contacts read at once.
const PARALLEL: usize = 16;

/// Waits up to `timeout` for every accepted `(email, id)` to show in the contacts API.
pub(crate) async fn verify(
    api: Management,
    accepted: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<Verified> {
    let started = Instant::now();
    let mut by_contact: HashMap<String, HashSet<String>> = HashMap::new();
    for (email, id) in accepted {
        by_contact
            .entry(email.clone())
            .or_default()
            .insert(id.clone());
    }
    let api = Arc::new(api);
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut pending: Vec<String> = by_contact.keys().cloned().collect();
    loop {
        let slots = Arc::new(Semaphore::new(PARALLEL));
        let mut reads = tokio::task::JoinSet::new();
        for email in pending.drain(..) {
            let (api, slots) = (api.clone(), slots.clone());
            reads.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let ids = activity_ids(&api, &email).await;
                (email, ids)
            });
        }
        while let Some(read) = reads.join_next().await {
            let (email, ids) = read?;
            let ids = ids?;
            let expected = &by_contact[&email];
            if !expected.iter().all(|id| ids.contains(id)) {
                pending.push(email.clone());
            }
            seen.insert(email, ids);
        }
        if pending.is_empty() || started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut report = Verified {
        expected: accepted.len() as u64,
        found: 0,
        lost: 0,
        duplicated: 0,
        unacknowledged: 0,
        waited_s: started.elapsed().as_secs_f64(),
        lost_samples: Vec::new(),
    };
    for (email, expected) in &by_contact {
        let ids = seen.get(email).cloned().unwrap_or_default();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for id in &ids {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        for id in expected {
            match counts.get(id.as_str()) {
                Some(_) => report.found += 1,
                None => {
                    report.lost += 1;
                    if report.lost_samples.len() < 10 {
                        report.lost_samples.push(format!("{id} ({email})"));
                    }
                }
            }
        }
        report.duplicated += counts
            .values()
            .filter(|n| **n > 1)
            .map(|n| n - 1)
            .sum::<u64>();
        report.unacknowledged += counts.keys().filter(|id| !expected.contains(**id)).count() as u64;
    }
    Ok(report)
}

/// Every activity id of a contact, following the pages.
async fn activity_ids(api: &Management, email: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut path = format!("/v1/contacts/{email}/activities?limit=1000");
    loop {
        let (status, page) = api.call(reqwest::Method::GET, &path, None).await?;
        match status {
            200 => {}
            // Not stored yet.
            404 => return Ok(ids),
            _ => anyhow::bail!("reading activities of {email} answered {status}: {page}"),
        }
        for activity in page["results"].as_array().into_iter().flatten() {
            if let Some(id) = activity["eventId"].as_str() {
                ids.push(id.to_owned());
            }
        }
        match page["links"]["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => return Ok(ids),
        }
    }
}
