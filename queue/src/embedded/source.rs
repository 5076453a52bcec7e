//! The embedded log's read side, owned by the in-process consumer: reads from its cursor, and
//! on commit deletes what it read and saves the cursor in one (unsynced) fjall batch.

use fjall::{Database, Keyspace};
use tokio::sync::watch;

use super::{seq_of, CURSOR_KEY};
use crate::{Batch, Source, SourceError};

/// The read side, owned by the in-process consumer.
pub struct EmbeddedSource {
    pub(super) db: Database,
    pub(super) events: Keyspace,
    pub(super) meta: Keyspace,
    pub(super) written: watch::Receiver<u64>,
    pub(super) cursor: u64,
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
        let enough = |written: &u64| written.saturating_sub(cursor) >= max as u64;
        // Whether more came or the time ran out, what is written by now is read.
        let _ = tokio::time::timeout(crate::BATCH_LINGER, self.written.wait_for(enough)).await;
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
        .map_err(|e| SourceError::Unavailable(e.to_string()))?
        .map_err(|e| SourceError::Unavailable(e.to_string()))?;
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
            .map_err(|e| SourceError::Unavailable(e.to_string()))?
            .map_err(|e| SourceError::Unavailable(e.to_string()))
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
        .map_err(|e| SourceError::Unavailable(e.to_string()))?
        .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        self.cursor = to;
        Ok(())
    }
}
