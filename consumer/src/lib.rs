//! Sluice's consumer: reads event envelopes from the queue and turns them into effects
//! (contacts, activities, workflows, outbound webhooks). It also owns the store's schema,
//! because it is the lowest layer that both the gateway and the consumer binary share.

pub mod clock;
pub mod config;
pub mod consume;
pub mod contacts;
pub mod db;
pub mod error;
pub mod health;
pub mod kafka;
pub mod metrics;
pub mod ops;
pub mod webhooks;
pub mod workflows;
