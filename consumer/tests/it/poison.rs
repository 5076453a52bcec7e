//! The consume loop against a real store, fed through a queue held in memory: an event the store
//! refuses (PostgreSQL rejects U+0000 in text) is dead-lettered with the store's reason and every
//! event around it is stored, in order; a store that cannot be reached keeps the batch in hand,
//! moves nothing, and reports itself failing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use consumer::health::Health;
use queue::{Batch, Source, SourceError};
use schemas::ContactKey;
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

use crate::apply::{envelope, postgres, sqlite};
use crate::support::wait_until;

/// What the queue saw: the position committed and the messages set aside with their reasons.
#[derive(Debug, Default)]
struct Seen {
    committed: u64,
    dead_letters: Vec<(String, Vec<u8>)>,
}

/// A queue whose messages are fixed up front. The consume loop is the code under test; the
/// store behind it is real.
struct ListSource {
    messages: Vec<Vec<u8>>,
    position: u64,
    seen: Arc<Mutex<Seen>>,
}

impl Source for ListSource {
    async fn next_batch(&mut self, max: usize) -> Result<Batch, SourceError> {
        let from = self.position as usize;
        if from >= self.messages.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(Batch::default());
        }
        // Small batches, so a refused event shares its batch with good ones on both sides.
        let to = (from + max.min(4)).min(self.messages.len());
        self.position = to as u64;
        Ok(Batch {
            messages: self.messages[from..to].to_vec(),
            next_position: to as u64,
            lag: (self.messages.len() - to) as u64,
        })
    }

    async fn commit(&mut self, batch: &Batch) -> Result<(), SourceError> {
        self.seen.lock().expect("lock").committed = batch.next_position;
        Ok(())
    }

    async fn dead_letter(&mut self, message: &[u8], reason: &str) -> Result<(), SourceError> {
        self.seen
            .lock()
            .expect("lock")
            .dead_letters
            .push((reason.to_owned(), message.to_vec()));
        Ok(())
    }

    fn lag(&self) -> u64 {
        self.messages.len() as u64 - self.seen.lock().expect("lock").committed
    }
}

fn message(id: &str, contact: ContactKey) -> Vec<u8> {
    envelope(id, contact).to_bytes()
}

/// Ten good events around a NUL tracker id and a message that is no envelope at all.
fn poisoned_stream() -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    for n in 0..5 {
        messages.push(message(
            &format!("good-{n}"),
            ContactKey::Email(format!("c{n}@example.com")),
        ));
    }
    messages.push(message(
        "poison",
        ContactKey::Tracker("nul\u{0}tracker".into()),
    ));
    messages.push(b"not an envelope".to_vec());
    for n in 5..10 {
        messages.push(message(
            &format!("good-{n}"),
            ContactKey::Email(format!("c{n}@example.com")),
        ));
    }
    messages
}

async fn consume_until_committed(db: &AnyPool, messages: Vec<Vec<u8>>) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let total = messages.len() as u64;
    let source = ListSource {
        messages,
        position: 0,
        seen: seen.clone(),
    };
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::new(Duration::from_secs(60)));
    let running = tokio::spawn(consumer::consume::run(
        source,
        db.clone(),
        Arc::new(tokio::sync::Notify::new()),
        health.clone(),
        shutdown.clone(),
    ));
    wait_until(
        Duration::from_secs(30),
        "the queue to move past every message",
        || async { (seen.lock().expect("lock").committed >= total).then_some(()) },
    )
    .await;
    shutdown.cancel();
    running.await.expect("consume loop");
    assert_eq!(health.failing_for(), Duration::ZERO);
    Arc::try_unwrap(seen)
        .expect("only the test holds it")
        .into_inner()
        .expect("lock")
}

async fn recorded(db: &AnyPool) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT event_id FROM activities ORDER BY event_id")
        .fetch_all(db)
        .await
        .expect("activities");
    rows.into_iter().map(|(id,)| id).collect()
}

#[tokio::test]
async fn an_event_postgres_refuses_is_dead_lettered_and_the_rest_are_stored() {
    let db = postgres().await;
    let seen = consume_until_committed(&db, poisoned_stream()).await;
    let mut expected: Vec<String> = (0..10).map(|n| format!("good-{n}")).collect();
    expected.sort();
    assert_eq!(recorded(&db).await, expected);
    let reasons: Vec<&str> = seen.dead_letters.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    // The unreadable message is set aside as its batch is read, before the batch is stored.
    assert!(
        reasons[0].starts_with("not an event envelope"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("the store refused the event") && reasons[1].contains("0x00"),
        "the reason names the cause: {reasons:?}"
    );
    let mut poison = seen.dead_letters[1].1.clone();
    let poison = schemas::EventEnvelope::from_bytes(&mut poison).expect("the original message");
    assert_eq!(poison.id, "poison");
}

#[tokio::test]
async fn sqlite_stores_the_same_stream_without_stalling() {
    let (db, _dir) = sqlite().await;
    let seen = consume_until_committed(&db, poisoned_stream()).await;
    assert_eq!(seen.dead_letters.len(), 1, "only the unreadable message");
    assert_eq!(recorded(&db).await.len(), 11);
}

#[tokio::test]
async fn an_unreachable_store_holds_the_batch_and_reports_failing() {
    let (db, _dir) = sqlite().await;
    // A closed pool fails every query the way an unreachable server does: not the data's fault.
    db.close().await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let source = ListSource {
        messages: poisoned_stream(),
        position: 0,
        seen: seen.clone(),
    };
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::new(Duration::from_millis(300)));
    let running = tokio::spawn(consumer::consume::run(
        source,
        db,
        Arc::new(tokio::sync::Notify::new()),
        health.clone(),
        shutdown.clone(),
    ));
    wait_until(
        Duration::from_secs(10),
        "the batch to be reported stuck",
        || async { health.is_stuck().then_some(()) },
    )
    .await;
    shutdown.cancel();
    running.await.expect("consume loop");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.committed, 0, "nothing moves while the store is away");
    assert!(seen.dead_letters.is_empty(), "no good event is set aside");
}
