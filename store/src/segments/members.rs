//! The segments tables as the consumer keeps them (members, rechecks, backfills) and as the
//! API reads them. A transition is a row inserted or deleted with the statement's own answer
//! deciding it happened, so two writers judging the same contact emit it once.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use sqlx::{Any, AnyPool, Transaction};
use time::OffsetDateTime;

use super::{Fact, MAX_ACTIVITIES_READ};
use crate::clock;
use crate::sql::{contacts_of_store, engine_of, list_placeholders, positional, row_placeholders};

/// A segment as the consumer reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSegment {
    pub id: String,
    pub store_id: String,
    pub body: String,
    pub updated_at: String,
    pub backfill_after: Option<String>,
}

/// The segments of these stores.
pub async fn of_stores(
    tx: &mut Transaction<'_, Any>,
    store_ids: &[&str],
) -> Result<Vec<StoredSegment>, sqlx::Error> {
    if store_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, store_id, body, updated_at, backfill_after FROM segments \
         WHERE store_id IN ({}) ORDER BY id",
        list_placeholders(1, store_ids.len())
    );
    let mut query = sqlx::query_as::<_, StoredSegment>(&sql);
    for store in store_ids {
        query = query.bind(*store);
    }
    query.fetch_all(&mut **tx).await
}

/// The segments these contacts of `store_id` are members of now, as (segment, contact key).
pub async fn memberships(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    contact_keys: &[&str],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let mut found = HashSet::new();
    for chunk in contact_keys.chunks(500) {
        let sql = positional(
            engine_of(tx),
            format!(
                "SELECT segment_id, contact_key FROM segment_members WHERE {}",
                contacts_of_store(1, chunk.len())
            ),
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for key in chunk {
            query = query.bind(store_id).bind(*key);
        }
        found.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(found)
}

/// Rows a multi-row statement of (segment, contact) pairs carries.
const PAIRS_PER_STATEMENT: usize = 200;

/// The most recent events of `types` of each of these contacts of `store_id`, received at or
/// after `since` (all when None), newest first, at most [`MAX_ACTIVITIES_READ`] a contact, in
/// one statement per [`PAIRS_PER_STATEMENT`] contacts.
pub async fn facts_of(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    contact_keys: &[&str],
    types: &[&str],
    since: Option<OffsetDateTime>,
    with_fields: bool,
) -> Result<HashMap<String, Vec<Fact>>, sqlx::Error> {
    let mut found: HashMap<String, Vec<Fact>> = HashMap::new();
    if types.is_empty() {
        return Ok(found);
    }
    let fields = if with_fields { "fields" } else { "'{}'" };
    let since = since.map(clock::format).unwrap_or_default();
    let engine = engine_of(tx);
    for chunk in contact_keys.chunks(PAIRS_PER_STATEMENT) {
        // Numbered per contact, newest first, so each contact is read up to the bound however
        // many events the others have.
        let sql = positional(
            engine,
            format!(
                "SELECT contact_key, event_type_id, received_at, fields FROM ( \
                 SELECT contact_key, event_type_id, received_at, {fields} AS fields, \
                 ROW_NUMBER() OVER (PARTITION BY contact_key ORDER BY received_at DESC) AS n \
                 FROM activities WHERE received_at >= $1 \
                 AND {} AND event_type_id IN ({})) recent \
                 WHERE n <= {MAX_ACTIVITIES_READ}",
                contacts_of_store(2, chunk.len()),
                list_placeholders(2 + 2 * chunk.len(), types.len())
            ),
        );
        let mut query = sqlx::query_as::<_, (String, String, String, String)>(&sql).bind(&since);
        for key in chunk {
            query = query.bind(store_id).bind(*key);
        }
        for t in types {
            query = query.bind(*t);
        }
        for (contact, event_type_id, received_at, fields) in query.fetch_all(&mut **tx).await? {
            let Some(received_at) = clock::parse(&received_at) else {
                continue;
            };
            let fields = match serde_json::from_str(&fields) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            found.entry(contact).or_default().push(Fact {
                event_type_id,
                received_at,
                fields,
            });
        }
    }
    Ok(found)
}

/// Makes these (segment, contact) pairs of `store_id` members; answers those that were not
/// (the caller announces their entry).
pub async fn enter_all(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    pairs: &[(&str, &str)],
    now: &str,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let mut entered = HashSet::new();
    let engine = engine_of(tx);
    for chunk in pairs.chunks(PAIRS_PER_STATEMENT) {
        let sql = positional(
            engine,
            format!(
                "INSERT INTO segment_members (segment_id, contact_key, store_id, entered_at) \
                 VALUES {} ON CONFLICT (segment_id, contact_key) DO NOTHING \
                 RETURNING segment_id, contact_key",
                row_placeholders(chunk.len(), 4)
            ),
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for (segment, contact) in chunk {
            query = query.bind(*segment).bind(*contact).bind(store_id).bind(now);
        }
        entered.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(entered)
}

/// Ends these memberships; answers those that were (the caller announces their exit).
pub async fn exit_all(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    pairs: &[(&str, &str)],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let mut exited = HashSet::new();
    let engine = engine_of(tx);
    for chunk in pairs.chunks(PAIRS_PER_STATEMENT) {
        let sql = positional(
            engine,
            format!(
                "DELETE FROM segment_members WHERE store_id = $1 \
                 AND (segment_id, contact_key) IN (VALUES {}) \
                 RETURNING segment_id, contact_key",
                pair_placeholders(2, chunk.len())
            ),
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(store_id);
        for (segment, contact) in chunk {
            query = query.bind(*segment).bind(*contact);
        }
        exited.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(exited)
}

/// (segment, contact, when it is judged again with no new event; None: never).
pub type Recheck<'a> = (&'a str, &'a str, Option<OffsetDateTime>);

/// Sets (Some) or clears (None) when each pair is judged again with no new event.
pub async fn set_rechecks(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    rechecks: &[Recheck<'_>],
) -> Result<(), sqlx::Error> {
    let engine = engine_of(tx);
    let set: Vec<(&str, &str, String)> = rechecks
        .iter()
        .filter_map(|(s, c, due)| due.map(|due| (*s, *c, clock::format(due))))
        .collect();
    let cleared: Vec<(&str, &str)> = rechecks
        .iter()
        .filter(|(_, _, due)| due.is_none())
        .map(|(s, c, _)| (*s, *c))
        .collect();
    for chunk in set.chunks(PAIRS_PER_STATEMENT) {
        let sql = positional(
            engine,
            format!(
                "INSERT INTO segment_rechecks (segment_id, contact_key, store_id, due_at) \
                 VALUES {} ON CONFLICT (segment_id, contact_key) \
                 DO UPDATE SET due_at = excluded.due_at",
                row_placeholders(chunk.len(), 4)
            ),
        );
        let mut query = sqlx::query(&sql);
        for (segment, contact, due) in chunk {
            query = query.bind(*segment).bind(*contact).bind(store_id).bind(due);
        }
        query.execute(&mut **tx).await?;
    }
    for chunk in cleared.chunks(PAIRS_PER_STATEMENT) {
        let sql = positional(
            engine,
            format!(
                "DELETE FROM segment_rechecks WHERE store_id = $1 \
                 AND (segment_id, contact_key) IN (VALUES {})",
                pair_placeholders(2, chunk.len())
            ),
        );
        let mut query = sqlx::query(&sql).bind(store_id);
        for (segment, contact) in chunk {
            query = query.bind(*segment).bind(*contact);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `($first, $first+1), …` for `count` pairs.
fn pair_placeholders(first: usize, count: usize) -> String {
    (0..count)
        .map(|i| format!("(${}, ${})", first + 2 * i, first + 2 * i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Has the store's segments that read any of `fields` judge the contact again at the
/// sweeper's next tick (a change made outside the consumer: the contacts API).
pub async fn recheck_now(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    contact_key: &str,
    fields: &[&str],
    now: &str,
) -> Result<(), sqlx::Error> {
    let now = clock::parse(now);
    let segments = of_stores(tx, &[store_id]).await?;
    let reading: Vec<Recheck<'_>> = segments
        .iter()
        .filter(|segment| {
            serde_json::from_str::<super::SegmentDefinition>(&segment.body)
                .is_ok_and(|d| d.contact_fields().any(|f| fields.contains(&f)))
        })
        .map(|segment| (segment.id.as_str(), contact_key, now))
        .collect();
    if now.is_some() {
        set_rechecks(tx, store_id, &reading).await?;
    }
    Ok(())
}

/// When each of these contacts of `store_id` is due to be judged again, by (segment, contact).
pub async fn rechecks(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    contact_keys: &[&str],
) -> Result<HashMap<(String, String), String>, sqlx::Error> {
    let mut found = HashMap::new();
    for chunk in contact_keys.chunks(500) {
        let sql = positional(
            engine_of(tx),
            format!(
                "SELECT segment_id, contact_key, due_at FROM segment_rechecks WHERE {}",
                contacts_of_store(1, chunk.len())
            ),
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
        for key in chunk {
            query = query.bind(store_id).bind(*key);
        }
        for (segment, contact, due_at) in query.fetch_all(&mut **tx).await? {
            found.insert((segment, contact), due_at);
        }
    }
    Ok(found)
}

/// A (segment, contact) pair due to be evaluated again.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub segment_id: String,
    pub store_id: String,
    pub contact_key: String,
}

/// Up to `limit` pairs whose recheck is due at `now`, most overdue first.
pub async fn due(
    tx: &mut Transaction<'_, Any>,
    now: &str,
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        "SELECT segment_id, store_id, contact_key FROM segment_rechecks \
         WHERE due_at <= $1 ORDER BY due_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// A segment whose contacts have not all been evaluated against its current definition.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Backfill {
    pub id: String,
    pub store_id: String,
    pub updated_at: String,
    pub backfill_after: String,
}

/// One segment with a backfill to do, if any.
pub async fn next_backfill(tx: &mut Transaction<'_, Any>) -> Result<Option<Backfill>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, store_id, updated_at, backfill_after FROM segments \
         WHERE backfill_after IS NOT NULL ORDER BY updated_at LIMIT 1",
    )
    .fetch_optional(&mut **tx)
    .await
}

/// The stored keys of up to `limit` of the store's contacts after `after`, in order.
pub async fn contacts_after(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT contact_key FROM contacts WHERE store_id = $1 AND contact_key > $2 \
         ORDER BY contact_key LIMIT $3",
    )
    .bind(store_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Moves the backfill on to `next` (None: done), unless the segment was written since it was
/// read (`updated_at`), in which case the new definition's backfill stands.
pub async fn advance_backfill(
    tx: &mut Transaction<'_, Any>,
    segment_id: &str,
    updated_at: &str,
    next: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE segments SET backfill_after = $1 WHERE id = $2 AND updated_at = $3")
        .bind(next)
        .bind(segment_id)
        .bind(updated_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Members per segment, for answers' `size`.
pub async fn sizes(
    db: &AnyPool,
    segment_ids: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    if segment_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT segment_id, COUNT(*) FROM segment_members WHERE segment_id IN ({}) \
         GROUP BY segment_id",
        list_placeholders(1, segment_ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
    for id in segment_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(db).await?.into_iter().collect())
}

/// A segment a contact is in, as `GET /v1/contacts/{email}/segments` lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub id: String,
    pub name: String,
    pub entered_at: String,
}

/// A page of the segments the contact is in, by segment id, and whether more follow.
pub async fn of_contact(
    db: &AnyPool,
    store_id: &str,
    contact_key: &str,
    after: &str,
    limit: i64,
) -> Result<(Vec<Membership>, bool), sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.segment_id, s.body, m.entered_at FROM segment_members m \
         JOIN segments s ON s.id = m.segment_id \
         WHERE m.store_id = $1 AND m.contact_key = $2 AND m.segment_id > $3 \
         ORDER BY m.segment_id LIMIT $4",
    )
    .bind(store_id)
    .bind(contact_key)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let more = rows.len() as i64 > limit;
    let listed = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(id, body, entered_at)| Membership {
            id,
            name: serde_json::from_str::<super::SegmentDefinition>(&body)
                .map(|d| d.name)
                .unwrap_or_default(),
            entered_at,
        })
        .collect();
    Ok((listed, more))
}

/// Deletes the store's segment, its members and its rechecks; false when there is none.
pub async fn delete(db: &AnyPool, store_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted = sqlx::query("DELETE FROM segments WHERE id = $1 AND store_id = $2")
        .bind(id)
        .bind(store_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    for table in ["segment_members", "segment_rechecks"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE segment_id = $1 AND store_id = $2"
        ))
        .bind(id)
        .bind(store_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}
