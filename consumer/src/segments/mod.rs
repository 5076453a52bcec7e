//! Segment membership (SPEC §6), kept current inside the transactions that change what
//! segments read: a batch's events and field changes ([`Segments::affected`] picks only the
//! segments they can move), and the [`sweep`]er's work — windows passing, contacts changed
//! through the API, and the backfill of a new or changed definition. Each transition is a
//! member row inserted or deleted, announced once as `segment.entered` / `segment.exited` and,
//! on entry, by the workflows the segment starts.

mod sweep;

use std::collections::{BTreeMap, HashMap, HashSet};

use schemas::{ContactKey, EventEnvelope};
use serde::Serialize;
use sqlx::{Any, Transaction};
use store::contacts::{ContactId, ContactState};
use store::outbox::NewDelivery;
use store::segments::{members, SegmentDefinition};
use store::webhooks::{new_message_id, EventKind, Payload, Subscription};
use time::OffsetDateTime;

use crate::workflows::{WorkflowEffects, Workflows};

pub(crate) use sweep::sweep;
pub use sweep::{step, Swept};

/// A segment as the consumer judges contacts against it.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) id: String,
    pub(crate) definition: SegmentDefinition,
    /// The event types its conditions count.
    types: HashSet<String>,
    /// Whether a condition reads contact fields.
    reads_fields: bool,
    /// Whether a condition has a window, so a verdict may change with time alone.
    windowed: bool,
    /// Whether a condition compares an event's field, so events are read with their fields.
    reads_event_fields: bool,
}

impl Loaded {
    fn new(id: String, definition: SegmentDefinition) -> Loaded {
        let types = definition.event_types().map(str::to_owned).collect();
        let reads_fields = definition.contact_fields().next().is_some();
        let windowed = definition.conditions.iter().any(
            |c| matches!(c, store::segments::Condition::Event { event } if event.within.is_some()),
        );
        let reads_event_fields = definition.event_fields().next().is_some();
        Loaded {
            id,
            definition,
            types,
            reads_fields,
            windowed,
            reads_event_fields,
        }
    }

    /// Whether a contact's verdict may have changed: the batch changed its fields (or created
    /// it) and this reads fields, or it has new events of `types` and this counts one of them.
    fn may_move<'t>(&self, fields_changed: bool, mut types: impl Iterator<Item = &'t str>) -> bool {
        (fields_changed && self.reads_fields) || types.any(|t| self.types.contains(t))
    }
}

/// The segments of a batch's stores, read once per batch.
#[derive(Debug, Default)]
pub(crate) struct Segments {
    by_store: HashMap<String, Vec<Loaded>>,
}

/// A contact entering or leaving a segment.
#[derive(Debug, Clone)]
pub(crate) struct Transition {
    pub(crate) store_id: String,
    pub(crate) segment_id: String,
    pub(crate) segment_name: String,
    pub(crate) contact_key: String,
    pub(crate) entered: bool,
}

impl Segments {
    /// Reads the segments of these stores.
    pub(crate) async fn load(
        tx: &mut Transaction<'_, Any>,
        store_ids: &[&str],
    ) -> Result<Segments, sqlx::Error> {
        let mut segments = Segments::default();
        for row in members::of_stores(tx, store_ids).await? {
            match serde_json::from_str::<SegmentDefinition>(&row.body) {
                Ok(definition) => segments
                    .by_store
                    .entry(row.store_id)
                    .or_default()
                    .push(Loaded::new(row.id, definition)),
                Err(error) => {
                    tracing::error!(segment = %row.id, %error, "skipping a segment that cannot be read")
                }
            }
        }
        Ok(segments)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_store.is_empty()
    }

    /// Whether [`affected`](Self::affected) may pick `event`'s contact, so the batch must read
    /// its state: the same question ([`Loaded::may_move`]) asked before the read, of the
    /// event's type and whether the batch `created` the contact. A contact whose fields a
    /// workflow changes is read for the workflow already. Segments that cannot move the
    /// contact cost it nothing.
    pub(crate) fn may_judge(&self, event: &EventEnvelope, created: bool) -> bool {
        self.by_store.get(&event.store_id).is_some_and(|segments| {
            segments
                .iter()
                .any(|s| s.may_move(created, std::iter::once(event.event_type_id.as_str())))
        })
    }

