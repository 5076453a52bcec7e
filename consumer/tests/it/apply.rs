//! `effects::apply`: at-least-once delivery in, exactly-once effects out.

use schemas::{ContactKey, EventEnvelope, ReceiveType};
use sqlx::AnyPool;

pub(crate) async fn sqlite() -> (AnyPool, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let pool = store::connect(&store::sqlite_url(dir.path()))
        .await
        .expect("sqlite");
    (pool, dir)
}

pub(crate) async fn postgres() -> AnyPool {
    let admin = std::env::var("SLUICE_TEST_POSTGRES_URL")
        .expect("SLUICE_TEST_POSTGRES_URL is not set: run the tests with ./scripts/test");
    sqlx::any::install_default_drivers();
    let name = format!("consumer_{}", uuid::Uuid::new_v4().simple());
    let pool = AnyPool::connect(&admin).await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&name);
    store::connect(url.as_str()).await.expect("postgres")
}

pub(crate) fn envelope(id: &str, contact: ContactKey) -> EventEnvelope {
    let mut fields = serde_json::Map::new();
    fields.insert("total".into(), serde_json::json!(12.5));
    EventEnvelope {
        id: id.into(),
        store_id: "store".into(),
        event_type_id: "type".into(),
        event_type_version: 1,
        alias: "order-paid".into(),
        receive_type: ReceiveType::Webhook,
        received_at: store::clock::now(),
        contact,
        fields,
    }
}

async fn redelivery_changes_nothing(db: AnyPool) {
    let ann = ContactKey::Email("ann@example.com".into());
    let first = vec![
        envelope("e1", ann.clone()),
        envelope("e2", ann.clone()),
        envelope("e3", ContactKey::Tracker("visitor-9".into())),
    ];
    let applied = consumer::effects::apply(&db, &first).await.expect("apply");
    assert_eq!(applied.recorded, 3);
    assert_eq!(applied.duplicates, 0);
    // Two events of one new contact create it once.
    assert_eq!(applied.contacts_created, 2);
    assert_eq!(applied.contacts_updated, 0);
    let created = store::contacts::contact(&db, "store", "ann@example.com")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(created.updated_at, created.created_at);
    // Timestamps have millisecond precision: the next batch is stored in a later one.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // The whole batch again (a crash before the queue position moved), plus one new event and
    // one repeated inside the batch itself.
    let mut again = first.clone();
    again.push(envelope("e4", ann.clone()));
    again.push(envelope("e4", ann.clone()));
    let applied = consumer::effects::apply(&db, &again)
        .await
        .expect("apply again");
    assert_eq!(applied.recorded, 1);
    assert_eq!(applied.duplicates, 4);
    assert_eq!(applied.contacts_created, 0);
    assert_eq!(applied.contacts_updated, 1);

    let page = store::contacts::activities(&db, "store", "ann@example.com", 100, None)
        .await
        .expect("activities");
    let ids: Vec<&str> = page.results.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&"e1") && ids.contains(&"e2") && ids.contains(&"e4"));
    assert_eq!(page.results[0].fields["total"], 12.5);
    let contact = store::contacts::contact(&db, "store", "ann@example.com")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(contact.email, "ann@example.com");
    // The new event touched the contact it did not create.
    assert_eq!(contact.created_at, created.created_at);
    assert!(contact.updated_at > created.updated_at, "{contact:?}");
    assert!(
        !store::contacts::contact_exists(&db, "other-store", "ann@example.com")
            .await
            .expect("read")
    );
}

#[tokio::test]
async fn redelivery_changes_nothing_on_sqlite() {
    let (db, _dir) = sqlite().await;
    redelivery_changes_nothing(db).await;
}

#[tokio::test]
async fn redelivery_changes_nothing_on_postgres() {
    redelivery_changes_nothing(postgres().await).await;
}
