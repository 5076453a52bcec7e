//! Integration tests: a real gateway on a loopback port, over real HTTP, against real SQLite
//! and a real PostgreSQL (started by `scripts/test`).

#![allow(unreachable_pub)]

mod harness;
mod receiver;

mod auth;
mod contract;
mod durability;
mod hostile;
mod idempotency;
mod ingest;
mod kafka;
mod kafka_security;
mod keys;
mod loadtest;
mod operations;
mod processes;
mod refusals;
mod registry;
mod segments;
mod verification;
mod webhooks;
mod workflows;
// The one `wait_until`, written once for the consumer's integration tests and the gateway's.
#[path = "../../../consumer/tests/it/support.rs"]
mod support;
