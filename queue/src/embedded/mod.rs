//! The embedded durable queue: an append-only log of segment files under the data directory.
//!
//! One writer thread owns appends. It takes every request waiting on its channel, frames them
//! into one buffer, writes it with one call and syncs once (`fdatasync`), and only then
//! acknowledges them all: a group commit, so the cost of the sync is shared by everyone who
//! arrived during the last one. The channel is bounded; when it is full, publishers get
//! `PublishError::Full` (a 503) at once. A new segment must leave [`RESERVE_BYTES`] of the disk
//! free, or the group is refused (a 503) and readiness fails until it can be written.
//!
//! The in-process consumer takes what was just written from memory (a tail bounded in bytes)
//! and reads the segment files only when it has fallen further behind or after a restart. Its
//! cursor is a small file written, unsynced, after each batch: losing it replays events whose
//! effects are idempotent. A segment is retired once the cursor has passed it: kept as the
//! spare the writer overwrites next (see [`log::spare_path`]), or deleted.
//!
//! This replaced an LSM keyspace (fjall) holding one key per event: an insert, a read and a
//! delete per event, memtables of tens of MiB, and background flushes of data about to be
//! deleted. A log that is only ever appended to and read in order needs none of that.

mod legacy;
mod log;
mod source;
mod writer;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use tokio::sync::{mpsc, watch};

use crate::PublishError;
pub use source::EmbeddedSource;
pub use writer::EmbeddedWriter;

/// Bytes per segment before the writer starts the next; consumed segments are retired whole.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Bytes of recent records kept in memory for the consumer, beyond which it reads the files
/// (which the page cache still holds): at 40,000 events/s of ~1.3 KiB, 40 ms, twice the batch
/// linger. A consumer behind by more reads the files anyway, so a larger tail only held memory:
/// 8 MiB put the embedded gateway's peak RSS at 102–104 MiB over 60 s at 512 connections,
/// 2 MiB at 94–95 (two runs each).
const TAIL_BYTES: usize = 2 << 20;

/// Disk space a new segment must leave free under the log's directory. The store usually
/// shares that disk, and the consumer needs room to write what it drains; a log that filled the
/// disk would stall both for good. Below this the writer refuses events (503) rather than start
/// a segment, until space is freed: a consumed segment kept as the spare is reused without
/// taking any.
const RESERVE_BYTES: u64 = 256 << 20;

/// Most bytes framed and written under one sync (a larger request goes alone): a bound on the
/// framing copy, and on how far a segment outgrows [`SEGMENT_BYTES`] into the reserve.
const GROUP_BYTES: usize = 8 << 20;

/// How long, by default, a small group waits for more requests before it is written: far
/// below a request's latency budget, long enough at a few thousand events a second for several
/// to share one sync.
pub const DEFAULT_LINGER: std::time::Duration = std::time::Duration::from_micros(500);

/// Sizes, set small by tests to exercise segment rolls and reads from disk, and the group
/// commit's linger.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) segment_bytes: u64,
    pub(crate) tail_bytes: usize,
    pub(crate) linger: std::time::Duration,
    pub(crate) reserve_bytes: u64,
    pub(crate) group_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            segment_bytes: SEGMENT_BYTES,
            tail_bytes: TAIL_BYTES,
            linger: DEFAULT_LINGER,
            reserve_bytes: RESERVE_BYTES,
            group_bytes: GROUP_BYTES,
        }
    }
}

/// State the writer and the reader share.
#[derive(Debug, Default)]
struct Shared {
    tail: Mutex<Tail>,
    /// First sequence numbers of the segments on disk, oldest first; the last is being written.
    segments: Mutex<VecDeque<u64>>,
}

