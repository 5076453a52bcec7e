//! The embedded log's write side: one thread appends every waiting request with one write and
//! one sync (group commit), then acknowledges them all.

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;

use tokio::sync::{mpsc, oneshot, watch};

use super::{lock, log, Limits, Shared};
use crate::{Message, PublishError};

/// A group smaller than this waits the linger ([`Limits::linger`]) for more before it is
/// written.
const SMALL_GROUP: usize = 8;

/// Most requests written under one sync.
const MAX_GROUP: usize = 4096;
/// Capacity of the framing buffer kept between groups.
const MAX_KEPT_BUFFER: usize = 1 << 20;

type Ack = oneshot::Sender<Result<(), PublishError>>;

/// The writer's state after its last group, for readiness.
pub(super) const HEALTHY: u8 = 0;
/// The last group was refused for want of disk space ([`room_for_segment`]).
const NO_ROOM: u8 = 1;
/// The last group failed otherwise.
const FAILED: u8 = 2;

pub(super) struct Append {
    messages: Vec<Message>,
    done: Ack,
}

impl Append {
    /// Bytes it takes in the log.
    fn bytes(&self) -> usize {
        self.messages
            .iter()
            .map(|m| log::HEADER + m.payload.len())
            .sum()
    }
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
pub struct EmbeddedWriter {
    /// `None` only while dropping, so the writer sees its channel close.
    pub(super) appends: Option<mpsc::Sender<Append>>,
    /// [`HEALTHY`], [`NO_ROOM`] or [`FAILED`].
    pub(super) health: Arc<AtomicU8>,
    pub(super) dir: PathBuf,
    pub(super) limits: Limits,
    pub(super) writer: Option<thread::JoinHandle<()>>,
    /// The directory's lock, released when both sides are gone.
    pub(super) _lock: Arc<std::fs::File>,
}

impl EmbeddedWriter {
    /// Makes `messages` durable, all or none.
    pub async fn publish(&self, messages: Vec<Message>) -> Result<(), PublishError> {
        let (done, acked) = oneshot::channel();
        let appends = self.appends.as_ref().ok_or_else(stopped)?;
        appends
            .try_send(Append { messages, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => PublishError::Full,
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })?;
        acked.await.map_err(|_| stopped())?
    }

    /// Whether the writer can take appends, for readiness. Refused for want of disk space, it
    /// looks again: a gateway taken out of its load balancer gets no request that could show
    /// the space is back.
    pub fn is_ready(&self) -> bool {
        let writes = match self.health.load(Ordering::Relaxed) {
            HEALTHY => true,
            NO_ROOM => room_for_segment(&self.dir, &self.limits).is_ok(),
            _ => false,
        };
        writes && self.appends.as_ref().is_some_and(|a| !a.is_closed())
    }
}

fn stopped() -> PublishError {
    PublishError::Unavailable("the queue writer stopped".into())
}

impl Drop for EmbeddedWriter {
    /// Closes the channel and waits for the writer to finish the group in hand, so every
    /// acknowledged append is on disk and the directory is free to open again.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The thread that owns appends.
pub(super) struct Appender {
    pub(super) dir: PathBuf,
    pub(super) active: log::Active,
    pub(super) next: u64,
    pub(super) limits: Limits,
    pub(super) shared: Arc<Shared>,
    pub(super) written: watch::Sender<u64>,
    pub(super) health: Arc<AtomicU8>,
}

impl Appender {
    /// Runs until every sender is gone, i.e. the gateway has stopped serving.
    pub(super) fn run(mut self, mut receiver: mpsc::Receiver<Append>) {
        let mut group = Group::default();
        let mut framed = Vec::new();
        loop {
            let Some(first) = group.next.take().or_else(|| receiver.blocking_recv()) else {
                break;
            };
            group.push(first);
            group.drain(&mut receiver, self.limits.group_bytes);
            if group.appends.len() < SMALL_GROUP
                && group.next.is_none()
                && !self.limits.linger.is_zero()
            {
                // Few waiting: the rate is low, and a sync for each handful of events is most
                // of what an event costs. A moment's wait lets more share the sync.
                std::thread::sleep(self.limits.linger);
                group.drain(&mut receiver, self.limits.group_bytes);
            }
            let result = self.write(&mut group.appends, &mut framed);
            // Readiness follows the last write: a fault that passes (a disk freed) must not
            // keep the gateway out of its load balancer. Changes are logged, not every group.
            let health = match &result {
                Ok(()) => HEALTHY,
                Err(e) if e.kind() == io::ErrorKind::StorageFull => NO_ROOM,
                Err(_) => FAILED,
            };
            if self.health.swap(health, Ordering::Relaxed) != health {
                match &result {
                    Err(error) => tracing::error!(%error, "writing to the embedded queue failed"),
                    Ok(()) => tracing::info!("writing to the embedded queue works again"),
                }
            }
            for append in group.written() {
                let _ = append.done.send(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| PublishError::Unavailable(e.to_string())),
                );
            }
        }
    }

