//! Consumer effects against a real SQLite file and a real PostgreSQL (started by
//! `scripts/test`): redelivered events change nothing, contacts are created once; and the
//! webhook dispatcher against a real outbox and a real HTTP receiver.

#![allow(unreachable_pub)]

mod apply;
mod deliver;
mod effects;
mod poison;
mod postgres_tls;
mod receiver;
mod segments;
mod support;
