//! Dates to RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SS[.fff]Z`), so events from every time zone sort
//! and compare as plain strings.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

/// The RFC 3339 UTC form of an ISO 8601 date (`YYYY-MM-DD`, taken as midnight UTC) or date-time
/// with an offset or `Z`. Sub-second digits are kept only when non-zero. Date-times without an
/// offset are refused: their instant is unknown.
pub fn date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() == 10 {
        let day = Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()?;
        return format(day.midnight().assume_utc());
    }
    let parsed = OffsetDateTime::parse(raw, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(raw, &Iso8601::DEFAULT))
        .ok()?;
    format(parsed.checked_to_offset(UtcOffset::UTC)?)
}

/// Fails for years outside 0000–9999, which RFC 3339 cannot write.
fn format(utc: OffsetDateTime) -> Option<String> {
    utc.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::date;

    #[test]
    fn accepts_dates_and_offset_date_times() {
        let cases = [
            ("2024-02-29", "2024-02-29T00:00:00Z"),
            ("2024-01-02T10:00:00Z", "2024-01-02T10:00:00Z"),
            ("2024-01-02T10:00:00+02:00", "2024-01-02T08:00:00Z"),
            ("2024-01-02T00:30:00-01:00", "2024-01-02T01:30:00Z"),
            ("2024-01-02T10:00:00.500Z", "2024-01-02T10:00:00.5Z"),
            ("2024-01-02T10:00:00.000+00:00", "2024-01-02T10:00:00Z"),
            ("2024-01-02t10:00:00z", "2024-01-02T10:00:00Z"),
            ("2024-01-02T10:00Z", "2024-01-02T10:00:00Z"),
            ("2024-01-02T10:00:00+0100", "2024-01-02T09:00:00Z"),
        ];
        for (raw, want) in cases {
            assert_eq!(date(raw).as_deref(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn refuses_invalid_and_local_times() {
        for raw in [
            "",
            "2024-02-30",
            "2024-13-01",
            "02/01/2024",
            "2024-01-02T10:00:00",
            "yesterday",
            "2024-01-02T25:00:00Z",
        ] {
            assert_eq!(date(raw), None, "{raw:?}");
        }
    }
}
