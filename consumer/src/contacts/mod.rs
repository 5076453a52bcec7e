//! Contacts (SPEC §6): every newly recorded event creates its contact, or marks it updated.

use std::collections::BTreeMap;

use schemas::{ContactKey, EventEnvelope};
use sqlx::{Any, Transaction};
use store::contacts::{contact_id, ContactId, Upserted};

/// Creates or touches the contact of each event (newly recorded), once per contact, inside the
/// batch's transaction.
pub(crate) async fn upsert(
    tx: &mut Transaction<'_, Any>,
    events: &[&EventEnvelope],
    now: &str,
) -> Result<Upserted, sqlx::Error> {
    // One upsert per contact touched by a newly recorded event, grouped by store.
    let mut contacts: BTreeMap<ContactId, &ContactKey> = BTreeMap::new();
    for event in events {
        contacts.insert(contact_id(&event.store_id, &event.contact), &event.contact);
    }
    let contacts: Vec<(ContactId, &ContactKey)> = contacts.into_iter().collect();
    store::contacts::upsert(tx, &contacts, now).await
}
