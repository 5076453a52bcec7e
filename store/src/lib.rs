//! Sluice's database: the schema (migrations), the connection to SQLite or PostgreSQL, and one
//! module per table family. The gateway and the consumer both stand on this crate; neither
//! reaches into the other for SQL.
//!
//! Both engines are reached through sqlx's `Any` driver and one set of portable SQL, so every
//! query is written once and the same test suite runs against both.

pub mod activities;
pub mod clock;
mod connection;
pub mod contacts;
pub mod idempotency;
pub mod outbox;
pub mod registry;
pub mod segments;
pub mod sql;
pub mod webhooks;
pub mod workflows;

pub use connection::{
    connect, consumer_connection, kept_connection, ping, sqlite_url, DbError, Engine,
};
