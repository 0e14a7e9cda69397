//! RFC 3339 timestamps (`2026-12-02T23:04:05.123Z`, `...+09:00`) for the
//! query API's `time`, `start` and `end`, which Prometheus accepts beside
//! Unix seconds (`promtool` and Grafana send either).
//!
//! Why by hand: it is one fixed format, and the conversion to Unix time is
//! the civil-from-days arithmetic below; a date crate would add a dependency
//! for twenty lines.

/// Unix milliseconds of an RFC 3339 timestamp, or `None` if `s` is not one.
/// Fractions past milliseconds are truncated.
pub fn parse_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = |i: usize| i64::from(digits[i] - b'0');
            let (h, m) = (v(0) * 10 + v(1), v(2) * 10 + v(3));
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 3600 + m * 60;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn known_instants_parse() {
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2026-12-02T23:04:05Z +%s` = 1796252645.
        assert_eq!(parse_ms("2026-12-02T23:04:05Z"), Some(1_796_252_645_000));
        assert_eq!(parse_ms("2026-12-02T23:04:05.5Z"), Some(1_796_252_645_500));
        assert_eq!(
            parse_ms("2026-12-03T08:04:05.123456789+09:00"),
            Some(1_796_252_645_123)
        );
        assert_eq!(parse_ms("2000-02-29T00:00:00-00:30"), Some(951_784_200_000));
        assert_eq!(parse_ms("1969-12-31T23:59:59Z"), Some(-1000));
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2026-12-02",
            "2026-12-02T23:04:05",
            "2026-13-02T23:04:05Z",
            "2026-02-30T23:04:05Z",
            "2026-12-02T24:04:05Z",
            "2026-12-02T23:04:05.Z",
            "2026-12-02T23:04:05+9:00",
            "2026-12-02T23:04:05Zjunk",
            "2026-12-02T23:04:05.1234567890Z",
            "+026-12-02T23:04:05Z",
            "2026-12-02T23:04:05+٣٣:00",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
