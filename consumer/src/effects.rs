//! A batch's effects, stored in one transaction with set-based statements: record the
//! activities, upsert the contacts, run the workflows, announce to webhook subscribers, add the
//! deliveries to the outbox, commit. A batch costs a handful of statements whatever its size,
//! not three per event.
//!
//! This is the one place that knows the order; `contacts`, `workflows` and `webhooks` are
//! leaves it calls, and what one step hands the next (the new events, the contacts created,
//! the contacts' state) is passed here as data.

use std::collections::{HashMap, HashSet};

use schemas::EventEnvelope;
use sqlx::{Acquire, Any};
use store::contacts::{contact_id, ContactId};

use crate::error::ApplyError;
use crate::segments::{self, Segments};
use crate::webhooks::events::Subscribers;
use crate::workflows::Workflows;
use crate::{contacts, metrics};

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
    /// Contacts that entered or left a segment.
    pub segment_transitions: u64,
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
        self.segment_transitions += other.segment_transitions;
    }
}

/// Stores every effect of `envelopes`, all or nothing. An event id already recorded is skipped
/// entirely, so redelivery has no second effect. The caller moves its queue position only
/// after this returns `Ok`. `db` is a pool or the connection a consumer keeps
/// ([`store::consumer_connection`]).
pub async fn apply<'c, A: Acquire<'c, Database = Any>>(
    db: A,
    envelopes: &[EventEnvelope],
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    if envelopes.is_empty() {
        return Ok(applied);
    }
    let now = store::clock::now();
    let mut tx = db.begin().await?;
    let recorded = store::activities::record(&mut tx, envelopes, &now).await?;
    applied.recorded = recorded.len() as u64;
    applied.duplicates = envelopes.len() as u64 - applied.recorded;
    // Each new event once, in queue order: only these have effects.
    let mut seen = HashSet::new();
    let new_events: Vec<&EventEnvelope> = envelopes
        .iter()
        .filter(|e| recorded.contains(e.id.as_str()) && seen.insert(e.id.as_str()))
        .collect();

    let upserted = contacts::upsert(&mut tx, &new_events, &now).await?;
    applied.contacts_created = upserted.created.len() as u64;
    applied.contacts_updated = upserted.updated;

    // Workflows, segments and deliveries join the same transaction: an event's effects and the
    // webhooks announcing them are stored together, once. They need contacts as they stand
    // after the upserts, read once here; workflows change them in place, so the contact.*
    // deliveries carry the contact after the batch.
    let stores = crate::stores_of(&new_events);
    let workflows = Workflows::load(&mut tx, &new_events).await?;
    let subscribers = Subscribers::load(&mut tx, &new_events).await?;
    let segments = Segments::load(&mut tx, &stores).await?;
    let wanted: Vec<ContactId> = new_events
        .iter()
        .map(|e| (e, contact_id(&e.store_id, &e.contact)))
        .filter(|(e, id)| {
            subscribers.want_contacts()
                || workflows.triggered_by(e)
                || segments.may_judge(e, upserted.created.contains(id))
        })
        .map(|(_, id)| id)
        .collect();
    let mut contacts = if wanted.is_empty() {
        HashMap::new()
    } else {
        store::contacts::states(&mut tx, wanted.iter()).await?
    };
    let mut ran = workflows
        .run(&mut tx, &new_events, &mut contacts, &now)
        .await?;

    // Segments judge the contacts as the batch and its workflows leave them; a contact just
    // created counts as changed, since fields it lacks may be what a segment asks for.
    let mut changed = std::mem::take(&mut ran.changed);
    changed.extend(upserted.created.iter().cloned());
    let affected = segments.affected(&new_events, &changed);
    let transitions = segments::judge(
        &mut tx,
        &affected,
        &contacts,
        store::clock::parse(&now).unwrap_or_else(time::OffsetDateTime::now_utc),
    )
    .await?;
    let announced = segments::announce(
        &mut tx,
        subscribers.subscribed(),
        &transitions,
        &mut contacts,
        &now,
    )
    .await?;

    let mut deliveries = subscribers.deliveries(&new_events, &upserted.created, &contacts, &now);
    deliveries.extend(ran.deliveries);
    deliveries.extend(announced.deliveries);
    store::outbox::enqueue(&mut tx, &deliveries, &now).await?;
    applied.workflow_runs = ran.runs + announced.runs;
    applied.deliveries = deliveries.len() as u64;
    applied.segment_transitions = transitions.len() as u64;
    tx.commit().await?;

    metrics::report_applied(&applied);
    for envelope in envelopes {
        metrics::report_end_to_end(&envelope.received_at);
    }
    Ok(applied)
}
