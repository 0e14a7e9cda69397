//! The chapter's data model as plain values, and the rules that need no
//! database: calendar dates, a stay's nights, the overbooking limit, and the
//! reservation status machine.
//!
//! Everything here is pure so it can be tested exhaustively; the store
//! persists these values and the concurrency module decides when they change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A calendar date (UTC), stored as days since 1970-01-01. Dates are the key
/// of room-type inventory: one row per room type per night.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i64);

/// Earliest year a date may name (dates are days since 1970).
const YEAR_MIN: u64 = 1970;
/// Latest year a date may name: four digits keep text order = date order.
const YEAR_MAX: u64 = 9999;

impl Date {
    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Self {
        Self(days)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        self.0
    }

    /// Today (UTC) by the workspace clock.
    pub fn today() -> Self {
        Self((clock::now_ms() / 86_400_000) as i64)
    }

    /// The date `n` days later (or earlier, for negative `n`).
    pub fn plus(self, n: i64) -> Self {
        Self(self.0 + n)
    }

    /// Parses `YYYY-MM-DD`, rejecting impossible dates (`2025-02-30`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a date: use YYYY-MM-DD, e.g. 2030-01-31");
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u64, String> {
            let part = &text[range];
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u64>().map_err(|_| bad())
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return Err(bad());
        }
        if day > 31 {
            return Err(bad());
        }
        let days = idgen::utc::days_from_civil(year, month, day);
        // Round trip: `2025-02-30` becomes March 2nd and so is refused.
        if idgen::utc::civil_from_days(days) != (year, month, day) {
            return Err(format!("`{text}` is not a date of the calendar"));
        }
        Ok(Self(days as i64))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = idgen::utc::civil_from_days(self.0.max(0) as u64);
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

/// A validated stay: check-in date (first night) and check-out date (the
/// morning after the last night).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    /// First night.
    pub check_in: Date,
    /// Day of departure; not a night of the stay.
    pub check_out: Date,
}

/// Bounds on what a request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct StayLimits {
    /// Longest stay, in nights (the issue: 30).
    pub nights_max: i64,
    /// How far ahead a stay may start, in days.
    pub horizon_days: i64,
}

impl Default for StayLimits {
    fn default() -> Self {
        Self {
            nights_max: 30,
            horizon_days: 730,
        }
    }
}

impl Stay {
    /// Validates a stay against `today` and `limits`.
    pub fn new(
        check_in: Date,
        check_out: Date,
        today: Date,
        limits: StayLimits,
    ) -> Result<Self, String> {
        if check_in < today {
            return Err(format!(
                "check_in {check_in} is in the past (today is {today} UTC)"
            ));
        }
        if check_out <= check_in {
            return Err(format!(
                "check_out {check_out} must be after check_in {check_in}"
            ));
        }
        let nights = check_out.days() - check_in.days();
        if nights > limits.nights_max {
            return Err(format!(
                "a stay is at most {} nights; {check_in} to {check_out} is {nights}",
                limits.nights_max
            ));
        }
        if check_in.days() - today.days() > limits.horizon_days {
            return Err(format!(
                "check_in {check_in} is more than {} days ahead",
                limits.horizon_days
            ));
        }
        Ok(Self {
            check_in,
            check_out,
        })
    }

    /// Number of nights.
    pub fn nights(&self) -> i64 {
        self.check_out.days() - self.check_in.days()
    }

    /// Each night of the stay, in date order (the order rows are locked in,
    /// so two bookings never wait for each other in a cycle).
    pub fn each_night(&self) -> impl Iterator<Item = Date> + use<> {
        let first = self.check_in.days();
        (first..self.check_out.days()).map(Date)
    }
}

/// How many rooms may be sold above the physical count, as a percentage of
/// it: `110` sells 110 rooms of 100 (hotels overbook because some guests do
/// not show up). Stored with each inventory row, where the CHECK constraint
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overbooking(i64);

impl Overbooking {
    /// No overbooking: 100 %.
    pub const NONE: Self = Self(100);

