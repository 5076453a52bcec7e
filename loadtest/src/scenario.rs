//! Scenarios: what each request is. Events carry randomised contacts (spread over
//! `--contacts`) and unique order ids, so they land on many contacts and partitions the way
//! real traffic does; the mixed scenario adds chosen shares of bad and over-limit requests.

use bytes::Bytes;
use clap::ValueEnum;
use rand::Rng;

/// The event type aliases `--setup` creates and scenarios send to.
pub(crate) const WEBHOOK_ALIAS: &str = "lt-webhook";
pub(crate) const API_ALIAS: &str = "lt-api";
pub(crate) const SDK_ALIAS: &str = "lt-sdk";
/// Bigger than the gateway's 512 KiB event limit.
const OVERSIZE_BYTES: usize = 600 * 1024;

/// Which requests a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScenarioKind {
    /// Unauthenticated webhook events (`/v1/{store}/custom-events/alias/…`).
    Webhook,
    /// API-key events (`/v1/custom-events/alias/…?createContact=true`).
    Api,
    /// SDK events (`/v1/{store}/sdk/custom-events/alias/…`), each connection from its own
    /// loopback address against a loopback target (see --single-source).
    Sdk,
    /// JSON arrays of `--batch-size` API events
    /// (`/v1/custom-events/alias/…/batch?createContact=true`); every item must be accepted.
    Batch,
    /// Webhook events with shares of invalid, oversize and over-limit requests.
    Mixed,
}

impl ScenarioKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ScenarioKind::Webhook => "webhook",
            ScenarioKind::Api => "api",
            ScenarioKind::Sdk => "sdk",
            ScenarioKind::Batch => "batch",
            ScenarioKind::Mixed => "mixed",
        }
    }

    pub(crate) fn needs_store(self) -> bool {
        matches!(
            self,
            ScenarioKind::Webhook | ScenarioKind::Sdk | ScenarioKind::Mixed
        )
    }

    pub(crate) fn needs_key(self) -> bool {
        matches!(self, ScenarioKind::Api | ScenarioKind::Batch)
    }
}

/// The shape of the generated traffic.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    pub kind: ScenarioKind,
    pub contacts: u64,
    pub payload_bytes: usize,
    pub batch_size: usize,
    pub invalid_share: f64,
    pub oversize_share: f64,
    pub over_limit_share: f64,
}

/// Where requests go: found by `--setup` or given as flags.
#[derive(Debug, Clone)]
pub(crate) struct Targets {
    pub store: String,
    pub key: Option<String>,
    /// Signs webhook events (`X-Hub-Signature-256`) when set.
    pub webhook_secret: Option<String>,
}

/// What a request is meant to provoke, and so which answers are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Intent {
    /// A valid event (or batch): 201 (200 for a batch, with 201 for every item).
    Valid,
    /// Misses a required field: 422.
    Invalid,
    /// Over the size limit: 413.
    Oversize,
    /// Sent past a rate limit: 201 or 429.
    OverLimit,
}

impl Intent {
    pub(crate) fn expects(self, status: u16, batch: bool) -> bool {
        match self {
            Intent::Valid if batch => status == 200,
            Intent::Valid => status == 201,
            Intent::Invalid => status == 422,
            Intent::Oversize => status == 413,
            Intent::OverLimit => status == 201 || status == 429,
        }
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub path: String,
    pub body: Bytes,
    pub content_type: &'static str,
    pub key: Option<String>,
    pub intent: Intent,
    /// Contacts of the events in the body, in order, for `--verify`.
    pub emails: Vec<String>,
    pub batch: bool,
    /// `X-Hub-Signature-256` of a signed webhook event.
    pub signature: Option<String>,
}

/// Builds requests for a mix and its targets.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    mix: Mix,
    targets: Targets,
    padding: String,
    /// Built once: cloning `Bytes` shares it.
    oversize: Bytes,
    /// Part of every contact's email: each run's contacts are its own, so `--verify` reads
    /// only this run's events even in a store earlier runs used.
    run_tag: String,
}

