//! The embedded durable queue: an append-only log in an fjall keyspace under the data
//! directory, keyed by a big-endian sequence number.
//!
//! One writer thread owns appends. It takes every request waiting on its channel, writes them
//! as one batch, syncs the journal once (`fdatasync`), and only then acknowledges them all: a
//! group commit, so the cost of the sync is shared by everyone who arrived during the last one.
//! The channel is bounded; when it is full, publishers get `PublishError::Full` (a 503) at once.
//!
//! The consumer reads from its cursor, stores the effects, then deletes what it read and saves
//! the cursor in one fjall batch. That batch need not be synced: losing it only replays events
//! whose effects are idempotent.

mod source;
mod writer;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tokio::sync::{mpsc, watch};

use crate::PublishError;
pub use source::EmbeddedSource;
pub use writer::EmbeddedWriter;

const CURSOR_KEY: &[u8] = b"consumer-cursor";

/// Opens (or creates) the log in `dir`; `capacity` bounds the requests waiting to be written.
pub fn open(dir: &Path, capacity: usize) -> Result<(EmbeddedWriter, EmbeddedSource), PublishError> {
    let unavailable = |e: fjall::Error| PublishError::Unavailable(e.to_string());
    let db = Database::builder(dir)
        .cache_size(8 * 1024 * 1024)
        .worker_threads(2)
        .max_journaling_size(512 * 1024 * 1024)
        // Appends reach the OS only when the writer syncs them, in one write per group.
        .manual_journal_persist(true)
        .open()
        .map_err(unavailable)?;
    let options = || {
        KeyspaceCreateOptions::default()
            .max_memtable_size(16 * 1024 * 1024)
            .manual_journal_persist(true)
    };
    let events = db.keyspace("events", options).map_err(unavailable)?;
    let meta = db.keyspace("meta", options).map_err(unavailable)?;
    let cursor = read_cursor(&meta).map_err(unavailable)?;
    // Once everything is consumed the log is empty, so the next sequence number comes from the
    // cursor as well as the last key: a sequence must never fall behind the cursor.
    let last = events
        .last_key_value()
        .map(|guard| guard.key().map(|k| seq_of(&k)))
        .transpose()
        .map_err(unavailable)?;
    let next = last.map_or(cursor, |last| cursor.max(last + 1));
    let (written_tx, written_rx) = watch::channel(next);
    let (appends, receiver) = mpsc::channel(capacity);
    let healthy = Arc::new(AtomicBool::new(true));
    let writer = writer::Appender {
        db: db.clone(),
        events: events.clone(),
        next,
        written: written_tx,
        healthy: healthy.clone(),
    };
    let writer = thread::Builder::new()
        .name("queue-writer".into())
        .spawn(move || writer.run(receiver))
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    Ok((
        writer::EmbeddedWriter {
            appends: Some(appends),
            healthy,
            writer: Some(writer),
        },
        source::EmbeddedSource {
            db,
            events,
            meta,
            written: written_rx,
            cursor,
        },
    ))
}

fn read_cursor(meta: &Keyspace) -> Result<u64, fjall::Error> {
    Ok(meta
        .get(CURSOR_KEY)?
        .and_then(|value| <[u8; 8]>::try_from(value.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

fn seq_of(key: &[u8]) -> u64 {
    <[u8; 8]>::try_from(key).map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Source};

    fn message(n: usize) -> Message {
        Message {
            key: format!("k{n}"),
            payload: format!("payload {n}").into_bytes(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn published_messages_survive_a_reopen_and_are_read_in_order_once() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (queue, _source) = open(dir.path(), 64).expect("open");
            for n in 0..10 {
                queue.publish(vec![message(n)]).await.expect("publish");
            }
            queue
                .publish((10..20).map(message).collect())
                .await
                .expect("publish a group");
        }
        let (_queue, mut source) = open(dir.path(), 64).expect("reopen");
        let batch = source.next_batch(15).await.expect("read");
        let read: Vec<String> = batch
            .messages
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        assert_eq!(read.len(), 15);
        assert_eq!(read[0], "payload 0");
        assert_eq!(read[14], "payload 14");
        assert_eq!(batch.lag, 5);
        source.commit(&batch).await.expect("commit");
        let rest = source.next_batch(100).await.expect("read the rest");
        assert_eq!(rest.messages.len(), 5);
        assert_eq!(rest.messages[0], b"payload 15");
        source.commit(&rest).await.expect("commit");
        drop(source);
        drop(_queue);
        // Everything consumed: a new append continues after the cursor, never before it.
        let (queue, mut source) = open(dir.path(), 64).expect("reopen empty");
        assert_eq!(source.lag(), 0);
        queue.publish(vec![message(99)]).await.expect("publish");
        let batch = source.next_batch(10).await.expect("read");
        assert_eq!(batch.messages, vec![b"payload 99".to_vec()]);
        assert_eq!(batch.next_position, 21);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_channel_refuses_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let (queue, _source) = open(dir.path(), 1).expect("open");
        let queue = Arc::new(queue);
        // Many concurrent publishers against a channel of one: some must be refused with Full,
        // and every one that was accepted must be acknowledged.
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.publish(vec![message(n)]).await })
            })
            .collect();
        let mut full = 0;
        let mut ok = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => ok += 1,
                Err(PublishError::Full) => full += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(ok > 0 && full > 0, "ok {ok}, full {full}");
    }
}
