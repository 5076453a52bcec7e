//! Workflows (SPEC §6): on a custom event of a chosen type, set contact fields and send custom
//! events, with values from templates. They run inside the consumer's batch transaction, in
//! queue order, so one contact's runs happen in event order and exactly once per event.

mod run;

pub(crate) use run::run;
pub use run::WorkflowEffects;