/// The most recent records, in sequence from `first`, durable before they are added.
#[derive(Debug, Default)]
struct Tail {
    first: u64,
    records: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Tail {
    /// Drops the oldest record.
    fn pop(&mut self) -> Option<Vec<u8>> {
        let record = self.records.pop_front()?;
        self.first += 1;
        self.bytes -= record.len();
        Some(record)
    }
}

/// A lock that a panic elsewhere cannot make unusable: the data under it is always whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens (or creates) the log in `dir`; `capacity` bounds the requests waiting to be written,
/// and a group smaller than a handful waits `linger` for more before its write and sync.
/// Events still waiting in a queue of the earlier format at `legacy_dir` are moved into it
/// first, and that directory removed.
pub fn open(
    dir: &Path,
    legacy_dir: &Path,
    capacity: usize,
    linger: std::time::Duration,
) -> Result<(EmbeddedWriter, EmbeddedSource), PublishError> {
    let limits = Limits {
        linger,
        ..Limits::default()
    };
    open_with(dir, Some(legacy_dir), capacity, limits)
}

pub(crate) fn open_with(
    dir: &Path,
    legacy_dir: Option<&Path>,
    capacity: usize,
    limits: Limits,
) -> Result<(EmbeddedWriter, EmbeddedSource), PublishError> {
    let unavailable = |e: io::Error| PublishError::Unavailable(format!("{}: {e}", dir.display()));
    fs::create_dir_all(dir).map_err(unavailable)?;
    let lock = Arc::new(lock_dir(dir)?);
    let mut firsts = log::segments(dir).map_err(unavailable)?;
    let saved = read_cursor(dir).map_err(unavailable)?;
    let (mut active, mut next) = match firsts.last() {
        Some(&last) => log::Active::recover(dir, last).map_err(unavailable)?,
        None => {
            // Everything before the cursor was consumed and deleted: sequence numbers go on
            // from there, never back.
            let start = saved.unwrap_or(0);
            firsts.push(start);
            (log::Active::create(dir, start).map_err(unavailable)?, start)
        }
    };
    if let Some(legacy_dir) = legacy_dir {
        let mut framed = Vec::new();
        legacy::import(legacy_dir, |chunk| {
            framed.clear();
            for payload in chunk {
                log::frame(&mut framed, next, payload);
                next += 1;
            }
            active.append(&framed)
        })
        .map_err(unavailable)?;
    }
    // Segments are deleted only once the cursor passed them, but the cursor file is written
    // unsynced: a crash can leave it behind a deletion. Records before the oldest segment were
    // consumed, and none after the last written one can have been.
    let oldest = firsts.first().copied().unwrap_or(next);
    let cursor = saved.unwrap_or(oldest).clamp(oldest, next);
    let shared = Arc::new(Shared {
        tail: Mutex::new(Tail {
            first: next,
            ..Tail::default()
        }),
        segments: Mutex::new(firsts.into_iter().collect()),
    });
    let (written_tx, written_rx) = watch::channel(next);
    let (appends, receiver) = mpsc::channel(capacity);
    let health = Arc::new(AtomicU8::new(writer::HEALTHY));
    let writer = writer::Appender {
        dir: dir.to_owned(),
        active,
        next,
        limits,
        shared: shared.clone(),
        written: written_tx,
        health: health.clone(),
    };
    let writer = thread::Builder::new()
        .name("queue-writer".into())
        .spawn(move || writer.run(receiver))
        .map_err(unavailable)?;
    let cursor_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(cursor_path(dir))
        .map_err(unavailable)?;
    Ok((
        writer::EmbeddedWriter {
            appends: Some(appends),
            health,
            dir: dir.to_owned(),
            limits,
            writer: Some(writer),
            _lock: lock.clone(),
        },
        source::EmbeddedSource {
            dir: dir.to_owned(),
            shared,
            written: written_rx,
            cursor,
            cursor_file,
            reader: None,
            _lock: lock,
        },
    ))
}

/// Takes the directory for this process alone: two writers appending to the same segments
/// would interleave records under the same sequence numbers and lose acknowledged events. The
/// lock is the operating system's (`flock`), so it goes with the process however it ends.
fn lock_dir(dir: &Path) -> Result<File, PublishError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| PublishError::Unavailable(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(PublishError::Unavailable(format!(
            "{} is in use by another process (another gateway on the same --data-dir?)",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(PublishError::Unavailable(format!(
            "{}: {e}",
            path.display()
        ))),
    }
}

fn cursor_path(dir: &Path) -> PathBuf {
    dir.join("cursor")
}

/// The cursor as last written: a sequence number and its complement (a torn write cannot
/// match); `None` when missing or torn.
fn read_cursor(dir: &Path) -> io::Result<Option<u64>> {
    let mut bytes = Vec::new();
    match File::open(cursor_path(dir)) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(decode_cursor(&bytes))
}

fn encode_cursor(seq: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    bytes[8..].copy_from_slice(&(!seq).to_le_bytes());
    bytes
}

fn decode_cursor(bytes: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let check = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    (check == !seq).then_some(seq)
}

/// Writes the cursor in place; 16 bytes in one write, unsynced.
fn write_cursor(file: &File, seq: u64) -> io::Result<()> {
    file.write_all_at(&encode_cursor(seq), 0)
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

    #[test]
    fn one_process_at_a_time_owns_the_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let (queue, source) = open_with(dir.path(), None, 64, Limits::default()).expect("open");
        let refused = open_with(dir.path(), None, 64, Limits::default()).expect_err("in use");
        assert!(refused.to_string().contains("in use"), "{refused}");
        // Held while either side lives; free once both are gone.
        drop(queue);
        assert!(open_with(dir.path(), None, 64, Limits::default()).is_err());
        drop(source);
        open_with(dir.path(), None, 64, Limits::default()).expect("free again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn published_messages_survive_a_reopen_and_are_read_in_order_once() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (queue, _source) =
                open_with(dir.path(), None, 64, Limits::default()).expect("open");
            for n in 0..10 {
                queue.publish(vec![message(n)]).await.expect("publish");
            }
            queue
                .publish((10..20).map(message).collect())
                .await
                .expect("publish a group");
        }
        let (_queue, mut source) =
            open_with(dir.path(), None, 64, Limits::default()).expect("reopen");
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
        let (queue, mut source) =
            open_with(dir.path(), None, 64, Limits::default()).expect("reopen empty");
        assert_eq!(source.lag(), 0);
        queue.publish(vec![message(99)]).await.expect("publish");
        let batch = source.next_batch(10).await.expect("read");
        assert_eq!(batch.messages, vec![b"payload 99".to_vec()]);
        assert_eq!(batch.next_position, 21);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_channel_refuses_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let (queue, _source) = open_with(dir.path(), None, 1, Limits::default()).expect("open");
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

    /// Segments of a few hundred bytes and a tail of a few records: every read path is taken.
    const SMALL: Limits = Limits {
        segment_bytes: 300,
        tail_bytes: 40,
        linger: DEFAULT_LINGER,
        reserve_bytes: 0,
        group_bytes: GROUP_BYTES,
    };

    async fn read_all(source: &mut EmbeddedSource, max: usize) -> Vec<String> {
        let mut read = Vec::new();
        while source.lag() > 0 {
            let batch = source.next_batch(max).await.expect("read");
            read.extend(
                batch
                    .messages
                    .iter()
                    .map(|m| String::from_utf8_lossy(m).into_owned()),
            );
            source.commit(&batch).await.expect("commit");
        }
        read
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_far_behind_reads_the_files_across_segments_which_go_once_passed() {
        let dir = tempfile::tempdir().expect("dir");
        let (queue, mut source) = open_with(dir.path(), None, 64, SMALL).expect("open");
        for n in 0..40 {
            queue.publish(vec![message(n)]).await.expect("publish");
        }
        assert!(
            log::segments(dir.path()).expect("list").len() >= 3,
            "the writer rolled segments"
        );
        // The tail holds only the last few records: the rest come from the files, in order,
        // whatever the batch size.
        let read = read_all(&mut source, 7).await;
        let expected: Vec<String> = (0..40).map(|n| format!("payload {n}")).collect();
        assert_eq!(read, expected);
        // Only the segment being written is left, and one consumed segment kept as the spare.
        assert_eq!(log::segments(dir.path()).expect("list").len(), 1);
        assert!(log::spare_path(dir.path()).exists());
        // The next segments are written over retired ones, whose old records are never read.
        for n in 40..80 {
            queue.publish(vec![message(n)]).await.expect("publish");
        }
        let expected: Vec<String> = (40..80).map(|n| format!("payload {n}")).collect();
        assert_eq!(read_all(&mut source, 7).await, expected);
        // Publish until the writer takes the spare for a new segment, then stop there: the
        // segment being written holds one new record, then the spare's old ones.
        let mut n = 80;
        while log::spare_path(dir.path()).exists() {
            assert!(n < 120, "the writer never took the spare");
            queue.publish(vec![message(n)]).await.expect("publish");
            n += 1;
        }
        drop(source);
        drop(queue);
        // Recovery stops at the last new record, whatever follows it in the file.
        let (queue, mut source) = open_with(dir.path(), None, 64, SMALL).expect("reopen");
        assert_eq!(source.lag(), (n - 80) as u64);
        queue.publish(vec![message(n)]).await.expect("publish");
        let expected: Vec<String> = (80..=n).map(|n| format!("payload {n}")).collect();
        assert_eq!(read_all(&mut source, 7).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_without_room_for_a_new_segment_refuses_events_until_one_is_freed() {
        let dir = tempfile::tempdir().expect("dir");
        // A consumer that keeps up leaves one consumed segment behind as the spare.
        {
            let (queue, mut source) = open_with(dir.path(), None, 64, SMALL).expect("open");
            for n in 0..30 {
                queue.publish(vec![message(n)]).await.expect("publish");
            }
            read_all(&mut source, 7).await;
            assert!(log::spare_path(dir.path()).exists());
        }
        // No disk has this much room: a segment needing new space is refused, the spare is not.
        let no_room = Limits {
            reserve_bytes: u64::MAX / 2,
            ..SMALL
        };
        let (queue, mut source) = open_with(dir.path(), None, 64, no_room).expect("reopen");
        let mut accepted = Vec::new();
        let refusal = loop {
            let n = 30 + accepted.len();
            assert!(n < 200, "the writer never ran out of segments it may start");
            match queue.publish(vec![message(n)]).await {
                Ok(()) => accepted.push(format!("payload {n}")),
                Err(refusal) => break refusal,
            }
        };
        assert!(
            matches!(&refusal, PublishError::Unavailable(why) if why.contains("bytes free")),
            "{refusal}"
        );
        assert!(!log::spare_path(dir.path()).exists(), "the spare was used");
        assert!(!queue.is_ready(), "a writer refusing events is not ready");
        // Refused again, nothing written: what was acknowledged is read back whole and once.
        assert!(queue.publish(vec![message(999)]).await.is_err());
        assert!(!queue.is_ready());
        assert_eq!(read_all(&mut source, 7).await, accepted);
        // The consumer passed a whole segment, kept as the spare: ready again before any
        // request (a load balancer sends none to a gateway that is not), and it goes on there.
        assert!(log::spare_path(dir.path()).exists());
        assert!(queue.is_ready(), "readiness looks for room again");
        queue
            .publish(vec![message(1000)])
            .await
            .expect("publish into the spare");
        assert!(queue.is_ready());
        assert_eq!(read_all(&mut source, 7).await, vec!["payload 1000"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_is_bounded_in_bytes_so_segments_barely_outgrow_their_size() {
        let dir = tempfile::tempdir().expect("dir");
        // Two framed records exceed the bound: each group holds one.
        let limits = Limits {
            group_bytes: 100,
            ..SMALL
        };
        let (queue, mut source) = open_with(dir.path(), None, 256, limits).expect("open");
        let queue = Arc::new(queue);
        let payload = |n: usize| format!("{n:050}").into_bytes();
        let publishing: Vec<_> = (0..64)
            .map(|n| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let message = Message {
                        key: String::new(),
                        payload: payload(n),
                    };
                    queue.publish(vec![message]).await
                })
            })
            .collect();
        for published in publishing {
            published.await.expect("join").expect("publish");
        }
        let record = (log::HEADER + 50) as u64;
        for first in log::segments(dir.path()).expect("list") {
            let size = fs::metadata(log::segment_path(dir.path(), first))
                .expect("segment")
                .len();
            assert!(
                size < limits.segment_bytes + record,
                "segment {first} holds {size} bytes"
            );
        }
        let mut read = read_all(&mut source, 100).await;
        read.sort();
        let mut expected: Vec<String> = (0..64)
            .map(|n| String::from_utf8_lossy(&payload(n)).into_owned())
            .collect();
        expected.sort();
        assert_eq!(read, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_resumes_at_the_cursor_in_the_middle_of_a_segment() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (queue, mut source) = open_with(dir.path(), None, 64, SMALL).expect("open");
            for n in 0..25 {
                queue.publish(vec![message(n)]).await.expect("publish");
            }
            let batch = source.next_batch(11).await.expect("read");
            source.commit(&batch).await.expect("commit");
            // Read but not committed: these come again after the restart.
            source.next_batch(5).await.expect("read");
        }
        let (queue, mut source) = open_with(dir.path(), None, 64, SMALL).expect("reopen");
        assert_eq!(source.lag(), 14);
        queue.publish(vec![message(25)]).await.expect("publish");
        let read = read_all(&mut source, 4).await;
        let expected: Vec<String> = (11..26).map(|n| format!("payload {n}")).collect();
        assert_eq!(read, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_taken_from_memory_and_not_committed_is_read_again() {
        let dir = tempfile::tempdir().expect("dir");
        let (queue, mut source) = open_with(dir.path(), None, 64, Limits::default()).expect("open");
        queue
            .publish((0..3).map(message).collect())
            .await
            .expect("publish");
        let first = source.next_batch(10).await.expect("read");
        assert_eq!(first.messages.len(), 3);
        // The store refused the batch: the consumer asks again from the same cursor.
        let again = source.next_batch(10).await.expect("read again");
        assert_eq!(again.messages, first.messages);
        assert_eq!(again.next_position, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_waiting_in_the_earlier_format_are_consumed_first() {
        let dir = tempfile::tempdir().expect("dir");
        let old = dir.path().join("queue");
        {
            let db = fjall::Database::builder(&old).open().expect("old");
            let events = db
                .keyspace("events", fjall::KeyspaceCreateOptions::default)
                .expect("events");
            for seq in 0u64..3 {
                events
                    .insert(seq.to_be_bytes(), format!("old {seq}"))
                    .expect("insert");
            }
            db.persist(fjall::PersistMode::SyncAll).expect("persist");
        }
        let (queue, mut source) = open(&dir.path().join("log"), &old, 64, DEFAULT_LINGER)
            .expect("open over the old queue");
        assert!(!old.exists());
        queue.publish(vec![message(0)]).await.expect("publish");
        assert_eq!(
            read_all(&mut source, 10).await,
            vec!["old 0", "old 1", "old 2", "payload 0"]
        );
    }
}
