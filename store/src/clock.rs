//! Timestamps as Sluice stores and returns them: RFC 3339, UTC, millisecond precision.
//! A fixed width makes them sort correctly as text in both SQLite and PostgreSQL.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Now, formatted for storage and responses.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// A UTC instant formatted for storage and responses.
pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
}

/// `duration` from now, formatted for storage.
pub fn after(duration: std::time::Duration) -> String {
    format(OffsetDateTime::now_utc() + duration)
}

/// Reads a stored timestamp back.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}