impl Scenario {
    pub(crate) fn new(mix: Mix, targets: Targets) -> Scenario {
        // The fixed part of an event is about 120 bytes; padding makes up the rest.
        let padding = "x".repeat(mix.payload_bytes.saturating_sub(120));
        let oversize = Bytes::from(format!(
            r#"{{"customer":{{"email":"big@loadtest.example"}},"order":{{"id":"big","total":1}},"pad":"{}"}}"#,
            "x".repeat(OVERSIZE_BYTES)
        ));
        Scenario {
            mix,
            targets,
            padding,
            oversize,
            run_tag: format!("{:06x}", rand::random::<u32>() & 0xff_ffff),
        }
    }

    /// Request number `seq`.
    pub(crate) fn request(&self, seq: u64, rng: &mut impl Rng) -> Planned {
        let email = self.email(rng);
        let store = &self.targets.store;
        match self.mix.kind {
            ScenarioKind::Webhook => self.webhook(seq, email, Intent::Valid),
            ScenarioKind::Api => self.api(seq, email),
            ScenarioKind::Sdk => self.sdk(seq, email, Intent::Valid),
            ScenarioKind::Batch => self.batch(seq, rng),
            ScenarioKind::Mixed => {
                let draw: f64 = rng.random();
                let mix = &self.mix;
                if draw < mix.invalid_share {
                    let body = format!(
                        r#"{{"customer":{{"name":"no email"}},"order":{{"id":"o-{seq}","total":1}}}}"#
                    );
                    Planned {
                        signature: None,
                        path: format!("/v1/{store}/custom-events/alias/{WEBHOOK_ALIAS}"),
                        body: Bytes::from(body),
                        content_type: "application/json",
                        key: None,
                        intent: Intent::Invalid,
                        emails: Vec::new(),
                        batch: false,
                    }
                } else if draw < mix.invalid_share + mix.oversize_share {
                    let mut planned = self.webhook(seq, email, Intent::Oversize);
                    planned.body = self.oversize.clone();
                    planned.emails.clear();
                    planned
                } else if draw < mix.invalid_share + mix.oversize_share + mix.over_limit_share {
                    self.sdk(seq, email, Intent::OverLimit)
                } else {
                    self.webhook(seq, email, Intent::Valid)
                }
            }
        }
    }

    /// A random one of this run's contacts.
    fn email(&self, rng: &mut impl Rng) -> String {
        let n = rng.random_range(0..self.mix.contacts);
        format!("c{n}.{}@loadtest.example", self.run_tag)
    }

    fn webhook(&self, seq: u64, email: String, intent: Intent) -> Planned {
        let body = format!(
            r#"{{"customer":{{"email":"{email}"}},"order":{{"id":"o-{seq}","total":12.5}},"pad":"{}"}}"#,
            self.padding
        );
        let signature = self
            .targets
            .webhook_secret
            .as_deref()
            .map(|secret| sign(secret, body.as_bytes()));
        Planned {
            signature,
            path: format!(
                "/v1/{}/custom-events/alias/{WEBHOOK_ALIAS}",
                self.targets.store
            ),
            body: Bytes::from(body),
            content_type: "application/json",
            key: None,
            intent,
            emails: vec![email],
            batch: false,
        }
    }

    fn api_event(&self, seq: u64, email: &str) -> String {
        format!(
            r#"{{"email":"{email}","orderId":"o-{seq}","total":12.5,"note":"{}"}}"#,
            self.padding
        )
    }

    fn api(&self, seq: u64, email: String) -> Planned {
        Planned {
            signature: None,
            path: format!("/v1/custom-events/alias/{API_ALIAS}?createContact=true"),
            body: Bytes::from(self.api_event(seq, &email)),
            content_type: "application/json",
            key: self.targets.key.clone(),
            intent: Intent::Valid,
            emails: vec![email],
            batch: false,
        }
    }

    fn sdk(&self, seq: u64, email: String, intent: Intent) -> Planned {
        let body = format!(
            r#"{{"email":"{email}","url":"/p/{seq}","pad":"{}"}}"#,
            self.padding
        );
        Planned {
            signature: None,
            path: format!(
                "/v1/{}/sdk/custom-events/alias/{SDK_ALIAS}",
                self.targets.store
            ),
            body: Bytes::from(body),
            content_type: "application/json",
            key: None,
            intent,
            emails: vec![email],
            batch: false,
        }
    }

