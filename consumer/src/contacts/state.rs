//! Contacts as they stand inside a batch's transaction, for workflows and contact webhooks.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use sqlx::{Any, Transaction};

use store::sql::list_placeholders;

/// `(store, stored key)` of a contact.
pub(crate) type ContactId = (String, String);

/// A contact's fields and timestamps.
#[derive(Debug, Clone)]
pub(crate) struct ContactState {
    pub fields: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// The current state of these contacts; absent ones are left out.
pub(crate) async fn states<'a>(
    tx: &mut Transaction<'_, Any>,
    ids: impl Iterator<Item = &'a ContactId>,
) -> Result<HashMap<ContactId, ContactState>, sqlx::Error> {
    let mut by_store: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (store, key) in ids {
        by_store
            .entry(store.as_str())
            .or_default()
            .push(key.as_str());
    }
    let mut states = HashMap::new();
    for (store, mut keys) in by_store {
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT contact_key, fields, created_at, updated_at FROM contacts \
                 WHERE store_id = $1 AND contact_key IN ({})",
                list_placeholders(2, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, String, String)>(&sql).bind(store);
            for key in chunk {
                query = query.bind(*key);
            }
            for (key, fields, created_at, updated_at) in query.fetch_all(&mut **tx).await? {
                let fields = match serde_json::from_str(&fields) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let state = ContactState {
                    fields,
                    created_at,
                    updated_at,
                };
                states.insert((store.to_owned(), key), state);
            }
        }
    }
    Ok(states)
}
