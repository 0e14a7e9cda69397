//! The nines: how much downtime an availability SLA allows.
//!
//! An SLA of 99.9% ("three nines") allows 0.1% downtime: 1.44 minutes a day,
//! 8.77 hours a year. The notes' table uses a month of 365.25/12 days and a
//! year of 365.25 days (the Julian year, leap days averaged in), which is
//! why a 99% month is 7.31 hours and not 7.2.
//!
//! The arithmetic is exact integers: availability is held in parts per
//! billion, so downtime in nanoseconds is `unavailable ppb × period seconds`
//! with no floating-point rounding, and values are rounded half-up to two
//! decimals in the largest unit that keeps them at 1 or more (864 ms, not
//! 0.86 s), matching the notes' table digit for digit.

use serde::Serialize;

use crate::error::ParseError;

const PPB_PER_PERCENT: u64 = 10_000_000;
const PPB_WHOLE: u64 = 1_000_000_000;

/// An availability level, e.g. 99.99%, exact to 10^-7 percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Availability {
    /// Available time in parts per billion (99.9% = 999,000,000).
    pub up_ppb: u64,
}

impl Availability {
    /// Parses a percentage like `99.99` or `99.99%` (at most 7 decimals).
    pub fn parse_percent(text: &str) -> Result<Availability, ParseError> {
        let out_of_range = || ParseError::OutOfRange {
            text: text.to_owned(),
            expected: "a percentage from 0 to 100 with at most 7 decimals, like 99.99",
        };
        let digits = text.trim().trim_end_matches('%');
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(ParseError::NotANumber {
                text: text.to_owned(),
            });
        }
        if fraction.len() > 7 || whole.len() > 3 {
            return Err(out_of_range());
        }
        let whole: u64 = whole.parse().map_err(|_| out_of_range())?;
        let fraction: u64 = format!("{fraction:0<7}")
            .parse()
            .map_err(|_| out_of_range())?;
        let up_ppb = whole * PPB_PER_PERCENT + fraction;
        if up_ppb > PPB_WHOLE {
            return Err(out_of_range());
        }
        Ok(Availability { up_ppb })
    }

    /// The percentage with no trailing zeros: `99.9999`, `99`.
    pub fn percent_text(&self) -> String {
        let whole = self.up_ppb / PPB_PER_PERCENT;
        let fraction = self.up_ppb % PPB_PER_PERCENT;
        if fraction == 0 {
            return whole.to_string();
        }
        let fraction = format!("{fraction:07}");
        format!("{whole}.{}", fraction.trim_end_matches('0'))
    }

    /// Downtime allowed over `period`.
    pub fn downtime(&self, period: Period) -> Downtime {
        let down_ppb = u128::from(PPB_WHOLE - self.up_ppb);
        // down/1e9 of period_s seconds = down x period_s nanoseconds.
        Downtime {
            nanos: down_ppb * u128::from(period.seconds()),
        }
    }
}

/// A span that downtime is budgeted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// 86,400 s.
    Day,
    /// 7 days.
    Week,
    /// 365.25 / 12 days = 30.4375 days.
    Month,
    /// 365.25 days.
    Year,
}

impl Period {
    /// All periods, shortest first.
    pub const ALL: [Period; 4] = [Period::Day, Period::Week, Period::Month, Period::Year];

    /// Length in seconds (whole: 365.25 days / 12 is 2,629,800 s exactly).
    pub fn seconds(self) -> u64 {
        match self {
            Period::Day => 86_400,
            Period::Week => 7 * 86_400,
            Period::Month => 2_629_800,
            Period::Year => 31_557_600,
        }
    }
}

/// An amount of downtime, exact in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Downtime {
    /// Nanoseconds.
    pub nanos: u128,
}

