//! One client connection's life: what it is doing, and when it has taken too long at it.
//!
//! hyper gives a server no idle timeout, and its header timeout also runs while a keep-alive
//! connection waits between requests, so the two could not differ. Here the socket itself is
//! watched: [`Watched`] notes when bytes move, the service notes when requests start and end,
//! and [`drive`] closes a connection whose request head is not in after the header timeout,
//! which sits idle past the idle timeout, or whose answer its client has stopped reading.
//! Hyper's own answers to unparsable requests (400, 414, 431) carry no body; [`Watched`] swaps
//! them for problem+json answers on their way out.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The timeouts a connection is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// What a connection has been doing, written by its socket and its service.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    /// Milliseconds since `started` (+1; 0 = never) of the first byte of a request head not
    /// yet handed to the service.
    head_started: AtomicU64,
    /// Milliseconds since `started` of the last byte read or written.
    last_moved: AtomicU64,
    /// Requests in the service now.
    in_flight: AtomicU32,
    /// Requests handed to the service so far.
    requests: AtomicU64,
    /// Writes that moved bytes, and how many there had been when the pending head began: an
    /// answer written since then is a response in progress, never one of hyper's own.
    writes: AtomicU64,
    writes_at_head: AtomicU64,
    /// The client spoke HTTP/2: its frames (PING, SETTINGS, WINDOW_UPDATE) arrive between
    /// requests and are not the start of a request head.
    h2: AtomicBool,
}

/// What [`drive`] should do about a connection now.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Look again at this instant.
    CheckAt(Instant),
    /// It has run out of time: close it.
    Expired,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            head_started: AtomicU64::new(0),
            last_moved: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            writes_at_head: AtomicU64::new(0),
            h2: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.started + Duration::from_millis(ms)
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now_ms();
        self.last_moved.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && !self.h2.load(Ordering::Relaxed)
            && self
                .head_started
                .compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.writes_at_head
                .store(self.writes.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_moved.store(self.now_ms(), Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// With no request in the service, when bytes last moved (milliseconds since the
    /// connection began); `None` while a request is being served.
    fn quiet_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::Relaxed) == 0)
            .then(|| self.last_moved.load(Ordering::Relaxed))
    }

    /// Whether a write now can only be hyper answering a head it could not parse: an HTTP/1
    /// head is pending, no request reached the service, and nothing was written since.
    fn answering_unparsable_head(&self) -> bool {
        !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) != 0
            && self.writes.load(Ordering::Relaxed) == self.writes_at_head.load(Ordering::Relaxed)
    }

    /// A request reached the service; the guard marks its end when dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn verdict(&self, timeouts: Timeouts, now: Instant) -> Verdict {
        let deadline = if self.in_flight.load(Ordering::Relaxed) > 0 {
            // A handler bounds its own body read and store calls.
            return Verdict::CheckAt(now + timeouts.header);
        } else {
            match self.head_started.load(Ordering::Relaxed) {
                // A fresh connection owes its first request head from the start.
                0 if self.requests.load(Ordering::Relaxed) == 0 => self.started + timeouts.header,
                // Between requests, or an answer its client is slow to take.
                0 => self.at(self.last_moved.load(Ordering::Relaxed)) + timeouts.idle,
                since => self.at(since - 1) + timeouts.header,
            }
        };
        if deadline <= now {
            Verdict::Expired
        } else {
            Verdict::CheckAt(deadline)
        }
    }
}

/// Marks a request's end in its connection's [`Activity`] when dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_moved.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connections being served, so that at the connection limit the one quiet the longest
/// (a socket that sent nothing, or an idle keep-alive) makes room for a new client instead of
/// the new client waiting out its timeout.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, (Arc<Activity>, CancellationToken)>>,
    next: AtomicU64,
}

