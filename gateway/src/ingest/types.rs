//! Compiled event types for ingest, cached by store and alias.
//!
//! A cached type is trusted for `FRESH_FOR`; after that the next request reloads it, so a
//! change made through any gateway (a new type, an edit, `eventsEnabled: false`) reaches every
//! gateway within seconds, with no broadcast. This gateway's own registry writes also drop the
//! store's entries at once.
//!
//! Anyone can name a store and alias in a public URL, so the cache is bounded twice: a store
//! id that is not a well-formed id, or an alias outside the alias pattern, never reaches it (nor
//! the store), and what it holds is capped by entries *and* bytes, with unknown names (kept
//! briefly so a flood of one unknown alias does not reach the store) capped apart from the
//! types that exist, which churning names cannot push out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use schemas::{CompiledEventType, EventTypeDefinition, ReceiveType};
use sqlx::AnyPool;

/// How long a loaded type is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(2);
/// Most unknown `{store}/{alias}` names remembered; past this they are all forgotten.
const MAX_UNKNOWN: usize = 4096;
/// Most bytes of known types held (estimated from their stored definitions); past this the
/// cache starts over.
const MAX_KNOWN_BYTES: usize = 64 * 1024 * 1024;
/// What one entry costs beyond its key and definition: the map slot, `Arc`s, the compiled form.
const ENTRY_OVERHEAD: usize = 256;

/// A receive type ready for ingest.
#[derive(Debug)]
pub(crate) struct IngestType {
    pub id: String,
    pub version: i64,
    pub alias: String,
    pub compiled: CompiledEventType,
    /// How a webhook type's events are verified, when they are.
    pub verification: Option<schemas::Verification>,
}

impl IngestType {
    pub(crate) fn receive_type(&self) -> ReceiveType {
        self.compiled.receive_type()
    }
}

#[derive(Debug)]
struct Entry {
    loaded: Instant,
    found: Option<Arc<IngestType>>,
    /// What this entry was counted as against the bounds.
    bytes: usize,
}

/// The cache, shared by every request.
#[derive(Debug, Default)]
pub(crate) struct TypeCache {
    entries: DashMap<String, Entry>,
    unknown: AtomicUsize,
    known_bytes: AtomicUsize,
}

fn cache_key(store_id: &str, alias: &str) -> String {
    format!("{store_id}/{alias}")
}

/// Whether `store_id` has the form of a store id (a hyphenated UUID, as the registry mints).
pub(crate) fn is_store_id(store_id: &str) -> bool {
    store_id.len() == 36 && uuid::Uuid::try_parse(store_id).is_ok()
}

/// Whether `alias` fits the alias pattern `[A-Za-z0-9_-]{1,64}`.
pub(crate) fn is_alias(alias: &str) -> bool {
    (1..=64).contains(&alias.len())
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl TypeCache {
    /// The receive type `alias` of `store_id`, if there is one. Names that cannot exist are
    /// answered without a lookup.
    pub(crate) async fn get(
        &self,
        db: &AnyPool,
        store_id: &str,
        alias: &str,
    ) -> Result<Option<Arc<IngestType>>, sqlx::Error> {
        if !is_store_id(store_id) || !is_alias(alias) {
            return Ok(None);
        }
        let key = cache_key(store_id, alias);
        if let Some(entry) = self.entries.get(&key) {
            if entry.loaded.elapsed() < FRESH_FOR {
                return Ok(entry.found.clone());
            }
        }
        let loaded = load(db, store_id, alias).await?;
        let bytes = key.len() + ENTRY_OVERHEAD + loaded.as_ref().map_or(0, |(_, size)| 2 * size);
        let found = loaded.map(|(ty, _)| Arc::new(ty));
        self.make_room(found.is_some(), bytes);
        let entry = Entry {
            loaded: Instant::now(),
            found: found.clone(),
            bytes,
        };
        self.count(&entry, 1);
        if let Some(old) = self.entries.insert(key, entry) {
            self.count(&old, -1);
        }
        Ok(found)
    }

    /// Keeps the bounds before an entry of `bytes` is added.
    fn make_room(&self, known: bool, bytes: usize) {
        if !known && self.unknown.load(Ordering::Relaxed) >= MAX_UNKNOWN {
            self.entries.retain(|_, entry| entry.found.is_some());
            self.recount();
        }
        if known && self.known_bytes.load(Ordering::Relaxed) + bytes > MAX_KNOWN_BYTES {
            self.entries.clear();
            self.recount();
        }
    }

    fn count(&self, entry: &Entry, sign: isize) {
        let (counter, amount) = match entry.found {
            Some(_) => (&self.known_bytes, entry.bytes),
            None => (&self.unknown, 1),
        };
        if sign > 0 {
            counter.fetch_add(amount, Ordering::Relaxed);
        } else {
            let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(amount))
            });
        }
    }

    /// Counts again from what is held, after entries were dropped in bulk.
    fn recount(&self) {
        let (mut unknown, mut known_bytes) = (0, 0);
        for entry in self.entries.iter() {
            match entry.found {
                Some(_) => known_bytes += entry.bytes,
                None => unknown += 1,
            }
        }
        self.unknown.store(unknown, Ordering::Relaxed);
        self.known_bytes.store(known_bytes, Ordering::Relaxed);
        self.entries.shrink_to_fit();
    }

    /// Forgets every alias of a store (its integrations or types changed).
    pub(crate) fn forget_store(&self, store_id: &str) {
        let prefix = format!("{store_id}/");
        self.entries.retain(|key, _| !key.starts_with(&prefix));
        self.recount();
    }

    /// Entries and the bytes they are counted as, for tests of the bounds.
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        (
            self.entries.len(),
            self.unknown.load(Ordering::Relaxed),
            self.known_bytes.load(Ordering::Relaxed),
        )
    }
}