    fn batch(&self, seq: u64, rng: &mut impl Rng) -> Planned {
        let size = self.mix.batch_size as u64;
        let emails: Vec<String> = (0..size).map(|_| self.email(rng)).collect();
        let events: Vec<String> = emails
            .iter()
            .enumerate()
            .map(|(i, email)| self.api_event(seq * size + i as u64, email))
            .collect();
        Planned {
            signature: None,
            // Without createContact the api path refuses each event of a new contact.
            path: format!("/v1/custom-events/alias/{API_ALIAS}/batch?createContact=true"),
            body: Bytes::from(format!("[{}]", events.join(","))),
            content_type: "application/json",
            key: self.targets.key.clone(),
            intent: Intent::Valid,
            emails,
            batch: true,
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs its webhooks.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    use std::fmt::Write as _;
    // Any key length is accepted by HMAC, so this cannot fail.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let mut signature = String::with_capacity(7 + 64);
    signature.push_str("sha256=");
    for byte in mac.finalize().into_bytes() {
        let _ = write!(signature, "{byte:02x}");
    }
    signature
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(kind: ScenarioKind) -> Mix {
        Mix {
            kind,
            contacts: 50,
            payload_bytes: 1024,
            batch_size: 10,
            invalid_share: 0.2,
            oversize_share: 0.1,
            over_limit_share: 0.1,
        }
    }

    fn scenario(kind: ScenarioKind) -> Scenario {
        Scenario::new(
            mix(kind),
            Targets {
                store: "s1".into(),
                key: Some("k:s".into()),
                webhook_secret: None,
            },
        )
    }

    /// GitHub's published test values ("Validating webhook deliveries").
    #[test]
    fn webhook_events_are_signed_as_github_signs_them() {
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let mut signed = scenario(ScenarioKind::Webhook);
        signed.targets.webhook_secret = Some("It's a Secret to Everybody".into());
        let request = signed.request(7, &mut rand::rng());
        assert_eq!(
            request.signature,
            Some(sign("It's a Secret to Everybody", &request.body))
        );
        assert_eq!(
            scenario(ScenarioKind::Webhook)
                .request(7, &mut rand::rng())
                .signature,
            None
        );
    }

    #[test]
    fn valid_events_are_json_of_about_the_asked_size_and_spread_over_contacts() {
        let s = scenario(ScenarioKind::Webhook);
        let mut rng = rand::rng();
        let mut contacts = std::collections::HashSet::new();
        for seq in 0..500 {
            let r = s.request(seq, &mut rng);
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(body["order"]["id"], format!("o-{seq}"));
            assert!((900..=1100).contains(&r.body.len()), "{}", r.body.len());
            contacts.insert(r.emails[0].clone());
            assert_eq!(r.path, "/v1/s1/custom-events/alias/lt-webhook");
        }
        assert!(contacts.len() > 40, "{} contacts", contacts.len());
    }

    #[test]
    fn mixed_traffic_has_about_the_chosen_shares() {
        let s = scenario(ScenarioKind::Mixed);
        let mut rng = rand::rng();
        let mut counts = std::collections::BTreeMap::new();
        for seq in 0..5000 {
            *counts.entry(s.request(seq, &mut rng).intent).or_insert(0) += 1;
        }
        let share = |i: Intent| f64::from(counts.get(&i).copied().unwrap_or(0)) / 5000.0;
        assert!((share(Intent::Invalid) - 0.2).abs() < 0.03, "{counts:?}");
        assert!((share(Intent::Oversize) - 0.1).abs() < 0.03, "{counts:?}");
        assert!((share(Intent::OverLimit) - 0.1).abs() < 0.03, "{counts:?}");
        assert!((share(Intent::Valid) - 0.6).abs() < 0.03, "{counts:?}");
    }

    #[test]
    fn batches_hold_the_asked_number_of_api_events() {
        let r = scenario(ScenarioKind::Batch).request(3, &mut rand::rng());
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(body.as_array().map(Vec::len), Some(10));
        assert_eq!(r.emails.len(), 10);
        assert!(r.batch && r.key.is_some());
        assert_eq!(
            r.path,
            "/v1/custom-events/alias/lt-api/batch?createContact=true"
        );
        assert!(Intent::Valid.expects(200, true) && !Intent::Valid.expects(201, true));
    }
}
