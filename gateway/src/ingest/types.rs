//! Compiled event types for ingest, cached by store and alias.
//!
//! A cached type is trusted for `FRESH_FOR`; after that the next request reloads it, so a
//! change made through any gateway reaches every gateway within seconds, with no broadcast.
//! This gateway's own registry writes also drop the store's entries at once. Unknown aliases are cached
//! too (briefly), so a flood of requests for one does not reach the store, and the map is
//! capped so churning aliases cannot grow it without bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use schemas::{CompiledEventType, EventTypeDefinition, ReceiveType};
use sqlx::AnyPool;

/// How long a loaded type is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(2);
/// Most entries kept; past this, unknown-alias entries go first, then everything.
const MAX_ENTRIES: usize = 100_000;

/// A receive type ready for ingest.
#[derive(Debug)]
pub(crate) struct IngestType {
    pub id: String,
    pub version: i64,
    pub alias: String,
    pub compiled: CompiledEventType,
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
}

/// The cache, shared by every request.
#[derive(Debug, Default)]
pub(crate) struct TypeCache {
    entries: DashMap<String, Entry>,
}

fn cache_key(store_id: &str, alias: &str) -> String {
    format!("{store_id}/{alias}")
}

impl TypeCache {
    /// The receive type `alias` of `store_id`, if there is one.
    pub(crate) async fn get(
        &self,
        db: &AnyPool,
        store_id: &str,
        alias: &str,
    ) -> Result<Option<Arc<IngestType>>, sqlx::Error> {
        let key = cache_key(store_id, alias);
        if let Some(entry) = self.entries.get(&key) {
            if entry.loaded.elapsed() < FRESH_FOR {
                return Ok(entry.found.clone());
            }
        }
        let found = load(db, store_id, alias).await?.map(Arc::new);
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, entry| entry.found.is_some());
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            key,
            Entry {
                loaded: Instant::now(),
                found: found.clone(),
            },
        );
        Ok(found)
    }

    /// Forgets every alias of a store (an integration and its types were deleted).
    pub(crate) fn forget_store(&self, store_id: &str) {
        let prefix = format!("{store_id}/");
        self.entries.retain(|key, _| !key.starts_with(&prefix));
    }
}

async fn load(
    db: &AnyPool,
    store_id: &str,
    alias: &str,
) -> Result<Option<IngestType>, sqlx::Error> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT id, version, body FROM event_types \
         WHERE store_id = $1 AND alias = $2 AND category = 'receive'",
    )
    .bind(store_id)
    .bind(alias)
    .fetch_optional(db)
    .await?;
    let Some((id, version, body)) = row else {
        return Ok(None);
    };
    let definition: EventTypeDefinition = match serde_json::from_str(&body) {
        Ok(definition) => definition,
        Err(error) => {
            // A stored definition that no longer reads is a bug; the alias answers 404
            // rather than taking events it cannot check.
            tracing::error!(%error, event_type = %id, "stored event type is unreadable");
            return Ok(None);
        }
    };
    Ok(Some(IngestType {
        id,
        version,
        alias: alias.to_owned(),
        compiled: CompiledEventType::compile(&definition),
    }))
}
