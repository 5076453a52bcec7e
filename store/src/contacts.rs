//! The contacts table: the contact key as stored, the consumer's set-based upserts and reads
//! inside a batch's transaction, and the contacts API's reads.

use std::collections::{BTreeMap, HashMap, HashSet};

use schemas::ContactKey;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Any, AnyPool, Transaction};

use crate::sql::{contacts_of_store, engine_of, positional, row_placeholders};

pub use crate::activities::{activities, Activity, ActivityPage};

/// Rows per multi-row statement: 7 parameters a row stays far below both engines' limits.
const ROWS_PER_STATEMENT: usize = 256;
/// Contacts named per read by key pairs (two parameters each).
const KEYS_PER_READ: usize = 500;

/// `(store, stored key)` of a contact.
pub type ContactId = (String, String);

/// The stored key of a contact: `e:<email>` or `t:<trackerId>`, so the two kinds never collide.
pub fn stored_key(contact: &ContactKey) -> String {
    contact.tagged()
}

/// The id of `contact` in `store_id`.
pub fn contact_id(store_id: &str, contact: &ContactKey) -> ContactId {
    (store_id.to_owned(), stored_key(contact))
}

/// A contact as answered by `GET /v1/contacts/{email}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub email: String,
    pub fields: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// The contact with this (normalised) email.
pub async fn contact(
    db: &AnyPool,
    store_id: &str,
    email: &str,
) -> Result<Option<Contact>, sqlx::Error> {
    let sql = format!(
        "SELECT c.contact_key, c.fields, c.created_at, c.updated_at, {LAST_EVENT} AS last_event_at \
         FROM contacts c WHERE c.store_id = $1 AND c.contact_key = $2"
    );
    let row: Option<ContactRow> = sqlx::query_as(&sql)
        .bind(store_id)
        .bind(format!("e:{email}"))
        .fetch_optional(db)
        .await?;
    Ok(row.map(|row| Contact {
        email: email.to_owned(),
        fields: parse_json(&row.fields),
        updated_at: latest(row.updated_at, row.last_event_at),
        created_at: row.created_at,
    }))
}

/// A contact as `GET /v1/contacts` lists it: by email, or by tracker id when anonymous.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedContact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_id: Option<String>,
    pub fields: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// A page of the store's contacts (only the members of `segment` when one is named) in
/// stored-key order, and the key to continue after when there are more.
pub async fn list(
    db: &AnyPool,
    store_id: &str,
    segment: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<(Vec<ListedContact>, Option<String>), sqlx::Error> {
    let after = after.unwrap_or("");
    // One more than asked says whether another page follows.
    let mut rows: Vec<ListedRow> = match segment {
        None => {
            sqlx::query_as(&format!(
                "SELECT c.contact_key, c.email, c.tracker_id, c.fields, c.created_at, \
                 c.updated_at, {LAST_EVENT} AS last_event_at \
                 FROM contacts c WHERE c.store_id = $1 AND c.contact_key > $2 \
                 ORDER BY c.contact_key LIMIT $3"
            ))
            .bind(store_id)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(db)
            .await?
        }
        Some(segment) => {
            sqlx::query_as(&format!(
                "SELECT c.contact_key, c.email, c.tracker_id, c.fields, c.created_at, \
                 c.updated_at, {LAST_EVENT} AS last_event_at \
                 FROM segment_members m JOIN contacts c \
                 ON c.store_id = m.store_id AND c.contact_key = m.contact_key \
                 WHERE m.segment_id = $1 AND m.store_id = $2 AND m.contact_key > $3 \
                 ORDER BY m.contact_key LIMIT $4"
            ))
            .bind(segment)
            .bind(store_id)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(db)
            .await?
        }
    };
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    if more {
        rows.pop();
    }
    let next = more
        .then(|| rows.last().map(|row| row.contact_key.clone()))
        .flatten();
    let listed = rows
        .into_iter()
        .map(|row| ListedContact {
            updated_at: latest(row.updated_at, row.last_event_at),
            email: row.email,
            tracker_id: row.tracker_id,
            fields: parse_json(&row.fields),
            created_at: row.created_at,
        })
        .collect();
    Ok((listed, next))
}

#[derive(Debug, sqlx::FromRow)]
struct ListedRow {
    contact_key: String,
    email: Option<String>,
    tracker_id: Option<String>,
    fields: String,
    created_at: String,
    updated_at: String,
    last_event_at: Option<String>,
}

/// Most fields a contact holds; a change that would pass it is refused.
pub const MAX_CONTACT_FIELDS: usize = 100;

/// What [`patch_fields`] did.
#[derive(Debug)]
pub enum Patched {
    Done(Contact),
    NotFound,
    /// The contact would hold more than [`MAX_CONTACT_FIELDS`] fields.
    TooMany,
}

/// Sets the contact's fields named in `changes` (a `null` removes one) and answers the contact
/// as it then stands. The first statement writes the row, so the change waits for, and then
/// sees, a consumer batch that holds the contact (PostgreSQL's row lock, SQLite's write lock):
/// neither can undo the other's fields.
pub async fn patch_fields(
    db: &AnyPool,
    store_id: &str,
    email: &str,
    changes: &Map<String, Value>,
    now: &str,
) -> Result<Patched, sqlx::Error> {
    let key = format!("e:{email}");
    let mut tx = db.begin().await?;
    let row: Option<ContactRow> = sqlx::query_as(
        "UPDATE contacts SET updated_at = $1 WHERE store_id = $2 AND contact_key = $3 \
         RETURNING contact_key, fields, created_at, updated_at, NULL AS last_event_at",
    )
    .bind(now)
    .bind(store_id)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Patched::NotFound);
    };
    let mut fields = match serde_json::from_str(&row.fields) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (name, value) in changes {
        if value.is_null() {
            fields.remove(name);
        } else {
            fields.insert(name.clone(), value.clone());
        }
    }
    if fields.len() > MAX_CONTACT_FIELDS {
        return Ok(Patched::TooMany);
    }
    // Segments that read a changed field judge the contact again within seconds.
    let changed: Vec<&str> = changes.keys().map(String::as_str).collect();
    crate::segments::members::recheck_now(&mut tx, store_id, &key, &changed, now).await?;
    let fields = Value::Object(fields);
    sqlx::query("UPDATE contacts SET fields = $1 WHERE store_id = $2 AND contact_key = $3")
        .bind(fields.to_string())
        .bind(store_id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Patched::Done(Contact {
        email: email.to_owned(),
        fields,
        // Now: later than any event stored before.
        updated_at: row.updated_at,
        created_at: row.created_at,
    }))
}