    /// Appends every message of `group` under one sync, then hands them to the reader's tail.
    fn write(&mut self, group: &mut [Append], framed: &mut Vec<u8>) -> io::Result<()> {
        if self.active.offset >= self.limits.segment_bytes {
            room_for_segment(&self.dir, &self.limits)?;
            self.active = log::Active::create(&self.dir, self.next)?;
            lock(&self.shared.segments).push_back(self.next);
        }
        framed.clear();
        let mut next = self.next;
        for append in group.iter() {
            for message in &append.messages {
                log::frame(framed, next, &message.payload);
                next += 1;
            }
        }
        self.active.append(framed)?;
        // A framing buffer grown by one huge group is not kept.
        if framed.capacity() > 4 * MAX_KEPT_BUFFER {
            *framed = Vec::with_capacity(MAX_KEPT_BUFFER);
        }
        self.next = next;
        {
            let mut tail = lock(&self.shared.tail);
            for append in group.iter_mut() {
                for message in append.messages.drain(..) {
                    tail.bytes += message.payload.len();
                    tail.records.push_back(message.payload);
                }
            }
            while tail.bytes > self.limits.tail_bytes && tail.pop().is_some() {}
        }
        self.written.send_replace(next);
        Ok(())
    }
}

/// Fails unless the next segment can be started: the spare is there to reuse, or a new one
/// would leave [`Limits::reserve_bytes`] free on the disk.
fn room_for_segment(dir: &Path, limits: &Limits) -> io::Result<()> {
    if log::spare_path(dir).exists() {
        return Ok(());
    }
    let stat = rustix::fs::statvfs(dir)?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let needed = limits.segment_bytes.saturating_add(limits.reserve_bytes);
    if free < needed {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{free} bytes free under {}: a new segment must leave {} for the store; \
                 events are refused until space is freed or the consumer frees a segment",
                dir.display(),
                limits.reserve_bytes
            ),
        ));
    }
    Ok(())
}

/// The appends written under the next sync, bounded in count and in bytes: the framing copy
/// and each write stay bounded whatever the requests' sizes, and a segment outgrows its size
/// by at most one group (so the disk reserve holds).
#[derive(Default)]
struct Group {
    appends: Vec<Append>,
    bytes: usize,
    /// Taken from the channel but over the bound: it starts the next group.
    next: Option<Append>,
}

impl Group {
    fn push(&mut self, append: Append) {
        self.bytes += append.bytes();
        self.appends.push(append);
    }

    /// Empties the group once written, handing over its appends to be acknowledged.
    fn written(&mut self) -> std::vec::Drain<'_, Append> {
        self.bytes = 0;
        self.appends.drain(..)
    }

    /// Moves every append already waiting into the group, up to [`MAX_GROUP`] of them and
    /// `max_bytes` (a single append larger than that goes alone).
    fn drain(&mut self, receiver: &mut mpsc::Receiver<Append>, max_bytes: usize) {
        while self.next.is_none() && self.appends.len() < MAX_GROUP {
            let Ok(append) = receiver.try_recv() else {
                break;
            };
            if self.bytes + append.bytes() > max_bytes {
                self.next = Some(append);
            } else {
                self.push(append);
            }
        }
    }
}
