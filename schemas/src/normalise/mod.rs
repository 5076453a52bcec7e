//! Turning the many ways people write an email, phone number, date or decimal into one
//! canonical form, so contacts match and downstream code compares plain strings. Every function
//! here is idempotent: normalising a normalised value returns it unchanged.

mod date;
pub mod decimal;
mod email;
mod phone;

pub use date::date;
pub use decimal::{decimal, DecimalError};
pub use email::email;
pub use phone::phone;