    /// The segments each contact must be judged against after a batch: those counting a type
    /// of the contact's new events, and, for contacts created or whose fields changed, those
    /// reading fields. Other segments cannot have changed their verdict.
    pub(crate) fn affected(
        &self,
        events: &[&EventEnvelope],
        fields_changed: &HashSet<ContactId>,
    ) -> BTreeMap<ContactId, Vec<&Loaded>> {
        let mut affected: BTreeMap<ContactId, Vec<&Loaded>> = BTreeMap::new();
        if self.is_empty() {
            return affected;
        }
        let mut types_by_contact: BTreeMap<ContactId, HashSet<&str>> = BTreeMap::new();
        for event in events {
            types_by_contact
                .entry(store::contacts::contact_id(&event.store_id, &event.contact))
                .or_default()
                .insert(event.event_type_id.as_str());
        }
        for (id, types) in types_by_contact {
            let Some(segments) = self.by_store.get(&id.0) else {
                continue;
            };
            let changed = fields_changed.contains(&id);
            let judged: Vec<&Loaded> = segments
                .iter()
                .filter(|s| s.may_move(changed, types.iter().copied()))
                .collect();
            if !judged.is_empty() {
                affected.insert(id, judged);
            }
        }
        affected
    }

    /// One segment by id, for the sweeper.
    pub(crate) fn find(&self, store_id: &str, id: &str) -> Option<&Loaded> {
        self.by_store.get(store_id)?.iter().find(|s| s.id == id)
    }
}

