//! Sluice's event-type model: the rules for creating an event type, the compiled validator
//! that checks and normalises incoming events, and the envelope that carries an accepted event
//! through the queue.
//!
//! This crate does no I/O. JSON enters through [`decode`] only, so the simd-json choice lives
//! in one function.

pub mod batch;
pub mod compiled;
pub mod decode;
pub mod envelope;
pub mod event_type;
pub mod normalise;
pub mod pointer;
pub mod reader;
pub mod target;
pub mod violation;

pub use compiled::{CompiledEventType, ContactKey, ValidatedEvent};
pub use decode::{decode, DecodeError};
pub use envelope::EventEnvelope;
pub use event_type::{
    read_header_list, Alias, Category, Encoding, EventTypeDefinition, Field, FieldId, FieldOption,
    FieldType, ReceiveType, Verification, WebhookHeader,
};
pub use reader::ObjectReader;
pub use violation::Violation;

/// A decoded JSON document borrowing its strings from the request buffer.
pub type Value<'a> = simd_json::BorrowedValue<'a>;
