//! The embedded durable queue: an append-only log in an fjall keyspace under the data
//! directory, keyed by a big-endian sequence number.
//!
//! One writer thread owns appends. It takes every request waiting on its channel, writes them
//! as one batch, syncs the journal once (`fdatasync`), and only then acknowledges them all: a
//! group commit, so the cost of the sync is shared by everyone who arrived during the last one.
//! The channel is bounded; when it is full, publishers get `QueueError::Full` (a 503) at once.
//!
//! The consumer reads from its cursor, stores the effects, then deletes what it read and saves
//! the cursor in one fjall batch. That batch need not be synced: losing it only replays events
//! whose effects are idempotent.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use consumer::consume::{Batch, Source, SourceError};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Message, QueueError};

/// Most requests written under one sync.
const MAX_GROUP: usize = 4096;
const CURSOR_KEY: &[u8] = b"consumer-cursor";

type Ack = oneshot::Sender<Result<(), QueueError>>;

struct Append {
    messages: Vec<Message>,
    done: Ack,
}

impl std::fmt::Debug for Append {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append")
            .field("messages", &self.messages.len())
            .finish()
    }
}

/// The write side, shared by request handlers.
#[derive(Debug)]
pub(crate) struct EmbeddedQueue {
    /// `None` only while dropping, so the writer sees its channel close.
    appends: Option<mpsc::Sender<Append>>,
    healthy: Arc<AtomicBool>,
    writer: Option<thread::JoinHandle<()>>,
}

/// The read side, owned by the in-process consumer.
pub(crate) struct EmbeddedSource {
    db: Database,
    events: Keyspace,
    meta: Keyspace,
    written: watch::Receiver<u64>,
    cursor: u64,
}

/// Opens (or creates) the log in `dir`; `capacity` bounds the requests waiting to be written.
pub(crate) fn open(
    dir: &Path,
    capacity: usize,
) -> Result<(EmbeddedQueue, EmbeddedSource), QueueError> {
    let unavailable = |e: fjall::Error| QueueError::Unavailable(e.to_string());
    let db = Database::builder(dir)
        .cache_size(32 * 1024 * 1024)
        .worker_threads(2)
        .max_journaling_size(512 * 1024 * 1024)
        // Appends reach the OS only when the writer syncs them, in one write per group.
        .manual_journal_persist(true)
        .open()
        .map_err(unavailable)?;
    let options = || {
        KeyspaceCreateOptions::default()
            .max_memtable_size(64 * 1024 * 1024)
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
    let writer = Writer {
        db: db.clone(),
        events: events.clone(),
        next,
        written: written_tx,
        healthy: healthy.clone(),
    };
    let writer = thread::Builder::new()
        .name("queue-writer".into())
        .spawn(move || writer.run(receiver))
        .map_err(|e| QueueError::Unavailable(e.to_string()))?;
    Ok((
        EmbeddedQueue {
            appends: Some(appends),
            healthy,
            writer: Some(writer),
        },
        EmbeddedSource {
            db,
            events,
            meta,
            written: written_rx,
            cursor,
        },
    ))
}

impl EmbeddedQueue {
    pub(crate) async fn publish(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let (done, acked) = oneshot::channel();
        let appends = self.appends.as_ref().ok_or_else(stopped)?;
        appends
            .try_send(Append { messages, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })?;
        acked.await.map_err(|_| stopped())?
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && self.appends.as_ref().is_some_and(|a| !a.is_closed())
    }
}

fn stopped() -> QueueError {
    QueueError::Unavailable("the queue writer stopped".into())
}

impl Drop for EmbeddedQueue {
    /// Closes the channel and waits for the writer to finish the group in hand, so every
    /// acknowledged append is on disk and the directory is free to open again.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

struct Writer {
    db: Database,
    events: Keyspace,
    next: u64,
    written: watch::Sender<u64>,
    healthy: Arc<AtomicBool>,
}

impl Writer {
    /// Runs until every sender is gone, i.e. the gateway has stopped serving.
    fn run(mut self, mut receiver: mpsc::Receiver<Append>) {
        let mut group = Vec::new();
        while let Some(first) = receiver.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(append) => group.push(append),
                    Err(_) => break,
                }
            }
            let result = self.write(&group);
            if let Err(error) = &result {
                tracing::error!(%error, "writing to the embedded queue failed");
                self.healthy.store(false, Ordering::Relaxed);
            }
            for append in group.drain(..) {
                let _ = append.done.send(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| QueueError::Unavailable(e.to_string())),
                );
            }
        }
    }

    fn write(&mut self, group: &[Append]) -> Result<(), fjall::Error> {
        let mut batch = self.db.batch();
        let mut next = self.next;
        for append in group {
            for message in &append.messages {
                batch.insert(&self.events, next.to_be_bytes(), message.payload.as_slice());
                next += 1;
            }
        }
        batch.commit()?;
        // The sequence numbers are taken once committed: a later group must not reuse them
        // even if the sync below fails.
        self.next = next;
        self.db.persist(PersistMode::SyncData)?;
        self.written.send_replace(next);
        Ok(())
    }
}

