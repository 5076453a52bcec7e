//! The embedded queue's earlier format, an fjall keyspace of one key per event (under
//! `<data-dir>/queue`): events it still holds when a newer gateway starts are moved into the
//! log, then the directory is removed.
//!
//! A crash part way through moves some events twice; the consumer stores an event id once, so
//! a second copy changes nothing.

use std::io;
use std::path::Path;

use fjall::{Database, KeyspaceCreateOptions};

/// Events moved per write.
const CHUNK: usize = 4096;

/// Calls `append` with the unconsumed events of the old queue at `dir`, in order and in chunks,
/// then removes `dir`. Returns how many there were; 0 when there is no old queue.
pub(super) fn import(
    dir: &Path,
    mut append: impl FnMut(&[Vec<u8>]) -> io::Result<()>,
) -> io::Result<u64> {
    if !dir.exists() {
        return Ok(0);
    }
    let moved = {
        let db = Database::builder(dir).open().map_err(io::Error::other)?;
        let events = db
            .keyspace("events", KeyspaceCreateOptions::default)
            .map_err(io::Error::other)?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(io::Error::other)?;
        let cursor = meta
            .get(b"consumer-cursor")
            .map_err(io::Error::other)?
            .and_then(|value| <[u8; 8]>::try_from(value.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut moved = 0u64;
        for guard in events.range(cursor.to_be_bytes()..) {
            let (_, value) = guard.into_inner().map_err(io::Error::other)?;
            chunk.push(value.to_vec());
            if chunk.len() == CHUNK {
                append(&chunk)?;
                moved += chunk.len() as u64;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            append(&chunk)?;
            moved += chunk.len() as u64;
        }
        moved
    };
    std::fs::remove_dir_all(dir)?;
    if moved > 0 {
        tracing::info!(events = moved, from = %dir.display(), "moved waiting events from the earlier queue format");
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconsumed_events_of_the_old_format_are_moved_in_order_and_the_old_queue_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let old = dir.path().join("queue");
        {
            let db = Database::builder(&old).open().expect("old queue");
            let events = db
                .keyspace("events", KeyspaceCreateOptions::default)
                .expect("events");
            let meta = db
                .keyspace("meta", KeyspaceCreateOptions::default)
                .expect("meta");
            for seq in 0u64..10 {
                events
                    .insert(seq.to_be_bytes(), format!("event {seq}"))
                    .expect("insert");
            }
            // The first four were consumed.
            meta.insert(b"consumer-cursor", 4u64.to_be_bytes())
                .expect("cursor");
            db.persist(fjall::PersistMode::SyncAll).expect("persist");
        }
        let mut moved = Vec::new();
        let count = import(&old, |chunk| {
            moved.extend(chunk.iter().cloned());
            Ok(())
        })
        .expect("import");
        assert_eq!(count, 6);
        let expected: Vec<Vec<u8>> = (4..10).map(|n| format!("event {n}").into_bytes()).collect();
        assert_eq!(moved, expected);
        assert!(!old.exists(), "the old queue is removed once moved");
        assert_eq!(import(&old, |_| Ok(())).expect("again"), 0);
    }
}
