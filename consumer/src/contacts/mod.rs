//! Contacts and activities: what every accepted event leaves behind (SPEC §6).

mod apply;
mod state;

pub use apply::{apply, Applied};
pub(crate) use state::{states, ContactId};

use schemas::ContactKey;

/// The stored key of a contact: `e:<email>` or `t:<trackerId>`, so the two kinds never collide.
pub fn stored_key(contact: &ContactKey) -> String {
    contact.tagged()
}
