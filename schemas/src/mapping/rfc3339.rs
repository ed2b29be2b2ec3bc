//! RFC 3339 date-times as milliseconds since the epoch: how Zoom's timestamps (`start_time`,
//! `join_time` …) become `timestamp-millis` fields.

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`2021-07-13T21:44:51Z`, `2021-07-13T14:44:51.250-07:00`); `None` if it is not one.
pub(super) fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let expect = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let hour = digits(11, 2)?;
    let minute = digits(14, 2)?;
    let second = digits(17, 2)?;
    if !(expect(4, b"-")
        && expect(7, b"-")
        && expect(10, b"Tt ")
        && expect(13, b":")
        && expect(16, b":"))
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if expect(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        // Milliseconds: the first three digits, right-padded ("25" is 250 ms).
        millis = format!("{:0<3}", &text[start..at.min(start + 3)])
            .parse()
            .ok()?;
    }
    let offset_minutes = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() && expect(at + 3, b":") => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
