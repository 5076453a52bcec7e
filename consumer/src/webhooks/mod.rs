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

/// Deliveries an endpoint may have claimed, in multiples of its concurrency: a claimed delivery
/// waits for at most this many attempts before it (then its own) to end.
pub(crate) const CLAIM_ROUNDS: u32 = 4;

/// How long a claimed delivery is reserved: longer than its waiting and its attempt can take,
/// so a dispatcher that dies mid-attempt leaves it to be tried again once the lease runs out.
pub(crate) fn lease(timeout: Duration) -> Duration {
    timeout * CLAIM_ROUNDS + Duration::from_secs(5)
}
