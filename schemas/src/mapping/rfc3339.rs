//! RFC 3339 date-times as milliseconds since the epoch: how Zoom's timestamps (`start_time`,
//! `join_time` …) become `timestamp-millis` fields.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`2021-07-13T21:44:51Z`, `2021-07-13T14:44:51.250-07:00`); `None` if it is not one.
/// Sub-millisecond digits are cut off (towards the past, also before 1970).
pub(super) fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_become_epoch_millis() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2021-07-13T21:44:51Z"),
            Some(1_626_212_691_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-13T14:44:51-07:00"),
            Some(1_626_212_691_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-14T03:14:51+05:30"),
            Some(1_626_212_691_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-13t21:44:51.25z"),
            Some(1_626_212_691_250)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-13T21:44:51.123456Z"),
            Some(1_626_212_691_123)
        );
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59Z"), Some(-1_000));
        assert_eq!(
            parse_rfc3339_millis("1969-12-31T23:59:58.9999Z"),
            Some(-1_001)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "",
            "2021-07-13",
            "2021-07-13T21:44:51",
            "2021-07-13T21:44:51ZZ",
            "2021-13-13T21:44:51Z",
            "2023-02-29T00:00:00Z",
            "2021-07-13T24:00:00Z",
            "2021-07-13T21:44:51.Z",
            "2021-07-13T21:44:51+0700",
            "2021/07/13T21:44:51Z",
            "２021-07-13T21:44:51Z",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad:?}");
        }
    }
}
