//! Whether a run passed, as the exit code scripts and CI read: a run whose requests all failed
//! or were refused must not look like a successful one.

use std::process::ExitCode;

use crate::report::Report;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within `--max-unexpected`, and `--verify` (if asked) found nothing lost or doubled.
    Passed,
    /// `--verify` found lost or duplicated events: exit code 2.
    Lost,
    /// More than `--max-unexpected` percent of requests failed or got an unexpected answer,
    /// or none succeeded: exit code 3.
    Unexpected,
}

impl Verdict {
    /// Lost data outranks too many unexpected answers: it is the worse finding.
    pub(crate) fn of(report: &Report, max_unexpected_percent: f64) -> Verdict {
        if report.verify.as_ref().is_some_and(|v| !v.is_clean()) {
            return Verdict::Lost;
        }
        let failures = report.failures.values().sum::<u64>() - report.failures_expected;
        if too_many_unexpected(
            report.requests,
            failures,
            report.unexpected,
            max_unexpected_percent,
        ) {
            return Verdict::Unexpected;
        }
        Verdict::Passed
    }

    pub(crate) fn exit_code(self) -> ExitCode {
        match self {
            Verdict::Passed => ExitCode::SUCCESS,
            Verdict::Lost => ExitCode::from(2),
            Verdict::Unexpected => ExitCode::from(3),
        }
    }
}

/// Percent of `requests` that failed (no answer) or got an unexpected answer.
pub(crate) fn unexpected_percent(requests: u64, failures: u64, unexpected: u64) -> f64 {
    if requests == 0 {
        return 0.0;
    }
    (failures + unexpected) as f64 * 100.0 / requests as f64
}

/// The rule: over the threshold, or not one request answered as expected (which includes a
/// run that sent nothing).
pub(crate) fn too_many_unexpected(
    requests: u64,
    failures: u64,
    unexpected: u64,
    max_percent: f64,
) -> bool {
    let succeeded = requests.saturating_sub(failures + unexpected);
    succeeded == 0 || unexpected_percent(requests, failures, unexpected) > max_percent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_failed_and_unexpected_requests_decides() {
        // Default threshold 1%: 1 of 100 is at it, 2 of 100 passes it.
        assert!(!too_many_unexpected(100, 0, 1, 1.0));
        assert!(!too_many_unexpected(100, 1, 0, 1.0));
        assert!(
            too_many_unexpected(100, 1, 1, 1.0),
            "failures and unexpected add up"
        );
        assert!(too_many_unexpected(100, 2, 0, 1.0));
        assert!(
            !too_many_unexpected(1000, 0, 0, 0.0),
            "a clean run passes a zero threshold"
        );
        assert!(too_many_unexpected(1000, 0, 1, 0.0));
        assert!(!too_many_unexpected(100, 50, 40, 95.0));
    }

    #[test]
    fn a_run_where_nothing_succeeded_fails_whatever_the_threshold() {
        assert!(
            too_many_unexpected(20, 20, 0, 100.0),
            "every connection refused"
        );
        assert!(
            too_many_unexpected(20, 0, 20, 100.0),
            "every answer unexpected"
        );
        assert!(too_many_unexpected(20, 5, 15, 100.0));
        assert!(too_many_unexpected(0, 0, 0, 100.0), "nothing was sent");
        assert!(!too_many_unexpected(20, 10, 9, 100.0), "one succeeded");
    }

    #[test]
    fn percent_is_of_requests() {
        assert_eq!(unexpected_percent(200, 1, 3), 2.0);
        assert_eq!(unexpected_percent(0, 0, 0), 0.0);
    }
}
