//! Segment transitions are stored with the batch that causes them and announced once: a
//! redelivered batch, a sweep before the window passes, and a second sweep after it change
//! nothing more. The sweeper runs at chosen instants, so windows are tested without waiting.

use schemas::ContactKey;
use sqlx::AnyPool;

use crate::apply::{envelope, postgres, sqlite};

async fn count(db: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db)
        .await
        .expect("count")
}

async fn transitions_happen_once(db: AnyPool) {
    let now = store::clock::now();
    sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ('store', 'store', $1)")
        .bind(&now)
        .execute(&db)
        .await
        .expect("store");
    sqlx::query(
        "INSERT INTO webhooks (id, store_id, target_url, types, is_active, status, secret, \
         created_at, updated_at) VALUES ('hook', 'store', 'http://127.0.0.1:9/', \
         'segment.entered segment.exited', 1, 'enabled', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', $1, $1)",
    )
    .bind(&now)
    .execute(&db)
    .await
    .expect("webhook");
    let body = serde_json::json!({"name": "Twice a minute", "match": "all", "conditions": [
        {"event": {"customEventTypeId": "type", "within": "60s", "count": {"op": "gte", "value": 2}}}
    ]});
    sqlx::query(
        "INSERT INTO segments (id, store_id, body, created_at, updated_at) \
         VALUES ('seg', 'store', $1, $2, $2)",
    )
    .bind(body.to_string())
    .bind(&now)
    .execute(&db)
    .await
    .expect("segment");

    let ann = ContactKey::Email("ann@example.com".into());
    let batch = vec![envelope("e1", ann.clone()), envelope("e2", ann.clone())];
    let applied = consumer::effects::apply(&db, &batch).await.expect("apply");
    assert_eq!(applied.segment_transitions, 1);
    // Redelivered: recorded before, so judged before; nothing moves, nothing is announced.
    let again = consumer::effects::apply(&db, &batch).await.expect("again");
    assert_eq!(again.segment_transitions, 0);
    let entered = "SELECT COUNT(*) FROM deliveries WHERE event = 'segment.entered'";
    assert_eq!(count(&db, entered).await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM segment_members").await, 1);

    let at = |seconds: i64| time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    // Before the window passes: nothing is due.
    let early = consumer::segments::step(&db, at(30)).await.expect("sweep");
    assert_eq!(early.transitions, 0);
    // After it: Ann leaves, once, however often the sweeper looks.
    let late = consumer::segments::step(&db, at(61)).await.expect("sweep");
    assert_eq!(late.transitions, 1);
    assert_eq!(late.deliveries, 1);
    let later = consumer::segments::step(&db, at(120)).await.expect("sweep");
    assert_eq!(later.transitions, 0);
    let exited = "SELECT COUNT(*) FROM deliveries WHERE event = 'segment.exited'";
    assert_eq!(count(&db, exited).await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM segment_members").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM segment_rechecks").await, 0);
}

#[tokio::test]
async fn segment_transitions_happen_once_on_sqlite() {
    let (db, _dir) = sqlite().await;
    transitions_happen_once(db).await;
}

#[tokio::test]
async fn segment_transitions_happen_once_on_postgres() {
    transitions_happen_once(postgres().await).await;
}