    /// From a ratio such as `1.10`; between 1.0 and 2.0, whole percents.
    pub fn from_ratio(ratio: f64) -> Result<Self, String> {
        if !ratio.is_finite() || !(1.0..=2.0).contains(&ratio) {
            return Err(format!(
                "overbooking must be between 1.0 and 2.0 (e.g. 1.10), not {ratio}"
            ));
        }
        Ok(Self((ratio * 100.0).round() as i64))
    }

    /// From a percentage (100..=200).
    pub fn from_percent(percent: i64) -> Result<Self, String> {
        if !(100..=200).contains(&percent) {
            return Err(format!(
                "overbooking percent must be 100..=200, not {percent}"
            ));
        }
        Ok(Self(percent))
    }

    /// The percentage.
    pub fn percent(self) -> i64 {
        self.0
    }

    /// Rooms that may be sold for `total_inventory` physical rooms: the
    /// largest `r` with `r * 100 <= total_inventory * percent`, exactly what
    /// the table's CHECK constraint allows.
    pub fn limit(self, total_inventory: i64) -> i64 {
        total_inventory.saturating_mul(self.0) / 100
    }
}

/// The lifecycle of a reservation. A new reservation holds its rooms while it
/// waits for payment; canceled, refunded and rejected ones give them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Rooms held, payment not yet taken.
    Pending,
    /// Paid; rooms held.
    Paid,
    /// The guest arrived (terminal).
    CheckedIn,
    /// Canceled before payment (terminal; rooms released).
    Canceled,
    /// Canceled after payment, money returned (terminal; rooms released).
    Refunded,
    /// Payment failed (terminal; rooms released).
    Rejected,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Paid,
        Status::CheckedIn,
        Status::Canceled,
        Status::Refunded,
        Status::Rejected,
    ];

    /// The word stored in the database and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::CheckedIn => "checked_in",
            Status::Canceled => "canceled",
            Status::Refunded => "refunded",
            Status::Rejected => "rejected",
        }
    }

    /// Parses a stored word.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == word)
    }

    /// Whether a reservation in this status counts against inventory.
    pub fn holds_rooms(self) -> bool {
        matches!(self, Status::Pending | Status::Paid | Status::CheckedIn)
    }
}

/// What can happen to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Payment succeeded.
    Pay,
    /// Payment failed.
    Reject,
    /// The guest cancels (before payment: canceled; after: refunded).
    Cancel,
    /// The guest arrives.
    CheckIn,
}

impl Event {
    /// The verb, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Pay => "pay",
            Event::Reject => "reject",
            Event::Cancel => "cancel",
            Event::CheckIn => "check in",
        }
    }
}

/// The outcome of applying an event to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to the new status.
    To(Status),
    /// The event already happened (a retried request): nothing to do.
    Already,
    /// Not allowed from this status.
    Invalid,
}

