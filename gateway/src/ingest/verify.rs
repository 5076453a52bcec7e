//! Inbound verification of webhook receive types (SPEC §5): the sender proves the event is its
//! own. Credentials in headers are checked before the body is read; signatures over the body,
//! on its raw bytes (as sent, form-encoded or JSON) before it is parsed. Every comparison takes
//! the same time whatever matches. A failure is a 401 counted as `reason="signature"`; the
//! answer does not say which part was wrong.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use schemas::{Encoding, Verification};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

const REFUSED: &str = "the event's signature or credentials do not verify";

/// Checks what the headers alone prove (basic credentials, a static header); signatures over
/// the body wait for [`body`].
pub(super) fn headers(verification: &Verification, headers: &HeaderMap) -> Result<(), ApiError> {
    let verified = match verification {
        Verification::Basic { username, password } => {
            let expected = format!("{username}:{password}");
            basic_credentials(headers).is_some_and(|sent| equal(&sent, expected.as_bytes()))
        }
        Verification::Header { name, value } => {
            single(headers, name).is_some_and(|sent| equal(sent.as_bytes(), value.as_bytes()))
        }
        Verification::StandardWebhooks { .. } | Verification::HmacSha256 { .. } => true,
    };
    verified.then_some(()).ok_or(ApiError::Unverified(REFUSED))
}

/// Checks a signature over the raw body.
pub(super) fn body(
    verification: &Verification,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<(), ApiError> {
    let verified = match verification {
        Verification::StandardWebhooks { secrets } => secrets.iter().any(|secret| {
            standardwebhooks::Webhook::new(secret)
                .is_ok_and(|webhook| webhook.verify(raw, headers).is_ok())
        }),
        Verification::HmacSha256 {
            header,
            secret,
            encoding,
            prefix,
        } => single(headers, header)
            .and_then(|sent| {
                let sent = sent.trim();
                match prefix {
                    Some(prefix) => sent.strip_prefix(prefix.as_str()),
                    None => Some(sent),
                }
            })
            .and_then(|text| decode(*encoding, text))
            .is_some_and(|signature| {
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).is_ok_and(|mut mac| {
                    mac.update(raw);
                    // `verify_slice` compares in constant time.
                    mac.verify_slice(&signature).is_ok()
                })
            }),
        Verification::Basic { .. } | Verification::Header { .. } => true,
    };
    verified.then_some(()).ok_or(ApiError::Unverified(REFUSED))
}

/// Whether a Standard Webhooks secret is one the algorithm can use and strong enough: `whsec_`
/// and the base64 of 24 to 64 bytes, as the specification recommends.
pub(crate) fn strong_standard_secret(secret: &str) -> bool {
    secret
        .strip_prefix("whsec_")
        .and_then(|key| STANDARD.decode(key).ok())
        .is_some_and(|key| (24..=64).contains(&key.len()))
}

/// The one value of a header; none when it is absent, repeated or not text.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The decoded `user:password` of `Authorization: Basic …`.
fn basic_credentials(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = single(headers, "authorization")?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD.decode(encoded.trim()).ok()
}

fn decode(encoding: Encoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex(text),
        Encoding::Base64 => STANDARD.decode(text).ok(),
    }
}

/// Hex digits, either case, two per byte.
fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Constant-time equality (the lengths may differ, and that is not hidden: they are not
/// secret).
fn equal(sent: &[u8], expected: &[u8]) -> bool {
    sent.ct_eq(expected).into()
}

#[cfg(test)]
mod tests;
