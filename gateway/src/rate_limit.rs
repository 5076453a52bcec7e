//! Per-key rate limits (SPEC §5): per API key on the api path, per store and alias on the
//! webhook path, per client IP on the SDK path. Each limiter allows its rate per second with a
//! burst of one second's worth. Keys that have been idle long enough to be full again are
//! dropped on a timer, so churning keys cannot grow memory without bound.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use schemas::ReceiveType;

use crate::error::{ApiError, RateLimitHeaders};

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// One limiter per receive path.
#[derive(Debug)]
pub(crate) struct RateLimits {
    api: Limit,
    webhook: Limit,
    sdk: Limit,
}

#[derive(Debug)]
struct Limit {
    limiter: KeyedLimiter,
    per_second: NonZeroU32,
}

impl Limit {
    fn new(per_second: NonZeroU32) -> Limit {
        Limit {
            limiter: RateLimiter::keyed(Quota::per_second(per_second)),
            per_second,
        }
    }
}

impl RateLimits {
    pub(crate) fn new(api: NonZeroU32, webhook: NonZeroU32, sdk: NonZeroU32) -> RateLimits {
        RateLimits {
            api: Limit::new(api),
            webhook: Limit::new(webhook),
            sdk: Limit::new(sdk),
        }
    }

    /// Takes one event's worth for `key` on `path`, or answers 429 with when to come back.
    pub(crate) fn check(&self, path: ReceiveType, key: &str) -> Result<(), ApiError> {
        let limit = self.limit(path);
        match limit.limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                crate::metrics::report_rate_limited(path);
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::RateLimited(RateLimitHeaders {
                    limit: limit.per_second.get(),
                    remaining: 0,
                    reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                }))
            }
        }
    }

    /// Drops keys whose buckets are full again; run periodically.
    pub(crate) fn forget_idle(&self) {
        for limit in [&self.api, &self.webhook, &self.sdk] {
            limit.limiter.retain_recent();
            limit.limiter.shrink_to_fit();
        }
    }

    /// Keys currently tracked, for tests of the bound.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.api.limiter.len() + self.webhook.limiter.len() + self.sdk.limiter.len()
    }

    fn limit(&self, path: ReceiveType) -> &Limit {
        match path {
            ReceiveType::Api => &self.api,
            ReceiveType::Webhook => &self.webhook,
            ReceiveType::WebMobileApp => &self.sdk,
        }
    }
}

/// How often idle keys are dropped.
pub(crate) const FORGET_EVERY: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[test]
    fn a_burst_over_the_rate_is_refused_with_headers_and_keys_are_separate() {
        let limits = RateLimits::new(per_second(5), per_second(1000), per_second(1000));
        for _ in 0..5 {
            limits
                .check(ReceiveType::Api, "key-a")
                .expect("within the burst");
        }
        match limits.check(ReceiveType::Api, "key-a") {
            Err(ApiError::RateLimited(headers)) => {
                assert_eq!(headers.limit, 5);
                assert_eq!(headers.remaining, 0);
                assert!(headers.reset_secs >= 1);
            }
            other => panic!("expected a 429, got {other:?}"),
        }
        limits
            .check(ReceiveType::Api, "key-b")
            .expect("another key has its own bucket");
        limits
            .check(ReceiveType::Webhook, "key-a")
            .expect("another path has its own limiter");
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limits = RateLimits::new(per_second(1000), per_second(1000), per_second(1000));
        for n in 0..1000 {
            limits
                .check(ReceiveType::WebMobileApp, &format!("10.0.0.{n}"))
                .expect("ok");
        }
        assert_eq!(limits.tracked(), 1000);
        // One event out of a burst of a thousand refills in a millisecond: after a short
        // while every bucket is full again and the key carries no information.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while limits.tracked() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            limits.forget_idle();
        }
        assert_eq!(limits.tracked(), 0);
    }
}
