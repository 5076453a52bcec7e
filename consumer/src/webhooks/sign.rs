//! Standard Webhooks signing: secrets are `whsec_` + base64 of 24 random bytes, and a delivery
//! carries `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// 192 bits: the Standard Webhooks recommendation is 24 to 64 bytes.
const SECRET_BYTES: usize = 24;
/// The most key material accepted from a user-supplied secret.
const MAX_SECRET_BYTES: usize = 64;

/// Why a user-supplied secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("must be whsec_ followed by base64")]
    NotBase64,
    #[error("must hold between {SECRET_BYTES} and {MAX_SECRET_BYTES} bytes of key")]
    Length,
}

/// A fresh random secret, in the form users copy into their verifier.
pub fn generate_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// Checks a secret a user chose: the same form as a generated one, with enough key in it.
pub fn check_secret(secret: &str) -> Result<(), SecretError> {
    let key = key_of(secret).ok_or(SecretError::NotBase64)?;
    if (SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        Ok(())
    } else {
        Err(SecretError::Length)
    }
}

/// The `webhook-signature` value for one attempt. A secret that cannot be decoded (never
/// stored by the API) signs with its raw bytes rather than sending unsigned.
pub fn signature(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = key_of(secret).unwrap_or_else(|| secret.as_bytes().to_vec());
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
        unreachable!("HMAC accepts every key length")
    };
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference test.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert_eq!(check_secret(&a), Ok(()));
        assert!(a.starts_with("whsec_"));
    }

    #[test]
    fn refuses_secrets_without_prefix_base64_or_enough_key() {
        assert_eq!(check_secret("plain"), Err(SecretError::NotBase64));
        assert_eq!(check_secret("whsec_***"), Err(SecretError::NotBase64));
        assert_eq!(check_secret("whsec_c2hvcnQ="), Err(SecretError::Length));
    }
}