/// The status machine: pending → paid → checked-in, pending → canceled or
/// rejected, paid → refunded (a cancel after payment). Repeating the event
/// that led to the current status is [`Transition::Already`], so clients may
/// retry any call.
pub fn transition(from: Status, event: Event) -> Transition {
    use Status::*;
    match (from, event) {
        (Pending, Event::Pay) => Transition::To(Paid),
        (Pending, Event::Reject) => Transition::To(Rejected),
        (Pending, Event::Cancel) => Transition::To(Canceled),
        (Paid, Event::Cancel) => Transition::To(Refunded),
        (Paid, Event::CheckIn) => Transition::To(CheckedIn),
        (Paid, Event::Pay)
        | (Rejected, Event::Reject)
        | (Canceled | Refunded, Event::Cancel)
        | (CheckedIn, Event::CheckIn) => Transition::Already,
        _ => Transition::Invalid,
    }
}

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// Chosen by the client; the idempotency key.
    pub reservation_id: String,
    /// The hotel.
    pub hotel_id: i64,
    /// The room type.
    pub room_type_id: i64,
    /// Who booked.
    pub guest_id: String,
    /// First night (`YYYY-MM-DD`).
    pub check_in: String,
    /// Departure day (`YYYY-MM-DD`).
    pub check_out: String,
    /// Rooms booked for every night.
    pub rooms: i64,
    /// Price of the whole stay, in cents, fixed at booking time.
    pub total_cents: i64,
    /// Where it is in its lifecycle.
    pub status: Status,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Last change, Unix ms.
    pub updated_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_print() {
        let date = Date::parse("2030-02-28").unwrap();
        assert_eq!(date.to_string(), "2030-02-28");
        assert_eq!(date.plus(1).to_string(), "2030-03-01");
        assert_eq!(Date::parse("2028-02-29").unwrap().to_string(), "2028-02-29");
        for bad in [
            "2030-02-30",
            "2029-02-29",
            "2030-13-01",
            "2030-00-10",
            "2030-1-01",
            "20300101",
            "",
            "1969-12-31",
            "+030-01-01",
            "２０３０-01-01",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn stays_are_bounded() {
        let today = Date::parse("2030-01-10").unwrap();
        let limits = StayLimits::default();
        let day = |s| Date::parse(s).unwrap();
        let stay = Stay::new(day("2030-01-10"), day("2030-01-13"), today, limits).unwrap();
        assert_eq!(stay.nights(), 3);
        let nights: Vec<String> = stay.each_night().map(|d| d.to_string()).collect();
        assert_eq!(nights, ["2030-01-10", "2030-01-11", "2030-01-12"]);
        let err = |a, b| Stay::new(day(a), day(b), today, limits).unwrap_err();
        assert!(err("2030-01-09", "2030-01-12").contains("past"));
        assert!(err("2030-01-12", "2030-01-12").contains("after"));
        assert!(err("2030-01-12", "2030-01-11").contains("after"));
        assert!(err("2030-01-10", "2030-02-10").contains("at most 30"));
        assert!(Stay::new(day("2030-01-10"), day("2030-02-09"), today, limits).is_ok());
        assert!(err("2033-01-10", "2033-01-11").contains("ahead"));
    }

    #[test]
    fn overbooking_limit_matches_the_check_constraint() {
        let ten_percent = Overbooking::from_ratio(1.10).unwrap();
        assert_eq!(ten_percent.percent(), 110);
        assert_eq!(ten_percent.limit(100), 110);
        assert_eq!(ten_percent.limit(9), 9); // 9.9 rooms: only 9 whole ones
        assert_eq!(ten_percent.limit(10), 11);
        assert_eq!(Overbooking::NONE.limit(7), 7);
        for inventory in 0..500 {
            let limit = ten_percent.limit(inventory);
            assert!(limit * 100 <= inventory * 110);
            assert!((limit + 1) * 100 > inventory * 110);
        }
        assert!(Overbooking::from_ratio(0.9).is_err());
        assert!(Overbooking::from_ratio(f64::NAN).is_err());
        assert!(Overbooking::from_percent(250).is_err());
    }

    #[test]
    fn status_machine() {
        use Status::*;
        assert_eq!(transition(Pending, Event::Pay), Transition::To(Paid));
        assert_eq!(transition(Paid, Event::CheckIn), Transition::To(CheckedIn));
        assert_eq!(transition(Pending, Event::Cancel), Transition::To(Canceled));
        assert_eq!(transition(Paid, Event::Cancel), Transition::To(Refunded));
        assert_eq!(transition(Pending, Event::Reject), Transition::To(Rejected));
        assert_eq!(transition(Canceled, Event::Cancel), Transition::Already);
        assert_eq!(transition(Canceled, Event::Pay), Transition::Invalid);
        assert_eq!(transition(Pending, Event::CheckIn), Transition::Invalid);
        assert_eq!(transition(CheckedIn, Event::Cancel), Transition::Invalid);
        // Terminal statuses accept nothing new; released ones hold no rooms.
        for from in Status::ALL {
            for event in [Event::Pay, Event::Reject, Event::Cancel, Event::CheckIn] {
                if let Transition::To(to) = transition(from, event) {
                    assert!(from.holds_rooms(), "{from:?} moved");
                    assert_ne!(from, to);
                }
            }
            assert_eq!(Status::parse(from.as_str()), Some(from));
        }
        assert!(!Refunded.holds_rooms() && !Rejected.holds_rooms() && !Canceled.holds_rooms());
    }
}