const UNITS: [(&str, u128); 7] = [
    ("days", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("min", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("µs", 1_000),
    ("ns", 1),
];

impl Downtime {
    /// Seconds, as a float (for JSON).
    pub fn seconds(&self) -> f64 {
        self.nanos as f64 / 1e9
    }

    /// Two decimals, rounded half-up, in the largest unit where the value
    /// is at least 1: `14.40 min`, `864.00 ms`, `3.65 days`.
    pub fn text(&self) -> String {
        let (unit, scale) = UNITS
            .iter()
            .copied()
            .find(|&(_, scale)| self.nanos >= scale)
            .unwrap_or(("ns", 1));
        let hundredths = (self.nanos * 200 + scale) / (2 * scale);
        format!("{}.{:02} {unit}", hundredths / 100, hundredths % 100)
    }
}

impl Serialize for Downtime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Downtime", 2)?;
        s.serialize_field("seconds", &self.seconds())?;
        s.serialize_field("text", &self.text())?;
        s.end()
    }
}

/// One row of the nines table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NinesRow {
    /// The availability, e.g. "99.9".
    pub availability_pct: String,
    /// Downtime allowed per day.
    pub per_day: Downtime,
    /// Downtime allowed per week.
    pub per_week: Downtime,
    /// Downtime allowed per month (365.25/12 days).
    pub per_month: Downtime,
    /// Downtime allowed per year (365.25 days).
    pub per_year: Downtime,
}

/// The notes' levels: 99% to 99.9999%.
pub fn standard_levels() -> Vec<Availability> {
    [
        990_000_000,
        999_000_000,
        999_900_000,
        999_990_000,
        999_999_000,
    ]
    .into_iter()
    .map(|up_ppb| Availability { up_ppb })
    .collect()
}

/// The nines table for `levels`.
pub fn table(levels: &[Availability]) -> Vec<NinesRow> {
    levels
        .iter()
        .map(|level| NinesRow {
            availability_pct: level.percent_text(),
            per_day: level.downtime(Period::Day),
            per_week: level.downtime(Period::Week),
            per_month: level.downtime(Period::Month),
            per_year: level.downtime(Period::Year),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notes' table, cell for cell (가용성에 관계된 수치들).
    #[test]
    fn reproduces_the_notes_table() {
        let expected = [
            ["99", "14.40 min", "1.68 h", "7.31 h", "3.65 days"],
            ["99.9", "1.44 min", "10.08 min", "43.83 min", "8.77 h"],
            ["99.99", "8.64 s", "1.01 min", "4.38 min", "52.60 min"],
            ["99.999", "864.00 ms", "6.05 s", "26.30 s", "5.26 min"],
            ["99.9999", "86.40 ms", "604.80 ms", "2.63 s", "31.56 s"],
        ];
        let rows = table(&standard_levels());
        for (row, want) in rows.iter().zip(expected) {
            let got = [
                row.availability_pct.clone(),
                row.per_day.text(),
                row.per_week.text(),
                row.per_month.text(),
                row.per_year.text(),
            ];
            assert_eq!(got, want.map(str::to_owned));
        }
    }

    #[test]
    fn parses_percentages_exactly() {
        assert_eq!(
            Availability::parse_percent("99.9999").unwrap().up_ppb,
            999_999_000
        );
        assert_eq!(
            Availability::parse_percent("99.95%")
                .unwrap()
                .percent_text(),
            "99.95"
        );
        assert_eq!(
            Availability::parse_percent("100")
                .unwrap()
                .downtime(Period::Year)
                .nanos,
            0
        );
        assert_eq!(
            Availability::parse_percent("0")
                .unwrap()
                .downtime(Period::Day)
                .text(),
            "1.00 days"
        );
        assert!(Availability::parse_percent("100.1").is_err());
        assert!(Availability::parse_percent("99.123456789").is_err());
        assert!(Availability::parse_percent("-5").is_err());
        assert!(Availability::parse_percent("abc").is_err());
        assert!(Availability::parse_percent("").is_err());
        assert!(Availability::parse_percent("1e3").is_err());
    }
}