/// Erases the contact with this (normalised) email: the contact, its activities, its segment
/// memberships and rechecks, and every delivery about it (pending ones are never sent; past
/// ones no longer hold its data). False when there is no such contact. The contact row goes
/// first, so the erasure waits for a consumer batch that holds it; events still queued for
/// the email create a new contact when they are consumed.
pub async fn erase(db: &AnyPool, store_id: &str, email: &str) -> Result<bool, sqlx::Error> {
    let key = format!("e:{email}");
    let mut tx = db.begin().await?;
    let erased = sqlx::query("DELETE FROM contacts WHERE store_id = $1 AND contact_key = $2")
        .bind(store_id)
        .bind(&key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if erased == 0 {
        return Ok(false);
    }
    for table in [
        "activities",
        "segment_members",
        "segment_rechecks",
        "deliveries",
    ] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE store_id = $1 AND contact_key = $2"
        ))
        .bind(store_id)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether the contact with this (normalised) email exists.
pub async fn contact_exists(
    db: &AnyPool,
    store_id: &str,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT contact_key FROM contacts WHERE store_id = $1 AND contact_key = $2")
            .bind(store_id)
            .bind(format!("e:{email}"))
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}

/// Stored JSON is written by this crate; unreadable text would mean corruption, shown as null
/// rather than failing the whole listing.
pub(crate) fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// A contact row as stored, its fields still JSON text, with when its latest event was stored.
#[derive(Debug, sqlx::FromRow)]
struct ContactRow {
    contact_key: String,
    fields: String,
    created_at: String,
    updated_at: String,
    last_event_at: Option<String>,
}

/// When the contact `c` last had an event stored: an event no longer rewrites its contact's row
/// (on SQLite that row's page was rewritten per event, 0.85 of the CPU without it; on
/// PostgreSQL a new row version per event), so a contact's `updatedAt` is the later of its
/// row's (created, fields set) and this. The newest event by receipt is found on the index
/// that lists a contact's events.
const LAST_EVENT: &str = "(SELECT a.recorded_at FROM activities a \
     WHERE a.store_id = c.store_id AND a.contact_key = c.contact_key \
     ORDER BY a.received_at DESC, a.event_id DESC LIMIT 1)";

/// The later of two stored timestamps (fixed-width text, so they compare as text).
fn latest(row: String, last_event: Option<String>) -> String {
    match last_event {
        Some(event) if event > row => event,
        _ => row,
    }
}

/// A contact's fields and timestamps as they stand inside a batch's transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactState {
    pub fields: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// What [`upsert`] did.
#[derive(Debug, Default)]
pub struct Upserted {
    /// The contacts it created.
    pub created: HashSet<ContactId>,
    /// How many existed and were touched.
    pub updated: u64,
}

/// Creates the contacts that do not exist yet, inside the caller's transaction; the others are
/// updated by the events recorded with them. `contacts` holds each contact once.
pub async fn upsert(
    tx: &mut Transaction<'_, Any>,
    contacts: &[(ContactId, &ContactKey)],
    now: &str,
) -> Result<Upserted, sqlx::Error> {
    let mut upserted = Upserted::default();
    for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
        let created = create(tx, chunk, now).await?;
        // The others are updated by the events the batch recorded (see [`LAST_EVENT`]).
        upserted.updated += (chunk.len() - created.len()) as u64;
        upserted.created.extend(created);
    }
    Ok(upserted)
}