/// Judges each contact against its segments as they stand in `tx` at `now` (`contacts` holds
/// the contacts' state; a contact absent there is judged with no fields), writes membership
/// and rechecks, and returns the transitions.
pub(crate) async fn judge(
    tx: &mut Transaction<'_, Any>,
    pairs: &BTreeMap<ContactId, Vec<&Loaded>>,
    contacts: &HashMap<ContactId, ContactState>,
    now: OffsetDateTime,
) -> Result<Vec<Transition>, sqlx::Error> {
    let mut transitions = Vec::new();
    let stamp = store::clock::format(now);
    // A handful of statements per store whatever the number of contacts: on PostgreSQL each
    // round trip costs more than the judging.
    let mut by_store: BTreeMap<&str, Vec<(&str, &Vec<&Loaded>)>> = BTreeMap::new();
    for ((store, key), segments) in pairs {
        by_store
            .entry(store.as_str())
            .or_default()
            .push((key.as_str(), segments));
    }
    let no_fields = serde_json::Map::new();
    for (store_id, judged) in by_store {
        let keys: Vec<&str> = judged.iter().map(|(key, _)| *key).collect();
        let current = members::memberships(tx, store_id, &keys).await?;
        let due = members::rechecks(tx, store_id, &keys).await?;
        // One read of every contact's events, from the oldest moment any of its segments
        // looks at, of every type they count.
        let segments = judged.iter().flat_map(|(_, segments)| segments.iter());
        let mut types: Vec<&str> = segments
            .clone()
            .flat_map(|s| s.types.iter().map(String::as_str))
            .collect();
        types.sort_unstable();
        types.dedup();
        let mut since = Some(now);
        for segment in segments.clone() {
            since = match (since, segment.definition.reads_since(now)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
        }
        let with_fields = segments.clone().any(|s| s.reads_event_fields);
        let facts = members::facts_of(tx, store_id, &keys, &types, since, with_fields).await?;

        let mut entering = Vec::new();
        let mut exiting = Vec::new();
        let mut rechecks = Vec::new();
        let mut names: HashMap<&str, &str> = HashMap::new();
        for (key, segments) in &judged {
            let id = (store_id.to_owned(), (*key).to_owned());
            let fields = contacts.get(&id).map_or(&no_fields, |state| &state.fields);
            let facts = facts.get(*key).map_or(&[][..], Vec::as_slice);
            for segment in segments.iter() {
                names.insert(&segment.id, &segment.definition.name);
                let verdict = segment.definition.evaluate(fields, facts, now);
                let pair = (segment.id.clone(), (*key).to_owned());
                match (current.contains(&pair), verdict.member) {
                    (false, true) => entering.push((segment.id.as_str(), *key)),
                    (true, false) => exiting.push((segment.id.as_str(), *key)),
                    _ => {}
                }
                // Written only when it moves: most events leave the oldest counted one in place.
                let wanted = verdict.recheck_at.map(store::clock::format);
                if segment.windowed && due.get(&pair) != wanted.as_ref() {
                    rechecks.push((segment.id.as_str(), *key, verdict.recheck_at));
                }
            }
        }
        // The statements' own answers decide what moved: a pair another writer moved first is
        // not announced twice.
        let entered = members::enter_all(tx, store_id, &entering, &stamp).await?;
        let exited = members::exit_all(tx, store_id, &exiting).await?;
        members::set_rechecks(tx, store_id, &rechecks).await?;
        for (moved, now_member) in [(entered, true), (exited, false)] {
            let mut moved: Vec<(String, String)> = moved.into_iter().collect();
            moved.sort();
            for (segment_id, contact_key) in moved {
                transitions.push(Transition {
                    store_id: store_id.to_owned(),
                    segment_name: names
                        .get(segment_id.as_str())
                        .copied()
                        .unwrap_or_default()
                        .to_owned(),
                    segment_id,
                    contact_key,
                    entered: now_member,
                });
            }
        }
    }
    Ok(transitions)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SegmentData<'a> {
    segment_id: &'a str,
    segment_name: &'a str,
    contact: &'a ContactKey,
}

/// The `segment.entered` / `segment.exited` deliveries of `transitions` to the subscriptions
/// (of their stores) that want them. Segment messages come from no integration, so they are
/// filtered by type only.
fn deliveries(
    subscribed: &[Subscription],
    transitions: &[Transition],
    now: &str,
) -> Vec<NewDelivery> {
    let mut deliveries = Vec::new();
    for transition in transitions {
        let kind = if transition.entered {
            EventKind::SegmentEntered
        } else {
            EventKind::SegmentExited
        };
        let Some(contact) = ContactKey::from_tagged(&transition.contact_key) else {
            continue;
        };
        let wanting: Vec<&Subscription> = subscribed
            .iter()
            .filter(|s| s.store_id == transition.store_id && s.wants(kind, None))
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let message_id = new_message_id();
        let body = Payload {
            id: &message_id,
            kind: kind.as_str(),
            created_at: now,
            store_id: &transition.store_id,
            data: SegmentData {
                segment_id: &transition.segment_id,
                segment_name: &transition.segment_name,
                contact: &contact,
            },
        }
        .to_json();
        for subscription in wanting {
            deliveries.push(NewDelivery {
                store_id: transition.store_id.clone(),
                message_id: message_id.clone(),
                webhook_id: Some(subscription.id.clone()),
                event_type_id: None,
                event: kind.as_str().to_owned(),
                payload: body.clone(),
                contact_key: Some(transition.contact_key.clone()),
            });
        }
    }
    deliveries
}

/// What transitions cause besides membership, inside the caller's transaction: their
/// `segment.entered` / `segment.exited` deliveries to `subscribed`, and the runs of the
/// workflows the entered segments start (which change `contacts` in place and add their sends).
pub(crate) async fn announce(
    tx: &mut Transaction<'_, Any>,
    subscribed: &[Subscription],
    transitions: &[Transition],
    contacts: &mut HashMap<ContactId, ContactState>,
    now: &str,
) -> Result<WorkflowEffects, sqlx::Error> {
    let mut effects = WorkflowEffects::default();
    let entered = entries(transitions, now);
    if !entered.is_empty() {
        let entered: Vec<&EventEnvelope> = entered.iter().collect();
        let started = Workflows::load(tx, &entered).await?;
        effects = started.run(tx, &entered, contacts, now).await?;
    }
    effects
        .deliveries
        .extend(deliveries(subscribed, transitions, now));
    Ok(effects)
}

/// The entries of `transitions` as the events workflows started by a segment run on: the
/// segment's id stands where an event type's would, and the event's fields are the segment's
/// id and name (`{{event.segmentId}}`, `{{event.segmentName}}`).
fn entries(transitions: &[Transition], now: &str) -> Vec<EventEnvelope> {
    transitions
        .iter()
        .filter(|t| t.entered)
        .filter_map(|t| {
            let contact = ContactKey::from_tagged(&t.contact_key)?;
            let mut fields = serde_json::Map::new();
            fields.insert("segmentId".into(), t.segment_id.clone().into());
            fields.insert("segmentName".into(), t.segment_name.clone().into());
            Some(EventEnvelope {
                id: uuid::Uuid::now_v7().to_string(),
                store_id: t.store_id.clone(),
                event_type_id: t.segment_id.clone(),
                event_type_version: 0,
                alias: EventKind::SegmentEntered.as_str().to_owned(),
                receive_type: schemas::ReceiveType::Api,
                received_at: now.to_owned(),
                contact,
                fields,
            })
        })
        .collect()
}