impl std::fmt::Debug for EmbeddedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSource")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Source for EmbeddedSource {
    /// Messages written and not yet consumed.
    fn lag(&self) -> u64 {
        self.written.borrow().saturating_sub(self.cursor)
    }

    async fn next_batch(&mut self, max: usize) -> Result<Batch, SourceError> {
        let cursor = self.cursor;
        if *self.written.borrow_and_update() <= cursor {
            // Wait for the writer; `changed` fails only when the writer is gone.
            if self.written.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        let events = self.events.clone();
        let written = *self.written.borrow();
        let (messages, next_position) = tokio::task::spawn_blocking(move || {
            let mut messages = Vec::new();
            let mut next = cursor;
            for guard in events
                .range(cursor.to_be_bytes()..written.to_be_bytes())
                .take(max)
            {
                let (key, value) = guard.into_inner()?;
                next = seq_of(&key) + 1;
                messages.push(value.to_vec());
            }
            Ok::<_, fjall::Error>((messages, next))
        })
        .await
        .map_err(|e| SourceError(e.to_string()))?
        .map_err(|e| SourceError(e.to_string()))?;
        Ok(Batch {
            messages,
            lag: written.saturating_sub(next_position),
            next_position,
        })
    }

    async fn dead_letter(&mut self, message: &[u8], reason: &str) -> Result<(), SourceError> {
        let (meta, key) = (
            self.meta.clone(),
            format!("dead-letter/{}", uuid::Uuid::now_v7()),
        );
        let mut record = reason.as_bytes().to_vec();
        record.push(b'\n');
        record.extend_from_slice(message);
        tokio::task::spawn_blocking(move || meta.insert(key, record))
            .await
            .map_err(|e| SourceError(e.to_string()))?
            .map_err(|e| SourceError(e.to_string()))
    }

    async fn commit(&mut self, batch: &Batch) -> Result<(), SourceError> {
        let (db, events, meta) = (self.db.clone(), self.events.clone(), self.meta.clone());
        let (from, to) = (self.cursor, batch.next_position);
        tokio::task::spawn_blocking(move || {
            let mut write = db.batch();
            for seq in from..to {
                write.remove(&events, seq.to_be_bytes());
            }
            write.insert(&meta, CURSOR_KEY, to.to_be_bytes());
            write.commit()
        })
        .await
        .map_err(|e| SourceError(e.to_string()))?
        .map_err(|e| SourceError(e.to_string()))?;
        self.cursor = to;
        consumer::metrics::report_lag(self.lag());
        Ok(())
    }
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
                Err(QueueError::Full) => full += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(ok > 0 && full > 0, "ok {ok}, full {full}");
    }
}
