//! Wall-clock helpers and the timestamp formats the services use.

use time::OffsetDateTime;
use time::macros::format_description;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DD hh:mm:ssZ`, the format of AADSTS error timestamps.
pub(crate) fn aad_timestamp(unix: i64) -> String {
    at(unix)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// ISO 8601 with offset, the format Exchange uses in JSON output (`2024-01-15T08:30:00+00:00`).
pub(crate) fn iso(unix: i64) -> String {
    at(unix)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+00:00"
        ))
        .unwrap_or_default()
}
