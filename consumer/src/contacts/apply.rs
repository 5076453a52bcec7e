//! Applying a batch of envelopes to the store in one transaction, with set-based statements:
//! a batch costs a handful of statements whatever its size, not three per event.

use std::collections::{BTreeMap, HashSet};

use schemas::{ContactKey, EventEnvelope};
use sqlx::{Any, AnyPool, Transaction};

use crate::error::ApplyError;
use crate::metrics;

/// Rows per multi-row statement; 8 parameters a row stays far below both engines' limits.
const ROWS_PER_STATEMENT: usize = 256;

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events recorded for the first time.
    pub recorded: u64,
    /// Events already recorded (redeliveries), which changed nothing.
    pub duplicates: u64,
    /// Contacts created by this batch.
    pub contacts_created: u64,
    /// Contacts that existed and were touched.
    pub contacts_updated: u64,
    /// Workflow runs completed.
    pub workflow_runs: u64,
    /// Outbound deliveries added to the outbox.
    pub deliveries: u64,
}

impl Applied {
    /// Adds another batch's counts to these.
    pub fn add(&mut self, other: &Applied) {
        self.recorded += other.recorded;
        self.duplicates += other.duplicates;
        self.contacts_created += other.contacts_created;
        self.contacts_updated += other.contacts_updated;
        self.workflow_runs += other.workflow_runs;
        self.deliveries += other.deliveries;
    }
}

/// Records each event's activity and upserts its contact, all or nothing. An event id already
/// recorded is skipped entirely, so redelivery has no second effect. The caller moves its queue
/// position only after this returns `Ok`.
pub async fn apply(db: &AnyPool, envelopes: &[EventEnvelope]) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    if envelopes.is_empty() {
        return Ok(applied);
    }
    let now = store::clock::now();
    let mut tx = db.begin().await?;
    let recorded = record_activities(&mut tx, envelopes, &now).await?;
    applied.recorded = recorded.len() as u64;
    applied.duplicates = envelopes.len() as u64 - applied.recorded;

    // One upsert per contact touched by a newly recorded event, grouped by store.
    let mut contacts: BTreeMap<(&str, String), &ContactKey> = BTreeMap::new();
    for envelope in envelopes
        .iter()
        .filter(|e| recorded.contains(e.id.as_str()))
    {
        contacts.insert(
            (
                envelope.store_id.as_str(),
                super::stored_key(&envelope.contact),
            ),
            &envelope.contact,
        );
    }
    let contacts: Vec<_> = contacts.into_iter().collect();
    let mut created_contacts = HashSet::new();
    for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
        let created = create_contacts(&mut tx, chunk, &now).await?;
        let existing: Vec<_> = chunk
            .iter()
            .filter(|((store, key), _)| !created.contains(&(store.to_string(), key.clone())))
            .collect();
        touch_contacts(&mut tx, &existing, &now).await?;
        applied.contacts_created += created.len() as u64;
        applied.contacts_updated += existing.len() as u64;
        created_contacts.extend(created);
    }

    // Workflows and deliveries join the same transaction: an event's effects and the webhooks
    // announcing them are stored together, once.
    let mut seen = HashSet::new();
    let new_events: Vec<&EventEnvelope> = envelopes
        .iter()
        .filter(|e| recorded.contains(e.id.as_str()) && seen.insert(e.id.as_str()))
        .collect();
    let workflows = crate::workflows::run(&mut tx, &new_events, &now).await?;
    let mut deliveries =
        crate::webhooks::events::for_batch(&mut tx, &new_events, &created_contacts, &now).await?;
    deliveries.extend(workflows.deliveries);
    store::outbox::enqueue(&mut tx, &deliveries, &now).await?;
    applied.workflow_runs = workflows.runs;
    applied.deliveries = deliveries.len() as u64;
    tx.commit().await?;
    metrics::report_applied(&applied);
    for envelope in envelopes {
        metrics::report_end_to_end(&envelope.received_at);
    }
    Ok(applied)
}

/// Inserts the activities; returns the ids that were new. A repeated id (in the store or
/// within the batch) inserts nothing.
async fn record_activities(
    tx: &mut Transaction<'_, Any>,
    envelopes: &[EventEnvelope],
    now: &str,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut recorded = HashSet::new();
    let mut seen = HashSet::new();
    let unique: Vec<&EventEnvelope> = envelopes
        .iter()
        .filter(|e| seen.insert(e.id.as_str()))
        .collect();
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO activities \
             (event_id, store_id, contact_key, event_type_id, alias, fields, received_at, recorded_at) \
             VALUES {} ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            store::sql::row_placeholders(chunk.len(), 8)
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for envelope in chunk {
            let fields = serde_json::to_string(&envelope.fields).unwrap_or_else(|_| "{}".into());
            query = query
                .bind(&envelope.id)
                .bind(&envelope.store_id)
                .bind(super::stored_key(&envelope.contact))
                .bind(&envelope.event_type_id)
                .bind(&envelope.alias)
                .bind(fields)
                .bind(&envelope.received_at)
                .bind(now);
        }
        for (id,) in query.fetch_all(&mut **tx).await? {
            recorded.insert(id);
        }
    }
    Ok(recorded)
}

type ContactRow<'a> = ((&'a str, String), &'a ContactKey);

/// Creates the contacts that do not exist yet; returns (store, key) of those it created.
async fn create_contacts(
    tx: &mut Transaction<'_, Any>,
    contacts: &[ContactRow<'_>],
    now: &str,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO contacts (store_id, contact_key, email, tracker_id, fields, created_at, updated_at) \
         VALUES {} ON CONFLICT (store_id, contact_key) DO NOTHING RETURNING store_id, contact_key",
        store::sql::row_placeholders(contacts.len(), 7)
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for ((store, key), contact) in contacts {
        let (email, tracker) = match contact {
            ContactKey::Email(email) => (Some(email.as_str()), None),
            ContactKey::Tracker(tracker) => (None, Some(tracker.as_str())),
        };
        query = query
            .bind(*store)
            .bind(key)
            .bind(email)
            .bind(tracker)
            .bind("{}")
            .bind(now)
            .bind(now);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// Marks existing contacts as updated now.
async fn touch_contacts(
    tx: &mut Transaction<'_, Any>,
    contacts: &[&ContactRow<'_>],
    now: &str,
) -> Result<(), sqlx::Error> {
    let mut by_store: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for ((store, key), _) in contacts {
        by_store.entry(store).or_default().push(key.as_str());
    }
    for (store, keys) in by_store {
        let sql = format!(
            "UPDATE contacts SET updated_at = $1 WHERE store_id = $2 AND contact_key IN ({})",
            store::sql::list_placeholders(3, keys.len())
        );
        let mut query = sqlx::query(&sql).bind(now).bind(store);
        for key in keys {
            query = query.bind(key);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
