//! The embedded log's read side, owned by the in-process consumer: takes what was just
//! written from memory, reads the segment files only when it is further behind, and on commit
//! saves its cursor and retires the segments it has passed (one is kept for reuse).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use super::log::{self, SegmentReader};
use super::{lock, write_cursor, Shared};
use crate::{Batch, Source, SourceError};

/// The read side, owned by the in-process consumer.
pub struct EmbeddedSource {
    pub(super) dir: PathBuf,
    pub(super) shared: Arc<Shared>,
    pub(super) written: watch::Receiver<u64>,
    pub(super) cursor: u64,
    pub(super) cursor_file: File,
    /// Where the last read from the files stopped, to go on from there.
    pub(super) reader: Option<SegmentReader>,
    /// The directory's lock, released when both sides are gone.
    pub(super) _lock: Arc<File>,
}

impl std::fmt::Debug for EmbeddedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSource")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl EmbeddedSource {
    /// Up to `max` records from the cursor, from memory when the tail reaches back that far.
    fn take_from_tail(&self, max: usize) -> Option<Vec<Vec<u8>>> {
        let mut tail = lock(&self.shared.tail);
        // What is before the cursor was consumed (or read once and failed to apply, in which
        // case it is read again from the files).
        while tail.first < self.cursor && tail.pop().is_some() {}
        if tail.first != self.cursor || tail.records.is_empty() {
            return None;
        }
        let take = max.min(tail.records.len());
        Some((0..take).filter_map(|_| tail.pop()).collect())
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
        let written = *self.written.borrow();
        let messages = match self.take_from_tail(max) {
            Some(messages) => messages,
            None => {
                let dir = self.dir.clone();
                let segments: Vec<u64> = lock(&self.shared.segments).iter().copied().collect();
                let reader = self.reader.take();
                let (messages, reader) = tokio::task::spawn_blocking(move || {
                    read_files(&dir, &segments, reader, cursor, max, written)
                })
                .await
                .map_err(|e| SourceError::Unavailable(e.to_string()))?
                .map_err(|e| SourceError::Unavailable(e.to_string()))?;
                self.reader = reader;
                messages
            }
        };
        let next_position = cursor + messages.len() as u64;
        Ok(Batch {
            messages,
            lag: written.saturating_sub(next_position),
            next_position,
        })
    }

    async fn dead_letter(&mut self, message: &[u8], reason: &str) -> Result<(), SourceError> {
        let path = self.dir.join("dead-letters");
        let mut record = reason.as_bytes().to_vec();
        record.push(b'\n');
        record.extend_from_slice(message);
        let mut framed = Vec::new();
        // The frame wants a sequence number; the cursor (where the letter's batch began) is
        // the nearest the Source interface tells.
        log::frame(&mut framed, self.cursor, &record);
        tokio::task::spawn_blocking(move || {
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            file.write_all(&framed)?;
            file.sync_data()
        })
        .await
        .map_err(|e| SourceError::Unavailable(e.to_string()))?
        .map_err(|e| SourceError::Unavailable(e.to_string()))
    }

    async fn commit(&mut self, batch: &Batch) -> Result<(), SourceError> {
        let to = batch.next_position;
        write_cursor(&self.cursor_file, to).map_err(|e| SourceError::Unavailable(e.to_string()))?;
        self.cursor = to;
        // Segments wholly before the cursor go; the one being written always stays.
        let mut passed = Vec::new();
        {
            let mut segments = lock(&self.shared.segments);
            while segments.len() > 1 && segments.get(1).is_some_and(|&next| next <= to) {
                passed.extend(segments.pop_front());
            }
        }
        if !passed.is_empty() {
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || {
                for first in passed {
                    if let Err(error) = log::retire(&dir, first) {
                        tracing::warn!(%error, segment = first, "could not retire a consumed segment");
                    }
                }
            })
            .await
            .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    /// The cursor is written on every commit; syncing it here means a clean stop replays
    /// nothing.
    fn commit_now(&self) {
        if let Err(error) = self.cursor_file.sync_data() {
            tracing::warn!(%error, "could not sync the consumer cursor");
        }
    }
}

/// Up to `max` records from `cursor` (below `written`) out of the segment files, going on from
/// `reader` when it stopped at `cursor`. Returns them with the reader, positioned after them.
fn read_files(
    dir: &Path,
    segments: &[u64],
    reader: Option<SegmentReader>,
    cursor: u64,
    max: usize,
    written: u64,
) -> io::Result<(Vec<Vec<u8>>, Option<SegmentReader>)> {
    let Some(&first) = segments.iter().rev().find(|&&first| first <= cursor) else {
        return Err(io::Error::other(format!(
            "no segment holds record {cursor}"
        )));
    };
    let mut reader = match reader {
        Some(mut reader) if reader.first == first && reader.seq <= cursor => {
            reader.reread()?;
            reader
        }
        _ => SegmentReader::open(dir, first)?,
    };
    if !reader.skip_to(cursor)? {
        return Err(io::Error::other(format!(
            "segment {first} ends before record {cursor}"
        )));
    }
    let mut messages = Vec::new();
    while messages.len() < max && reader.seq < written {
        match reader.next_record()? {
            Some(record) => messages.push(record),
            None if segments.contains(&reader.seq) => {
                reader = SegmentReader::open(dir, reader.seq)?;
            }
            None => {
                return Err(io::Error::other(format!(
                    "record {} is missing from segment {}",
                    reader.seq, reader.first
                )))
            }
        }
    }
    Ok((messages, Some(reader)))
}
