//! API keys: how they are minted, presented, checked and scoped.
//!
//! A key is `{keyId}:{secret}`. Only SHA-256 of the secret is stored; secrets are 256 random
//! bits, so a fast hash is enough (there is nothing to brute-force) and keeps the ingest path
//! cheap. The comparison is constant-time. Found keys are cached briefly so the hot path does
//! not touch the store on every request; the cache only ever holds keys that exist, so its size
//! is bounded by the number of keys.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dashmap::DashMap;
use http::{header, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::registry::api_keys::{self, StoredKey};

/// How long a looked-up key is trusted before it is read again.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// A permission a key may carry (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    CustomEventsWrite,
    CustomEventTypesRead,
    CustomEventTypesWrite,
    CustomIntegrationsRead,
    CustomIntegrationsWrite,
    ContactsRead,
    ContactsWrite,
    SegmentsRead,
    SegmentsWrite,
    WebhooksRead,
    WebhooksWrite,
    WorkflowsRead,
    WorkflowsWrite,
    ApiKeysWrite,
}

impl Scope {
    pub(crate) const ALL: [Scope; 14] = [
        Scope::CustomEventsWrite,
        Scope::CustomEventTypesRead,
        Scope::CustomEventTypesWrite,
        Scope::CustomIntegrationsRead,
        Scope::CustomIntegrationsWrite,
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::SegmentsRead,
        Scope::SegmentsWrite,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::WorkflowsRead,
        Scope::WorkflowsWrite,
        Scope::ApiKeysWrite,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::CustomEventsWrite => "customEvents:write",
            Scope::CustomEventTypesRead => "customEventTypes:read",
            Scope::CustomEventTypesWrite => "customEventTypes:write",
            Scope::CustomIntegrationsRead => "customIntegrations:read",
            Scope::CustomIntegrationsWrite => "customIntegrations:write",
            Scope::ContactsRead => "contacts:read",
            Scope::ContactsWrite => "contacts:write",
            Scope::SegmentsRead => "segments:read",
            Scope::SegmentsWrite => "segments:write",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::WorkflowsRead => "workflows:read",
            Scope::WorkflowsWrite => "workflows:write",
            Scope::ApiKeysWrite => "apiKeys:write",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scopes(u16);

impl Scopes {
    pub(crate) fn all() -> Scopes {
        Scope::ALL.into_iter().collect()
    }

    pub(crate) fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    pub(crate) fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    #[cfg(test)]
    pub(crate) fn is_subset_of(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    pub(crate) fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect()
    }

    /// Parses the stored, space-separated form; unknown names (from a newer version) are skipped.
    pub(crate) fn from_stored(text: &str) -> Scopes {
        text.split_whitespace().filter_map(Scope::parse).collect()
    }

    pub(crate) fn to_stored(self) -> String {
        self.names().join(" ")
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

/// Who is calling: the store a valid key belongs to, and what it may do.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub store_id: String,
    pub key_id: String,
    pub scopes: Scopes,
}

impl Caller {
    /// 403 unless the key carries `scope`.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// A freshly minted key; `presented` is shown to the user once and never stored.
#[derive(Debug)]
pub(crate) struct NewKey {
    pub id: String,
    pub secret_hash: String,
    pub presented: String,
}

/// Mints a key: a random id and a 256-bit random secret.
pub(crate) fn mint_key() -> NewKey {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewKey {
        secret_hash: hash_secret(&secret),
        presented: format!("{id}:{secret}"),
        id,
    }
}

fn hash_secret(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex, as key hashes (and idempotency scopes) are stored.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Splits `Authorization: apiKey {keyId}:{secret}` (scheme case-insensitive).
fn presented_key(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("apikey") {
        return None;
    }
    let (id, secret) = credentials.trim().split_once(':')?;
    // Key ids are minted as 32 lowercase hex digits: anything else is refused without a lookup.
    let well_formed = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed || secret.is_empty() || secret.len() > 128 {
        return None;
    }
    Some((id, secret))
}

#[derive(Debug)]
struct CachedKey {
    key: StoredKey,
    hash: [u8; 32],
    fetched: Instant,
}

/// Checks presented keys against the store, with a short-lived cache of found keys.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: DashMap<String, CachedKey>,
    /// Keys used since the last [`KeyCache::take_used`]: `lastUsedAt` is written from here in
    /// the background, never per request. Only keys that verified get in, so it is bounded by
    /// the keys that exist.
    used: DashMap<String, ()>,
}

impl KeyCache {
    /// Drops a key at once, on this gateway; others refetch it within [`CACHE_TTL`].
    pub(crate) fn forget(&self, id: &str) {
        self.keys.remove(id);
        self.used.remove(id);
    }

    /// Forgets keys not asked for within the cache's lifetime, so keys created, used and
    /// deleted over months do not pile up here; called periodically.
    pub(crate) fn forget_stale(&self) {
        self.keys
            .retain(|_, cached| cached.fetched.elapsed() < CACHE_TTL);
    }

    /// The keys used since the last call.
    pub(crate) fn take_used(&self) -> Vec<String> {
        let ids: Vec<String> = self.used.iter().map(|entry| entry.key().clone()).collect();
        for id in &ids {
            self.used.remove(id);
        }
        ids
    }

    fn note_use(&self, caller: &Result<Caller, ApiError>) {
        if let Ok(caller) = caller {
            if !self.used.contains_key(&caller.key_id) {
                self.used.insert(caller.key_id.clone(), ());
            }
        }
    }

    pub(crate) async fn authenticate(
        &self,
        db: &AnyPool,
        headers: &HeaderMap,
    ) -> Result<Caller, ApiError> {
        let (id, secret) = presented_key(headers).ok_or(ApiError::Unauthorized)?;
        let presented = Sha256::digest(secret.as_bytes());
        if let Some(cached) = self.keys.get(id) {
            if cached.fetched.elapsed() < CACHE_TTL {
                let caller = verify(&cached.key, &cached.hash, &presented);
                drop(cached);
                self.note_use(&caller);
                return caller;
            }
        }
        let Some(key) = api_keys::find(db, id).await? else {
            // Deleted (perhaps by another gateway): nothing of it stays here.
            self.keys.remove(id);
            return Err(ApiError::Unauthorized);
        };
        let hash = decode_hex(&key.secret_hash).ok_or_else(|| {
            ApiError::Internal(crate::error::InternalError::Corrupt(format!(
                "api key {id} has a malformed hash"
            )))
        })?;
        let caller = verify(&key, &hash, &presented);
        self.keys.insert(
            id.to_owned(),
            CachedKey {
                key,
                hash,
                fetched: Instant::now(),
            },
        );
        self.note_use(&caller);
        caller
    }
}

fn verify(key: &StoredKey, stored: &[u8; 32], presented: &[u8]) -> Result<Caller, ApiError> {
    if bool::from(stored.as_slice().ct_eq(presented)) {
        Ok(Caller {
            store_id: key.store_id.clone(),
            key_id: key.id.clone(),
            scopes: key.scopes,
        })
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_key_verifies_and_a_changed_secret_does_not() {
        let key = mint_key();
        let stored = StoredKey {
            id: key.id.clone(),
            store_id: "s".into(),
            secret_hash: key.secret_hash.clone(),
            scopes: Scopes::all(),
        };
        let hash = decode_hex(&key.secret_hash).expect("hex");
        let (_, secret) = key.presented.split_once(':').expect("colon");
        assert!(verify(&stored, &hash, &Sha256::digest(secret.as_bytes())).is_ok());
        let wrong = format!("{secret}x");
        assert!(verify(&stored, &hash, &Sha256::digest(wrong.as_bytes())).is_err());
    }

    #[test]
    fn authorization_scheme_is_case_insensitive_and_malformed_values_are_refused() {
        let mut headers = HeaderMap::new();
        let id = "0196b0a57e4c7cc19d3b2f1b7c9e8a01";
        for (value, ok) in [
            (format!("apiKey {id}:def"), true),
            (format!("APIKEY {id}:def"), true),
            (format!("Bearer {id}:def"), false),
            (format!("apiKey {id}def"), false),
            ("apiKey :def".to_owned(), false),
            (format!("apiKey {id}:"), false),
            ("apiKey".to_owned(), false),
            // Ids that were never minted: not hex, wrong length, upper case.
            ("apiKey abc:def".to_owned(), false),
            (format!("apiKey {}:def", "a".repeat(64)), false),
            (format!("apiKey {}:def", id.to_uppercase()), false),
        ] {
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            assert_eq!(presented_key(&headers).is_some(), ok, "{value}");
        }
    }

    #[test]
    fn scopes_round_trip_through_storage() {
        let scopes: Scopes = [Scope::ContactsRead, Scope::ApiKeysWrite]
            .into_iter()
            .collect();
        assert_eq!(Scopes::from_stored(&scopes.to_stored()), scopes);
        assert!(scopes.is_subset_of(Scopes::all()));
        assert!(!Scopes::all().is_subset_of(scopes));
    }
}
