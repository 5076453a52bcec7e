//! Inbound verification of a webhook receive type (SPEC §5): how a sender proves an event is
//! its own. The secrets are write-only: they are stored apart from the definition (never in
//! its JSON, never answered) and checked by the gateway before the body is parsed.

use serde::{Deserialize, Serialize};

use super::webhook::is_token_byte;
use crate::reader::{as_str, is_null};
use crate::{ObjectReader, Value};

/// Most Standard Webhooks secrets accepted at once (during a key rotation).
const MAX_SECRETS: usize = 5;
/// The shortest shared secret or static value accepted, in characters.
const MIN_SECRET_CHARS: usize = 16;
/// The shortest basic-auth password accepted.
const MIN_PASSWORD_CHARS: usize = 12;

/// How events of a type are verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Verification {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`): any of the
    /// `whsec_` secrets, so a sender can rotate its key.
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks { secrets: Vec<String> },
    /// An HMAC-SHA256 of the raw body in a named header, hex or base64, after an optional
    /// prefix (GitHub's `X-Hub-Signature-256: sha256=…`, Shopify's `X-Shopify-Hmac-Sha256`).
    #[serde(rename = "hmac-sha256")]
    HmacSha256 {
        header: String,
        secret: String,
        encoding: Encoding,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    /// `Authorization: Basic …` with these credentials.
    #[serde(rename = "basic")]
    Basic { username: String, password: String },
    /// A header carrying a static value.
    #[serde(rename = "header")]
    Header { name: String, value: String },
}

/// How an HMAC is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

impl Verification {
    /// What may be shown of it: the kind and where it looks, never a secret.
    pub fn summary(&self) -> serde_json::Value {
        match self {
            Verification::StandardWebhooks { secrets } => serde_json::json!({
                "type": "standard-webhooks", "secrets": secrets.len(),
            }),
            Verification::HmacSha256 {
                header,
                encoding,
                prefix,
                ..
            } => serde_json::json!({
                "type": "hmac-sha256", "header": header, "encoding": encoding, "prefix": prefix,
            }),
            Verification::Basic { username, .. } => {
                serde_json::json!({"type": "basic", "username": username})
            }
            Verification::Header { name, .. } => {
                serde_json::json!({"type": "header", "name": name})
            }
        }
    }
}

/// Reads `verification` from a definition's body; `webhook` says whether the type is a
/// webhook receive type, the only kind that verifies.
pub(super) fn read(r: &mut ObjectReader<'_, '_>, webhook: bool) -> Option<Verification> {
    let value = r.value("verification").filter(|v| !is_null(v))?;
    if !webhook {
        r.violate(
            "verification",
            "only a webhook receive type verifies what it receives",
        );
        return None;
    }
    let path = r.child_path("verification");
    let mut v = ObjectReader::new(value, &path, r.violations())?;
    let kind = v.string("type", true, 32);
    let read = match kind.as_deref() {
        Some("standard-webhooks") => read_secrets(&mut v),
        Some("hmac-sha256") => {
            let header = header_name(&mut v, "header");
            let secret = secret(&mut v, "secret", MIN_SECRET_CHARS);
            let encoding = match v.string("encoding", true, 16).as_deref() {
                Some("hex") => Some(Encoding::Hex),
                Some("base64") => Some(Encoding::Base64),
                Some(_) => {
                    v.violate("encoding", "must be hex or base64");
                    None
                }
                None => None,
            };
            let prefix = v.text("prefix", false, 1, 32);
            match (header, secret, encoding) {
                (Some(header), Some(secret), Some(encoding)) => Some(Verification::HmacSha256 {
                    header,
                    secret,
                    encoding,
                    prefix,
                }),
                _ => None,
            }
        }
        Some("basic") => {
            let username = v.text("username", true, 1, 128);
            if username.as_deref().is_some_and(|u| u.contains(':')) {
                v.violate("username", "may not contain ':'");
            }
            let password = secret(&mut v, "password", MIN_PASSWORD_CHARS);
            match (username, password) {
                (Some(username), Some(password)) if !username.contains(':') => {
                    Some(Verification::Basic { username, password })
                }
                _ => None,
            }
        }
        Some("header") => {
            let name = header_name(&mut v, "name");
            let value = secret(&mut v, "value", MIN_SECRET_CHARS);
            match (name, value) {
                (Some(name), Some(value)) => Some(Verification::Header { name, value }),
                _ => None,
            }
        }
        Some(_) => {
            v.violate(
                "type",
                "must be standard-webhooks, hmac-sha256, basic or header",
            );
            None
        }
        None => None,
    };
    v.finish();
    read
}

/// `secret`: one `whsec_` secret or a list of up to [`MAX_SECRETS`]. Their strength is
/// checked where they are decoded.
fn read_secrets(v: &mut ObjectReader<'_, '_>) -> Option<Verification> {
    let value = v.value("secret").filter(|s| !is_null(s));
    let texts: Vec<Option<&str>> = match value {
        None => {
            v.violate("secret", "is required");
            return None;
        }
        Some(value) => match (as_str(value), value) {
            (Some(one), _) => vec![Some(one)],
            (None, Value::Array(many)) if !many.is_empty() && many.len() <= MAX_SECRETS => {
                many.iter().map(as_str).collect()
            }
            _ => {
                v.violate(
                    "secret",
                    format!("must be a whsec_ secret or a list of 1 to {MAX_SECRETS}"),
                );
                return None;
            }
        },
    };
    let mut secrets = Vec::with_capacity(texts.len());
    for text in texts {
        match text {
            Some(text) if text.starts_with("whsec_") && text.len() <= 256 => {
                secrets.push(text.to_owned());
            }
            _ => {
                v.violate("secret", "each secret is whsec_ and its base64 key");
                return None;
            }
        }
    }
    Some(Verification::StandardWebhooks { secrets })
}

/// A secret of at least `min` characters of visible ASCII.
fn secret(v: &mut ObjectReader<'_, '_>, key: &str, min: usize) -> Option<String> {
    let text = v.string(key, true, 256)?;
    if text.chars().count() < min {
        v.violate(key, format!("is too weak: at least {min} characters"));
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        v.violate(key, "must be visible ASCII");
        return None;
    }
    Some(text)
}

/// A header name: an HTTP token of at most 64 characters, kept lower-cased.
fn header_name(v: &mut ObjectReader<'_, '_>, key: &str) -> Option<String> {
    let name = v.string(key, true, 64)?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        v.violate(key, "must be a header name");
        return None;
    }
    Some(name.to_ascii_lowercase())
}