/// The type and the size of its stored definition; none when it does not exist or its
/// integration takes no events (`eventsEnabled: false`).
async fn load(
    db: &AnyPool,
    store_id: &str,
    alias: &str,
) -> Result<Option<(IngestType, usize)>, sqlx::Error> {
    let Some(store::registry::event_types::ReceiveType {
        id,
        version,
        body,
        integration_body: integration,
        verification,
    }) = store::registry::event_types::receive_type(db, store_id, alias).await?
    else {
        return Ok(None);
    };
    if !events_enabled(&integration) {
        return Ok(None);
    }
    let definition: EventTypeDefinition = match serde_json::from_str(&body) {
        Ok(definition) => definition,
        Err(error) => {
            // A stored definition that no longer reads is a bug; the alias answers 404
            // rather than taking events it cannot check.
            tracing::error!(%error, event_type = %id, "stored event type is unreadable");
            return Ok(None);
        }
    };
    let verification =
        match store::registry::event_types::read_verification(&id, verification.as_deref()) {
            Ok(verification) => verification,
            Err(error) => {
                // Never taken as "no verification": the alias answers 404 instead.
                tracing::error!(%error, event_type = %id, "stored verification is unreadable");
                return Ok(None);
            }
        };
    let size = body.len();
    Ok(Some((
        IngestType {
            id,
            version,
            alias: alias.to_owned(),
            compiled: CompiledEventType::compile(&definition),
            verification,
        },
        size,
    )))
}

/// Whether a stored integration takes events; one that cannot be read takes none.
fn events_enabled(integration: &str) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Switch {
        #[serde(default = "enabled")]
        events_enabled: bool,
    }
    fn enabled() -> bool {
        true
    }
    serde_json::from_str::<Switch>(integration).is_ok_and(|s| s.events_enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_exist_are_recognised_without_a_lookup() {
        assert!(is_store_id("0196b0a5-7e4c-7cc1-9d3b-2f1b7c9e8a01"));
        for bad in [
            "",
            "x",
            &"a".repeat(60_000),
            "0196b0a57e4c7cc19d3b2f1b7c9e8a01",
        ] {
            assert!(!is_store_id(bad), "{bad:.40}");
        }
        assert!(is_alias("order-paid_2"));
        for bad in ["", "a b", "é", "a/b", &"a".repeat(65)] {
            assert!(!is_alias(bad), "{bad:.40}");
        }
    }

    #[test]
    fn integrations_take_events_unless_switched_off() {
        assert!(events_enabled(r#"{"name": "x", "eventsEnabled": true}"#));
        assert!(events_enabled(r#"{"name": "x"}"#));
        assert!(!events_enabled(r#"{"name": "x", "eventsEnabled": false}"#));
        assert!(!events_enabled("not json"));
    }

    #[tokio::test]
    async fn unknown_names_are_held_within_their_bound() {
        let cache = TypeCache::default();
        let dir = tempfile::tempdir().expect("dir");
        let db = store::connect(&store::sqlite_url(dir.path()))
            .await
            .expect("sqlite");
        for _ in 0..(MAX_UNKNOWN * 2 + 10) {
            let store = uuid::Uuid::new_v4().to_string();
            let alias = "a".repeat(64);
            assert!(cache
                .get(&db, &store, &alias)
                .await
                .expect("load")
                .is_none());
        }
        let (entries, unknown, known_bytes) = cache.held();
        assert!(entries <= MAX_UNKNOWN, "{entries} entries held");
        assert_eq!(unknown, entries);
        assert_eq!(known_bytes, 0);
    }
}
