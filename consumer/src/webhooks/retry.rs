//! When a failed delivery is tried again: exponential backoff with jitter, the first retry
//! within seconds and the last about a day after the first attempt.

use std::time::Duration;

use rand::Rng;

/// Delays before each retry. They add up to about 24 h, after which the delivery is
/// dead-lettered (Standard Webhooks and Svix use a similar shape).
pub const DEFAULT_SCHEDULE: [Duration; 10] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
];

/// The retry schedule in force.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            delays: DEFAULT_SCHEDULE.to_vec(),
        }
    }
}

impl RetrySchedule {
    /// A schedule of these delays; empty means no retries at all.
    pub fn new(delays: Vec<Duration>) -> RetrySchedule {
        RetrySchedule { delays }
    }

    /// The delay before the next try after `attempts` tries have failed, or None when the
    /// delivery has had all its tries. Jitter of ±20% keeps a recovering endpoint from
    /// receiving every retry at the same instant.
    pub fn after(&self, attempts: u32) -> Option<Duration> {
        let base = *self.delays.get(attempts.checked_sub(1)? as usize)?;
        let factor = rand::rng().random_range(0.8..=1.2);
        Some(base.mul_f64(factor))
    }

    /// Parses `5s,30s,2m,1h` (also `ms`): the operator's own schedule.
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        if text.trim().is_empty() {
            return Ok(RetrySchedule::new(Vec::new()));
        }
        text.split(',')
            .map(|part| {
                humantime::parse_duration(part.trim()).map_err(|e| format!("{part:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_spans_about_a_day_and_starts_within_seconds() {
        let total: Duration = DEFAULT_SCHEDULE.iter().sum();
        assert!(total >= Duration::from_secs(23 * 3600) && total <= Duration::from_secs(25 * 3600));
        let first = RetrySchedule::default().after(1).expect("a first retry");
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
    }

    #[test]
    fn no_retry_after_the_last_delay() {
        let schedule = RetrySchedule::default();
        assert!(schedule.after(10).is_some());
        assert_eq!(schedule.after(11), None);
        assert_eq!(schedule.after(0), None);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let schedule = RetrySchedule::new(vec![Duration::from_secs(100)]);
        for _ in 0..200 {
            let delay = schedule.after(1).expect("delay");
            assert!(delay >= Duration::from_secs(80) && delay <= Duration::from_secs(120));
        }
    }

    #[test]
    fn parses_operator_schedules_and_refuses_bad_ones() {
        let schedule = RetrySchedule::parse("250ms, 2s,1m,1h").expect("parses");
        assert_eq!(schedule.delays.len(), 4);
        assert_eq!(schedule.delays[0], Duration::from_millis(250));
        assert_eq!(schedule.delays[3], Duration::from_secs(3600));
        assert!(RetrySchedule::parse("").expect("empty").delays.is_empty());
        assert_eq!(
            RetrySchedule::parse("1.5s").expect("fractions").delays,
            vec![Duration::from_millis(1500)]
        );
        for bad in ["5", "5x", "s", "-1s", "1s 2x"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
