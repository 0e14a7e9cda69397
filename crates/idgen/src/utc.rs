//! ISO-8601 UTC timestamps from Unix milliseconds, without a date library.
//!
//! Decoding an ID ends in a human-readable time. A date crate would cost build
//! time for one conversion, so this is Howard Hinnant's `civil_from_days`
//! (proleptic Gregorian calendar, exact for every `u64` ms we can meet) and its
//! inverse, which the tests use to prove the round trip.

/// `2024-01-02T03:04:05.678Z` for `unix_ms` milliseconds since 1970.
pub fn format_iso8601(unix_ms: u64) -> String {
    let days = unix_ms / 86_400_000;
    let ms_of_day = unix_ms % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    let (h, m) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (s, ms) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// (year, month 1-12, day 1-31) of day number `days` since 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month from March, [0, 11]
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Day number since 1970-01-01 of a date on or after it (inverse of
/// [`civil_from_days`]).
pub fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    debug_assert!((1..=12).contains(&month) && (1..=31).contains(&day) && year >= 1970);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * mp + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00.000Z");
        // Twitter's snowflake epoch.
        assert_eq!(
            format_iso8601(1_288_834_974_657),
            "2010-11-04T01:42:54.657Z"
        );
        assert_eq!(
            format_iso8601(1_704_067_200_000),
            "2024-01-01T00:00:00.000Z"
        );
        // A leap day and the last ms of a leap year.
        assert_eq!(format_iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_iso8601(1_735_689_599_999),
            "2024-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_iso8601(4_102_444_800_000),
            "2100-01-01T00:00:00.000Z"
        );
    }

    proptest! {
        #[test]
        fn days_round_trip(days in 0u64..100_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn next_day_is_the_next_date(days in 0u64..10_000_000) {
            let (y0, m0, d0) = civil_from_days(days);
            let (y1, m1, d1) = civil_from_days(days + 1);
            let next_day = (y1, m1, d1) == (y0, m0, d0 + 1);
            let next_month = y1 == y0 && m1 == m0 + 1 && d1 == 1;
            let next_year = (y1, m1, d1) == (y0 + 1, 1, 1) && (m0, d0) == (12, 31);
            prop_assert!(next_day || next_month || next_year);
        }
    }
}
