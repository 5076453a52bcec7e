//! Dates to RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SS[.fff]Z`), so events from every time zone sort
//! and compare as plain strings.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

/// Largest offset accepted, ±23:59: RFC 3339 and ISO 8601 write offsets as hours 00–23 and
/// minutes, though the parser would take up to ±25:59.
const MAX_OFFSET_SECONDS: i32 = 23 * 3600 + 59 * 60;

/// The RFC 3339 UTC form of an ISO 8601 date (`YYYY-MM-DD`, taken as midnight UTC) or date-time
/// with an offset or `Z`. Sub-second digits are kept only when non-zero. Date-times without an
/// offset are refused: their instant is unknown.
///
/// Leap seconds (`…:60`) are refused, in every accepted form: Unix time, JavaScript, Python
/// and most databases cannot hold them, and mapping one onto a neighbouring instant would
/// silently change the value. Offsets must be within ±23:59.
pub fn date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() == 10 {
        let day = Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()?;
        return format(day.midnight().assume_utc());
    }
    let parsed = OffsetDateTime::parse(raw, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(raw, &Iso8601::DEFAULT))
        .ok()?;
    if parsed.offset().whole_seconds().abs() > MAX_OFFSET_SECONDS || is_leap_second(raw) {
        return None;
    }
    format(parsed.checked_to_offset(UtcOffset::UTC)?)
}

/// Whether the time's seconds are written `60`, in the extended (`23:59:60`) or basic
/// (`235960`) form: the parser maps a leap second onto `:59.999999999`, so only the text tells.
fn is_leap_second(raw: &str) -> bool {
    let Some(t) = raw.find(['T', 't']) else {
        return false;
    };
    let digits: Vec<u8> = raw.as_bytes()[t + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b':')
        .filter(|b| b.is_ascii_digit())
        .copied()
        .collect();
    digits.get(4..6) == Some(b"60")
}

/// Fails for years outside 0000–9999, which RFC 3339 cannot write.
fn format(utc: OffsetDateTime) -> Option<String> {
    utc.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::date;

    #[test]
    fn offsets_up_to_23_59_are_accepted() {
        assert_eq!(
            date("2024-01-02T10:00:00+23:59").as_deref(),
            Some("2024-01-01T10:01:00Z")
        );
        assert_eq!(
            date("2024-01-02T10:00:00-2359").as_deref(),
            Some("2024-01-03T09:59:00Z")
        );
    }

    #[test]
    fn leap_seconds_are_refused_in_every_form() {
        for raw in [
            "2016-12-31T23:59:60Z",
            "2016-12-31t23:59:60z",
            "2016-12-31T23:59:60.5Z",
            "2017-01-01T00:59:60+01:00",
            "2016-12-31T23:59:60+0000",
            "20161231T235960Z",
            "2024-01-02T10:00:60Z",
        ] {
            assert_eq!(date(raw), None, "{raw:?}");
        }
        // The last real second before midnight is still fine.
        assert_eq!(
            date("2016-12-31T23:59:59.999999999Z").as_deref(),
            Some("2016-12-31T23:59:59.999999999Z")
        );
    }

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
            "2024-01-02T10:00:00+24:00",
            "2024-01-02T10:00:00-24:00",
            "2024-01-02T10:00:00+2400",
            "2024-01-02T10:00:00+25:59",
        ] {
            assert_eq!(date(raw), None, "{raw:?}");
        }
    }
}
