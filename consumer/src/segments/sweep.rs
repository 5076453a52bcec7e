//! The sweeper: what changes membership without a new event. Windows pass (rechecks come
//! due), contacts change through the API (rechecks due at once), and new or changed
//! definitions must judge every existing contact (the backfill). Work is taken in bounded
//! steps, each its own transaction, and drained before the next tick.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sqlx::AnyPool;
use store::contacts::ContactId;
use store::segments::members;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{Loaded, Segments};
use crate::webhooks::Wake;

/// How often the sweeper looks for due work.
const TICK: Duration = Duration::from_secs(1);
/// Due (segment, contact) pairs judged per step.
const RECHECKS_PER_STEP: i64 = 200;
/// Contacts a backfill judges per step.
const BACKFILL_PER_STEP: i64 = 200;

/// Runs until `stop`; wakes the dispatcher when a step added deliveries.
pub(crate) async fn sweep(db: AnyPool, wake: Wake, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        loop {
            match step(&db, OffsetDateTime::now_utc()).await {
                Ok(done) => {
                    if done.deliveries > 0 {
                        wake.notify_one();
                    }
                    if !done.worked {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "judging segment members failed; trying again");
                    break;
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }
}

/// What a step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Whether there was anything to do (so there may be more).
    pub worked: bool,
    /// Contacts that entered or left a segment.
    pub transitions: usize,
    /// Deliveries added to the outbox.
    pub deliveries: usize,
}

/// One bounded step at `now`: due rechecks, and one stretch of one segment's backfill. The
/// sweeper runs it at the wall clock; tests run it at the instant they choose.
pub async fn step(db: &AnyPool, now: OffsetDateTime) -> Result<Swept, sqlx::Error> {
    let stamp = store::clock::format(now);
    let mut tx = db.begin().await?;
    // (store, contact) → segment ids to judge.
    let mut work: BTreeMap<ContactId, BTreeSet<String>> = BTreeMap::new();
    let due = members::due(&mut tx, &stamp, RECHECKS_PER_STEP).await?;
    for due in &due {
        work.entry((due.store_id.clone(), due.contact_key.clone()))
            .or_default()
            .insert(due.segment_id.clone());
    }
    if let Some(backfill) = members::next_backfill(&mut tx).await? {
        let keys = members::contacts_after(
            &mut tx,
            &backfill.store_id,
            &backfill.backfill_after,
            BACKFILL_PER_STEP,
        )
        .await?;
        let next = (keys.len() as i64 == BACKFILL_PER_STEP)
            .then(|| keys.last().cloned())
            .flatten();
        members::advance_backfill(&mut tx, &backfill.id, &backfill.updated_at, next.as_deref())
            .await?;
        for key in keys {
            work.entry((backfill.store_id.clone(), key))
                .or_default()
                .insert(backfill.id.clone());
        }
        if work.is_empty() {
            // A store without contacts: the backfill is done, which is work.
            tx.commit().await?;
            return Ok(Swept {
                worked: true,
                ..Swept::default()
            });
        }
    }
    if work.is_empty() {
        return Ok(Swept::default());
    }
    // The contacts first, as a consumer batch takes them, then their segment rows: the two
    // never wait for each other in opposite orders.
    store::contacts::lock(&mut tx, work.keys()).await?;
    // Cleared now; judging sets the next one when a window still counts events.
    let mut cleared: BTreeMap<&str, Vec<members::Recheck<'_>>> = BTreeMap::new();
    for due in &due {
        cleared.entry(due.store_id.as_str()).or_default().push((
            due.segment_id.as_str(),
            due.contact_key.as_str(),
            None,
        ));
    }
    for (store_id, pairs) in &cleared {
        members::set_rechecks(&mut tx, store_id, pairs).await?;
    }
    let stores: Vec<&str> = work
        .keys()
        .map(|(store, _)| store.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let segments = Segments::load(&mut tx, &stores).await?;
    let mut pairs: BTreeMap<ContactId, Vec<&Loaded>> = BTreeMap::new();
    for (id, segment_ids) in &work {
        let judged: Vec<&Loaded> = segment_ids
            .iter()
            .filter_map(|segment| segments.find(&id.0, segment))
            .collect();
        if !judged.is_empty() {
            pairs.insert(id.clone(), judged);
        }
    }
    let mut contacts = store::contacts::states(&mut tx, pairs.keys()).await?;
    // A contact erased since its recheck was set is not judged.
    pairs.retain(|id, _| contacts.contains_key(id));
    let transitions = super::judge(&mut tx, &pairs, &contacts, now).await?;
    let subscribed = store::webhooks::subscriptions(&mut tx, &stores).await?;
    let deliveries = super::announce(&mut tx, &subscribed, &transitions, &mut contacts, &stamp)
        .await?
        .deliveries;
    store::outbox::enqueue(&mut tx, &deliveries, &stamp).await?;
    tx.commit().await?;
    Ok(Swept {
        worked: true,
        transitions: transitions.len(),
        deliveries: deliveries.len(),
    })
}