impl Connections {
    /// Registers a connection; its token is cancelled if it is chosen to make room.
    pub(crate) fn add(&self, activity: Arc<Activity>) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evict = CancellationToken::new();
        self.lock().insert(id, (activity, evict.clone()));
        (id, evict)
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the connection with no request in flight whose bytes moved longest ago; false
    /// when every connection is serving a request.
    pub(crate) fn shed_quietest(&self) -> bool {
        let open = self.lock();
        let quietest = open
            .iter()
            .filter(|(_, (_, evict))| !evict.is_cancelled())
            .filter_map(|(id, (activity, _))| {
                let since = activity.quiet_since()?;
                Some((activity.started + Duration::from_millis(since), *id))
            })
            .min();
        match quietest.and_then(|(_, id)| open.get(&id)) {
            Some((_, evict)) => {
                evict.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Arc<Activity>, CancellationToken)>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs `connection` until it ends, runs out of time, or shutdown: on `stop` it finishes the
/// request in flight (`graceful` asks it to; idle connections close at once), on `abort` it is
/// dropped, and on `evict` (chosen to make room at the connection limit) it is closed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive<C: std::future::Future>(
    connection: C,
    graceful: impl Fn(Pin<&mut C>),
    activity: Arc<Activity>,
    timeouts: Timeouts,
    stop: CancellationToken,
    abort: CancellationToken,
    evict: CancellationToken,
) -> Option<C::Output> {
    tokio::pin!(connection);
    let mut check = activity.started + timeouts.header;
    let mut stopping = false;
    loop {
        tokio::select! {
            output = connection.as_mut() => return Some(output),
            () = tokio::time::sleep_until(check) => {
                match activity.verdict(timeouts, Instant::now()) {
                    Verdict::CheckAt(at) => check = at,
                    Verdict::Expired => {
                        crate::metrics::report_connection_timeout();
                        return None;
                    }
                }
            }
            () = stop.cancelled(), if !stopping => {
                // hyper closes an idle connection at once (the loop polls it again right
                // away) and lets one with a request in flight finish it.
                stopping = true;
                graceful(connection.as_mut());
            }
            () = abort.cancelled() => return None,
            () = evict.cancelled() => {
                crate::metrics::report_connection_shed();
                return None;
            }
        }
    }
}

/// A socket that tells its [`Activity`] when bytes move, and rewrites hyper's bodiless error
/// answers as problem+json.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    max_header_bytes: u32,
    /// A replacement answer being written, and how much of it is out.
    replacing: Option<(Vec<u8>, usize)>,
    /// After a replaced answer the connection is closing; anything more is not sent.
    swallowing: bool,
    /// Whether any byte was read yet (the first tell HTTP/2 from HTTP/1).
    read_any: bool,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>, max_header_bytes: u32) -> Watched<S> {
        Watched {
            inner,
            activity,
            max_header_bytes,
            replacing: None,
            swallowing: false,
            read_any: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes the replacement answer in hand; Ready once all of it is out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacing {
            if *written == bytes.len() {
                self.replacing = None;
                self.swallowing = true;
                break;
            }
            let n =
                std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.activity.wrote();
        }
        Poll::Ready(Ok(()))
    }

    /// Starts replacing `head` if it is one of hyper's own error answers.
    fn intercept(&mut self, head: &[u8]) -> bool {
        if !self.activity.answering_unparsable_head() {
            return false;
        }
        match hyper_error_status(head) {
            Some(status) => {
                self.replacing = Some((problem_answer(status, self.max_header_bytes), 0));
                true
            }
            None => false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let read = &buf.filled()[before..];
            if !this.read_any && !read.is_empty() {
                this.read_any = true;
                if read.starts_with(b"PRI * HTTP/2") {
                    this.activity.h2.store(true, Ordering::Relaxed);
                }
            }
            this.activity.read(read.len());
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.swallowing {
            return Poll::Ready(Ok(buf.len()));
        }
        if this.replacing.is_some() || this.intercept(buf) {
            std::task::ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                this.activity.wrote();
            }
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total = bufs.iter().map(|b| b.len()).sum();
        if this.swallowing {
            return Poll::Ready(Ok(total));
        }
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if this.replacing.is_some() || this.intercept(first) {
            std::task::ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(total));
        }
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                this.activity.wrote();
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The status of an answer hyper wrote by itself for a request it could not parse: 400, 414 or
/// 431 with no `content-type` (every answer of ours has one).
fn hyper_error_status(head: &[u8]) -> Option<u16> {
    let status = match head.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => 400,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => 414,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => 431,
        _ => return None,
    };
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(head.len());
    let typed = head[..end]
        .windows(15)
        .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-type:"));
    (!typed).then_some(status)
}

/// A complete problem+json answer for one of hyper's parse errors; the connection then closes.
fn problem_answer(status: u16, max_header_bytes: u32) -> Vec<u8> {
    let (reason, detail) = match status {
        414 => (
            "URI Too Long",
            "the request target is longer than this server accepts".to_owned(),
        ),
        431 => (
            "Request Header Fields Too Large",
            format!("the request line and headers are larger than {max_header_bytes} bytes"),
        ),
        _ => (
            "Bad Request",
            "the request is not well-formed HTTP".to_owned(),
        ),
    };
    let body = serde_json::json!({"status": status, "title": reason, "detail": detail}).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_bodiless_errors_are_replaced() {
        assert_eq!(
            hyper_error_status(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n"
            ),
            Some(431)
        );
        assert_eq!(
            hyper_error_status(
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n\r\n{}"
            ),
            None
        );
        assert_eq!(hyper_error_status(b"HTTP/1.1 201 Created\r\n\r\n"), None);
        assert_eq!(hyper_error_status(b"{\"HTTP/1.1 400 \"}"), None);
        let answer = String::from_utf8(problem_answer(414, 16384)).expect("text");
        assert!(answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(answer.contains("content-type: application/problem+json"));
        assert!(answer.ends_with('}'));
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_own_deadline() {
        let timeouts = Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let activity = Activity::new();
        let start = Instant::now();
        // A connection that sends nothing owes its head from the start.
        assert_eq!(
            activity.verdict(timeouts, start),
            Verdict::CheckAt(start + timeouts.header)
        );
        assert_eq!(
            activity.verdict(timeouts, start + Duration::from_secs(11)),
            Verdict::Expired
        );
        // A request served; the connection then idles for up to a minute.
        let request = activity.request();
        assert!(matches!(
            activity.verdict(timeouts, start + Duration::from_secs(100)),
            Verdict::CheckAt(_)
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(request);
        let done = Instant::now();
        assert_eq!(
            activity.verdict(timeouts, done + Duration::from_secs(30)),
            Verdict::CheckAt(done + timeouts.idle)
        );
        // Bytes of a next head start the header clock again.
        tokio::time::advance(Duration::from_secs(5)).await;
        activity.read(3);
        let head = Instant::now();
        assert_eq!(
            activity.verdict(timeouts, head + Duration::from_secs(11)),
            Verdict::Expired
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_fresh_unparsable_head_is_answered_by_hyper() {
        let activity = Activity::new();
        activity.read(10);
        assert!(activity.answering_unparsable_head());
        activity.wrote();
        assert!(
            !activity.answering_unparsable_head(),
            "a response is being written"
        );
        // A request reached the service: its answer is ours, whatever it holds.
        let request = activity.request();
        assert!(!activity.answering_unparsable_head());
        drop(request);
        activity.read(5);
        assert!(activity.answering_unparsable_head());
    }

    #[tokio::test(start_paused = true)]
    async fn http2_frames_between_requests_are_not_request_heads() {
        let timeouts = Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let activity = Activity::new();
        activity.h2.store(true, Ordering::Relaxed);
        drop(activity.request());
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.read(17);
        let pinged = Instant::now();
        assert!(!activity.answering_unparsable_head());
        assert_eq!(
            activity.verdict(timeouts, pinged + Duration::from_secs(30)),
            Verdict::CheckAt(pinged + timeouts.idle)
        );
    }
}
