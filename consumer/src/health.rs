//! The consumer's health as others see it: whether the batch in hand keeps failing, and for
//! how long. Readiness (`/readyz`) and the failing-batch gauge read it, so a consumer stuck
//! behind a store outage is visible instead of quietly idle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shared between the consume loop (which writes) and readiness checks (which read).
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds after `started` when the batch in hand first failed, plus one; 0 when the
    /// last attempt succeeded.
    failing_since: AtomicU64,
    /// How long a batch may keep failing before the consumer reports itself not ready.
    stuck_after: Duration,
}

impl Health {
    /// A healthy consumer that counts as stuck once one batch has failed for `stuck_after`.
    pub fn new(stuck_after: Duration) -> Health {
        Health {
            started: Instant::now(),
            failing_since: AtomicU64::new(0),
            stuck_after,
        }
    }

    /// The batch in hand failed; the first failure starts the clock.
    pub(crate) fn batch_failed(&self) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let _ = self
            .failing_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        crate::metrics::report_failing_batch(self.failing_for());
    }

    /// A batch was stored.
    pub(crate) fn batch_stored(&self) {
        if self.failing_since.swap(0, Ordering::Relaxed) != 0 {
            crate::metrics::report_failing_batch(Duration::ZERO);
        }
    }

    /// How long the batch in hand has been failing (zero when it is not).
    pub fn failing_for(&self) -> Duration {
        match self.failing_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => self
                .started
                .elapsed()
                .saturating_sub(Duration::from_millis(since - 1)),
        }
    }

    /// Whether one batch has been failing for longer than allowed.
    pub fn is_stuck(&self) -> bool {
        self.failing_for() > self.stuck_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_only_after_failing_for_the_limit() {
        let health = Health::new(Duration::from_millis(30));
        assert!(!health.is_stuck());
        health.batch_failed();
        assert!(!health.is_stuck());
        std::thread::sleep(Duration::from_millis(40));
        health.batch_failed();
        assert!(health.is_stuck(), "the clock runs from the first failure");
        health.batch_stored();
        assert!(!health.is_stuck());
        assert_eq!(health.failing_for(), Duration::ZERO);
    }
}
