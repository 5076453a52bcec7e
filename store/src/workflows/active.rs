//! What the consumer reads to run workflows inside a batch's transaction: the active
//! workflows of the batch's stores, and the send types their actions name.

use sqlx::{Any, Transaction};

use super::WorkflowDefinition;
use crate::sql::list_placeholders;

/// An active workflow as stored, its definition still JSON text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveWorkflow {
    pub id: String,
    pub store_id: String,
    pub trigger_event_type_id: String,
    pub body: String,
}

impl ActiveWorkflow {
    /// The stored definition; an error means the row cannot be read and the workflow is not run.
    pub fn definition(&self) -> Result<WorkflowDefinition, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// The active workflows of these stores, in creation order.
pub async fn active(
    tx: &mut Transaction<'_, Any>,
    store_ids: &[&str],
) -> Result<Vec<ActiveWorkflow>, sqlx::Error> {
    if store_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, store_id, trigger_event_type_id, body FROM workflows \
         WHERE status = 'active' AND store_id IN ({}) ORDER BY id",
        list_placeholders(1, store_ids.len())
    );
    let mut query = sqlx::query_as::<_, ActiveWorkflow>(&sql);
    for store in store_ids {
        query = query.bind(*store);
    }
    query.fetch_all(&mut **tx).await
}

/// A send event type as stored, its definition still JSON text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendType {
    pub store_id: String,
    pub id: String,
    pub body: String,
}

/// The send event types among these ids (those that still exist).
pub async fn send_types(
    tx: &mut Transaction<'_, Any>,
    ids: &[&str],
) -> Result<Vec<SendType>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT store_id, id, body FROM event_types WHERE category = 'send' AND id IN ({})",
        list_placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, SendType>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(&mut **tx).await
}
