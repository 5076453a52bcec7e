//! Log lines for failures every request may hit at once (the queue refusing events, the store
//! out of reach): one line a second at most per kind, with how many were left out. A line per
//! request during an outage at tens of thousands of requests a second would flood the logs and
//! the disk they are written to; the metrics count every one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long after a line the next of its kind may come.
const EVERY_MS: u64 = 1000;

/// One kind of line.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// When the next line may come, in milliseconds since the Unix epoch.
    next_ms: AtomicU64,
    /// Lines left out since the last one written.
    left_out: AtomicU64,
}

impl Throttle {
    pub(crate) const fn new() -> Throttle {
        Throttle {
            next_ms: AtomicU64::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last)` when a line may be written now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.allow_at(now)
    }

    fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        // Of the requests that find the time come, one wins the exchange and writes the line.
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + EVERY_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.left_out.swap(0, Ordering::Relaxed));
        }
        self.left_out.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_and_the_count_of_those_left_out() {
        let throttle = Throttle::new();
        assert_eq!(throttle.allow_at(10_000), Some(0));
        for at in 10_001..10_501 {
            assert_eq!(throttle.allow_at(at), None);
        }
        assert_eq!(throttle.allow_at(10_999), None);
        assert_eq!(throttle.allow_at(11_000), Some(501));
        assert_eq!(throttle.allow_at(11_001), None);
        // A quiet spell: the next line comes at once, counting the one left out before it.
        assert_eq!(throttle.allow_at(60_000), Some(1));
    }

    #[test]
    fn many_threads_at_once_write_one_line() {
        let throttle = std::sync::Arc::new(Throttle::new());
        let written: u64 = (0..8)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| throttle.allow_at(5_000).is_some())
                        .count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .sum();
        assert_eq!(written, 1);
        assert_eq!(throttle.allow_at(6_000), Some(7_999));
    }
}
