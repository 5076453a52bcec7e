//! `effects::apply` with a workflow and a subscription: the contact.* delivery a batch adds
//! carries the contact exactly as the batch leaves it stored, workflow changes included.

use schemas::{ContactKey, EventEnvelope};
use serde_json::{json, Value};
use sqlx::AnyPool;

use crate::apply::{envelope, postgres, sqlite};

/// Store `store` with receive type `type` (of integration `i1`), a workflow copying each
/// event's total onto its contact, and a subscription to every message type.
async fn registry(db: &AnyPool) {
    let now = store::clock::now();
    let workflow = json!({
        "name": "copy the total",
        "status": "active",
        "trigger": {"customEventTypeId": "type"},
        "actions": [{"type": "setContactFields", "fields": {"lastTotal": "{{event.total}}"}}],
    });
    let statements = [
        "INSERT INTO stores (id, name, created_at) VALUES ('store', 'test', $1)",
        "INSERT INTO integrations (id, store_id, body, created_at, updated_at) \
         VALUES ('i1', 'store', '{}', $1, $1)",
        "INSERT INTO event_types (id, store_id, integration_id, alias, category, body, version, \
         created_at, updated_at) VALUES ('type', 'store', 'i1', 'order-paid', 'receive', '{}', 1, $1, $1)",
        "INSERT INTO webhooks (id, store_id, target_url, types, is_active, status, secret, \
         created_at, updated_at) VALUES ('w1', 'store', 'https://example.com/hook', '', 1, \
         'enabled', 'whsec_x', $1, $1)",
    ];
    for statement in statements {
        sqlx::query(statement)
            .bind(&now)
            .execute(db)
            .await
            .expect(statement);
    }
    sqlx::query(
        "INSERT INTO workflows (id, store_id, trigger_event_type_id, status, body, created_at, \
         updated_at) VALUES ('wf1', 'store', 'type', 'active', $1, $2, $2)",
    )
    .bind(workflow.to_string())
    .bind(&now)
    .execute(db)
    .await
    .expect("workflow");
}

fn order(id: &str, total: f64) -> EventEnvelope {
    let mut event = envelope(id, ContactKey::Email("ann@example.com".into()));
    event.fields.insert("total".into(), json!(total));
    event
}

/// The payloads of the outbox's deliveries of `kind`, oldest first.
async fn payloads(db: &AnyPool, kind: &str) -> Vec<Value> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT payload FROM deliveries WHERE event = $1 ORDER BY id")
            .bind(kind)
            .fetch_all(db)
            .await
            .expect("deliveries");
    rows.iter()
        .map(|(text,)| serde_json::from_str(text).expect("JSON payload"))
        .collect()
}

/// The stored contact, as its contact.* payload shows it.
async fn stored(db: &AnyPool) -> Value {
    let contact = store::contacts::contact(db, "store", "ann@example.com")
        .await
        .expect("read")
        .expect("exists");
    json!({
        "email": "ann@example.com",
        "fields": contact.fields,
        "createdAt": contact.created_at,
        "updatedAt": contact.updated_at,
    })
}

async fn contact_messages_carry_the_contact_as_stored(db: AnyPool) {
    registry(&db).await;
    let applied = consumer::effects::apply(&db, &[order("e1", 12.5), order("e2", 20.0)])
        .await
        .expect("apply");
    assert_eq!(applied.workflow_runs, 2);
    // One custom_event.received per event, one contact.created for the contact.
    assert_eq!(applied.deliveries, 3);
    assert_eq!(payloads(&db, "custom_event.received").await.len(), 2);
    let created = payloads(&db, "contact.created").await;
    assert_eq!(created.len(), 1);
    // The last run's value, as stored.
    assert_eq!(created[0]["data"]["fields"], json!({"lastTotal": 20.0}));
    assert_eq!(created[0]["data"], stored(&db).await);

    let applied = consumer::effects::apply(&db, &[order("e3", 7.0)])
        .await
        .expect("apply again");
    assert_eq!(applied.contacts_updated, 1);
    let updated = payloads(&db, "contact.updated").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["data"]["fields"], json!({"lastTotal": 7.0}));
    assert_eq!(updated[0]["data"], stored(&db).await);
    assert_eq!(
        updated[0]["data"]["createdAt"],
        created[0]["data"]["createdAt"]
    );
}

#[tokio::test]
async fn contact_messages_carry_the_contact_as_stored_on_sqlite() {
    let (db, _dir) = sqlite().await;
    contact_messages_carry_the_contact_as_stored(db).await;
}

#[tokio::test]
async fn contact_messages_carry_the_contact_as_stored_on_postgres() {
    contact_messages_carry_the_contact_as_stored(postgres().await).await;
}
