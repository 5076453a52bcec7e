//! What the consumer's integration tests share: waiting for an outcome with a deadline.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// Polls `check` until it answers `Some`, and fails the test naming `what` if that takes
/// longer than `limit`. Tests wait for what they expect this way, never with a fixed sleep.
/// The first polls come quickly, then every 100 ms.
pub async fn wait_until<T, F, Fut>(limit: Duration, what: impl Display, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut every = Duration::from_millis(5);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {limit:?} for {what}"
        );
        tokio::time::sleep(every).await;
        every = (every * 2).min(Duration::from_millis(100));
    }
}
