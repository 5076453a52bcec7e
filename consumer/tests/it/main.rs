//! Consumer effects against a real SQLite file and a real PostgreSQL (started by
//! `scripts/test`): redelivered events change nothing, contacts are created once.

#![allow(unreachable_pub)]

mod apply;
mod poison;
mod support;
