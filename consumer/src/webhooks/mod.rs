//! Outbound webhooks (SPEC §7): which subscriptions want an event, the durable outbox their
//! deliveries wait in, and the dispatcher that signs, sends and retries them.
//!
//! Deliveries are written in the transaction that stores the event's effects, so an effect and
//! its deliveries are stored together or not at all; the dispatcher reads the outbox, so a
//! restart resumes every pending delivery.

mod deliver;
pub(crate) mod events;
mod health;
mod record;
pub mod retry;
mod send;
pub mod sign;
pub mod target;

use std::time::Duration;

pub use deliver::{DeliveryConfig, Dispatcher, Wake};
pub use retry::RetrySchedule;

/// How long a claimed delivery is reserved: longer than any attempt can take, so a dispatcher
/// that dies mid-attempt leaves it to be tried again once the lease runs out.
pub(crate) fn lease(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(5)
}