/// Creates the contacts that do not exist yet; returns those it created.
async fn create(
    tx: &mut Transaction<'_, Any>,
    contacts: &[(ContactId, &ContactKey)],
    now: &str,
) -> Result<HashSet<ContactId>, sqlx::Error> {
    let sql = positional(
        engine_of(tx),
        format!(
            "INSERT INTO contacts (store_id, contact_key, email, tracker_id, fields, created_at, updated_at) \
             VALUES {} ON CONFLICT (store_id, contact_key) DO NOTHING RETURNING store_id, contact_key",
            row_placeholders(contacts.len(), 7)
        ),
    );
    let mut query = sqlx::query_as::<_, ContactId>(&sql);
    for ((store, key), contact) in contacts {
        let (email, tracker) = match contact {
            ContactKey::Email(email) => (Some(email.as_str()), None),
            ContactKey::Tracker(tracker) => (None, Some(tracker.as_str())),
        };
        query = query
            .bind(store)
            .bind(key)
            .bind(email)
            .bind(tracker)
            .bind("{}")
            .bind(now)
            .bind(now);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// Replaces a contact's fields (a workflow set some), inside the caller's transaction.
pub async fn set_fields(
    tx: &mut Transaction<'_, Any>,
    (store, key): &ContactId,
    fields: &Map<String, Value>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contacts SET fields = $1, updated_at = $2 WHERE store_id = $3 AND contact_key = $4",
    )
    .bind(Value::Object(fields.clone()).to_string())
    .bind(now)
    .bind(store)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes the write lock on these contacts' rows for the rest of the caller's transaction, in
/// key order, with the same read a consumer batch's [`states`] takes them with (PostgreSQL;
/// SQLite's one writer holds everything already). A read, not a no-op `UPDATE` per contact,
/// which left a dead row version per contact on PostgreSQL and rewrote pages on SQLite.
pub async fn lock<'a>(
    tx: &mut Transaction<'_, Any>,
    ids: impl Iterator<Item = &'a ContactId>,
) -> Result<(), sqlx::Error> {
    let engine = engine_of(tx);
    if engine == crate::Engine::Sqlite {
        return Ok(());
    }
    for (store, mut keys) in by_store(ids) {
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(KEYS_PER_READ) {
            let sql = positional(
                engine,
                format!(
                    "SELECT c.contact_key FROM contacts c WHERE {}{}",
                    contacts_of_store(1, chunk.len()),
                    lock_clause(engine)
                ),
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(store).bind(*key);
            }
            query.fetch_all(&mut **tx).await?;
        }
    }
    Ok(())
}

/// What makes a read of contacts `c` take their rows' write locks, in key order, so that two
/// transactions locking overlapping contacts never wait for each other in opposite orders.
fn lock_clause(engine: crate::Engine) -> &'static str {
    match engine {
        crate::Engine::Postgres => " ORDER BY c.contact_key FOR UPDATE OF c",
        crate::Engine::Sqlite => "",
    }
}

/// The current state of these contacts inside the caller's transaction; absent ones are left
/// out.
pub async fn states<'a>(
    tx: &mut Transaction<'_, Any>,
    ids: impl Iterator<Item = &'a ContactId>,
) -> Result<HashMap<ContactId, ContactState>, sqlx::Error> {
    let mut states = HashMap::new();
    let engine = engine_of(tx);
    // A batch that reads a contact may write it (workflows set fields, segments judge it): on
    // PostgreSQL the read takes the rows' write locks, in key order, so a PATCH or the
    // segments sweeper waits for the batch and then sees what it did. SQLite's one writer
    // holds everything already.
    let lock = lock_clause(engine);
    for (store, mut keys) in by_store(ids) {
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(KEYS_PER_READ) {
            let sql = positional(
                engine,
                format!(
                    "SELECT c.contact_key, c.fields, c.created_at, c.updated_at, \
                     {LAST_EVENT} AS last_event_at FROM contacts c WHERE {}{lock}",
                    contacts_of_store(1, chunk.len())
                ),
            );
            let mut query = sqlx::query_as::<_, ContactRow>(&sql);
            for key in chunk {
                query = query.bind(store).bind(*key);
            }
            for row in query.fetch_all(&mut **tx).await? {
                let fields = match serde_json::from_str(&row.fields) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let state = ContactState {
                    fields,
                    updated_at: latest(row.updated_at, row.last_event_at),
                    created_at: row.created_at,
                };
                states.insert((store.to_owned(), row.contact_key), state);
            }
        }
    }
    Ok(states)
}

/// Stored keys grouped by store, for one statement per store.
fn by_store<'a>(ids: impl Iterator<Item = &'a ContactId>) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut by_store: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (store, key) in ids {
        by_store
            .entry(store.as_str())
            .or_default()
            .push(key.as_str());
    }
    by_store
}
