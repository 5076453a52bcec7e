//! Turning the many ways people write an email, phone number or date into one canonical form,
//! so contacts match and downstream code compares plain strings. Every function here is
//! idempotent: normalising a normalised value returns it unchanged.

mod date;
mod email;
mod phone;

pub use date::date;
pub use email::email;
pub use phone::phone;
