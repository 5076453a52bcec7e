//! Applying a batch of envelopes to the store in one transaction.

use schemas::{ContactKey, EventEnvelope};
use sqlx::{Any, AnyPool, Transaction};

use crate::metrics;

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
}

/// Records each event's activity and upserts its contact, all or nothing. An event id already
/// recorded is skipped entirely, so redelivery has no second effect. The caller moves its queue
/// position only after this returns `Ok`.
pub async fn apply(db: &AnyPool, envelopes: &[EventEnvelope]) -> Result<Applied, sqlx::Error> {
    let mut applied = Applied::default();
    if envelopes.is_empty() {
        return Ok(applied);
    }
    let now = crate::clock::now();
    let mut tx = db.begin().await?;
    for envelope in envelopes {
        if !record_activity(&mut tx, envelope, &now).await? {
            applied.duplicates += 1;
            continue;
        }
        applied.recorded += 1;
        if upsert_contact(&mut tx, envelope, &now).await? {
            applied.contacts_created += 1;
        } else {
            applied.contacts_updated += 1;
        }
    }
    tx.commit().await?;
    metrics::report_applied(&applied);
    for envelope in envelopes {
        metrics::report_end_to_end(&envelope.received_at);
    }
    Ok(applied)
}

/// Inserts the activity; false when this event id was recorded before.
async fn record_activity(
    tx: &mut Transaction<'_, Any>,
    envelope: &EventEnvelope,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let fields = serde_json::to_string(&envelope.fields).unwrap_or_else(|_| "{}".into());
    let inserted = sqlx::query(
        "INSERT INTO activities \
         (event_id, store_id, contact_key, event_type_id, alias, fields, received_at, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&envelope.id)
    .bind(&envelope.store_id)
    .bind(super::stored_key(&envelope.contact))
    .bind(&envelope.event_type_id)
    .bind(&envelope.alias)
    .bind(fields)
    .bind(&envelope.received_at)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Creates the contact or touches it; true when it was created.
async fn upsert_contact(
    tx: &mut Transaction<'_, Any>,
    envelope: &EventEnvelope,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let key = super::stored_key(&envelope.contact);
    let (email, tracker) = match &envelope.contact {
        ContactKey::Email(email) => (Some(email.as_str()), None),
        ContactKey::Tracker(tracker) => (None, Some(tracker.as_str())),
    };
    let created = sqlx::query(
        "INSERT INTO contacts (store_id, contact_key, email, tracker_id, fields, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, '{}', $5, $5) ON CONFLICT (store_id, contact_key) DO NOTHING",
    )
    .bind(&envelope.store_id)
    .bind(&key)
    .bind(email)
    .bind(tracker)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if created == 1 {
        return Ok(true);
    }
    sqlx::query("UPDATE contacts SET updated_at = $1 WHERE store_id = $2 AND contact_key = $3")
        .bind(now)
        .bind(&envelope.store_id)
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    Ok(false)
}
