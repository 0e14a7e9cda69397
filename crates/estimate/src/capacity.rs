//! The capacity model: from users and habits to QPS and storage.
//!
//! Every worked example in the notes follows one chain of reasoning:
//!
//! ```text
//! DAU             = MAU × daily-active share                 (or given)
//! actions per day = DAU × actions per user per day           (or given per day / month)
//! QPS             = actions per day × requests per action / 86,400 s
//! read / write    = split by the read:write ratio
//! peak QPS        = QPS × peak factor
//! storage per day = stored actions per day × (object size + media share × media size)
//! retained        = storage per day × days per year × retention years
//! ```
//!
//! [`Assumptions`] holds the inputs, [`estimate`] walks the chain and
//! returns the numbers in an [`Estimate`]; [`crate::explain`] turns the same
//! chain into the formula lines a person would write on the whiteboard.

use serde::Serialize;

use crate::error::EstimateError;

/// Seconds in a day: the denominator of every QPS in the notes.
pub const SECONDS_PER_DAY: f64 = 86_400.0;

/// Who generates the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Population {
    /// Daily active users, given directly.
    Dau {
        /// Daily active users.
        dau: f64,
    },
    /// Monthly active users and the share of them active on a given day.
    Mau {
        /// Monthly active users.
        mau: f64,
        /// Share (0..=1) of monthly users active each day.
        daily_active_ratio: f64,
    },
}

impl Population {
    /// Daily active users.
    pub fn dau(&self) -> f64 {
        match *self {
            Population::Dau { dau } => dau,
            Population::Mau {
                mau,
                daily_active_ratio,
            } => mau * daily_active_ratio,
        }
    }
}

/// How many actions (tweets, clicks, pages, URLs, searches) happen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Volume {
    /// Users times actions per user per day.
    PerUser {
        /// The users.
        population: Population,
        /// Actions each user performs per day.
        actions_per_user_per_day: f64,
    },
    /// A daily total (e.g. "100 million URLs a day").
    PerDay {
        /// Actions per day.
        actions: f64,
    },
    /// A monthly total (e.g. "1 billion pages a month").
    PerMonth {
        /// Actions per month.
        actions: f64,
    },
}

/// How requests split into reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reads_per_write")]
pub enum Mix {
    /// Every request writes (posting tweets, logging clicks, storing pages).
    AllWrites,
    /// Every request reads (autocomplete queries).
    AllReads,
    /// Each action is a write, followed by this many reads (a URL is created
    /// once and followed ten times: 10:1).
    ReadsPerWrite(f64),
}

/// The inputs of an estimate. Sizes in bytes, shares in `0..=1`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assumptions {
    /// How many actions happen.
    pub volume: Volume,
    /// What an action is called in formula lines ("tweets", "pages").
    pub action_name: String,
    /// Backend requests per action (autocomplete: one per keystroke, 20).
    pub requests_per_action: f64,
    /// Read/write split of the requests.
    pub mix: Mix,
    /// Peak QPS over average QPS (the notes use 2, and 5 for ad clicks).
    pub peak_factor: f64,
    /// Bytes stored per stored action (a URL record, a click event).
    pub object_size_bytes: f64,
    /// Share of actions that store something (autocomplete: 20% are new).
    pub stored_share: f64,
    /// Share of stored actions that carry media (tweets: 10%).
    pub media_share: f64,
    /// Bytes of media per media-carrying action.
    pub media_size_bytes: f64,
    /// How long data is kept; `None` when the notes size no retention.
    pub retention_years: Option<f64>,
    /// Days in a month: 30, as the notes count.
    pub days_per_month: f64,
    /// Days in a year: 365, or 360 where the notes count 12 months of 30 days.
    pub days_per_year: f64,
}

impl Assumptions {
    /// Neutral assumptions for a volume: one request per action, all writes,
    /// peak 2x, nothing stored, 30-day months and 365-day years.
    pub fn new(volume: Volume) -> Self {
        Assumptions {
            volume,
            action_name: "actions".to_owned(),
            requests_per_action: 1.0,
            mix: Mix::AllWrites,
            peak_factor: 2.0,
            object_size_bytes: 0.0,
            stored_share: 1.0,
            media_share: 0.0,
            media_size_bytes: 0.0,
            retention_years: None,
            days_per_month: 30.0,
            days_per_year: 365.0,
        }
    }

    /// Refuses NaN, infinite or negative inputs and shares above 1.
    pub fn validate(&self) -> Result<(), EstimateError> {
        let check = |name, value: f64, min: f64, max: f64, expected| {
            if value.is_finite() && (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(EstimateError::Invalid {
                    name,
                    value,
                    expected,
                })
            }
        };
        let count = "a finite number of 0 or more";
        let share = "a share between 0 and 1 (0% to 100%)";
        match self.volume {
            Volume::PerUser {
                population,
                actions_per_user_per_day,
            } => {
                match population {
                    Population::Dau { dau } => check("dau", dau, 0.0, f64::MAX, count)?,
                    Population::Mau {
                        mau,
                        daily_active_ratio,
                    } => {
                        check("mau", mau, 0.0, f64::MAX, count)?;
                        check("daily-active-ratio", daily_active_ratio, 0.0, 1.0, share)?;
                    }
                }
                check(
                    "actions-per-user",
                    actions_per_user_per_day,
                    0.0,
                    f64::MAX,
                    count,
                )?;
            }
            Volume::PerDay { actions } => check("per-day", actions, 0.0, f64::MAX, count)?,
            Volume::PerMonth { actions } => check("per-month", actions, 0.0, f64::MAX, count)?,
        }
        if let Mix::ReadsPerWrite(r) = self.mix {
            check("read-write-ratio", r, 0.0, f64::MAX, count)?;
        }
        check(
            "requests-per-action",
            self.requests_per_action,
            0.0,
            f64::MAX,
            count,
        )?;
        check(
            "peak-factor",
            self.peak_factor,
            1.0,
            f64::MAX,
            "at least 1 (a peak is never below the average)",
        )?;
        check("object-size", self.object_size_bytes, 0.0, f64::MAX, count)?;
        check("stored-share", self.stored_share, 0.0, 1.0, share)?;
        check("media-share", self.media_share, 0.0, 1.0, share)?;
        check("media-size", self.media_size_bytes, 0.0, f64::MAX, count)?;
        if let Some(years) = self.retention_years {
            check(
                "retention-years",
                years,
                0.0,
                1e6,
                "between 0 and a million years",
            )?;
        }
        check(
            "days-per-month",
            self.days_per_month,
            1.0,
            31.0,
            "between 1 and 31",
        )?;
        check(
            "days-per-year",
            self.days_per_year,
            1.0,
            366.0,
            "between 1 and 366",
        )?;
        Ok(())
    }
}

/// The outputs of an estimate, in plain units (per second, bytes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Daily active users, when the volume is per user.
    pub dau: Option<f64>,
    /// Actions per day.
    pub actions_per_day: f64,
    /// Backend requests per day, reads included.
    pub requests_per_day: f64,
    /// Average requests per second.
    pub qps: f64,
    /// Peak requests per second.
    pub peak_qps: f64,
    /// Average reads per second.
    pub read_qps: f64,
    /// Average writes per second.
    pub write_qps: f64,
    /// Actions per day that store an object.
    pub stored_per_day: f64,
    /// Bytes of objects (records, events) stored per day.
    pub object_bytes_per_day: f64,
    /// Bytes of media stored per day.
    pub media_bytes_per_day: f64,
    /// All bytes stored per day.
    pub storage_per_day_bytes: f64,
    /// All bytes stored per month.
    pub storage_per_month_bytes: f64,
    /// Objects kept over the retention period.
    pub records_retained: Option<f64>,
    /// Bytes kept over the retention period.
    pub storage_retained_bytes: Option<f64>,
}

/// Walks the chain of reasoning for `assumptions`.
pub fn estimate(a: &Assumptions) -> Result<Estimate, EstimateError> {
    a.validate()?;
    let (dau, actions_per_day) = match a.volume {
        Volume::PerUser {
            population,
            actions_per_user_per_day,
        } => (
            Some(population.dau()),
            population.dau() * actions_per_user_per_day,
        ),
        Volume::PerDay { actions } => (None, actions),
        Volume::PerMonth { actions } => (None, actions / a.days_per_month),
    };
    // Per-day totals first, divided once, so round inputs stay round.
    let action_requests = actions_per_day * a.requests_per_action;
    let (writes_per_day, reads_per_day) = match a.mix {
        Mix::AllWrites => (action_requests, 0.0),
        Mix::AllReads => (0.0, action_requests),
        Mix::ReadsPerWrite(reads) => (action_requests, action_requests * reads),
    };
    let requests_per_day = writes_per_day + reads_per_day;
    let (write_qps, read_qps) = (
        writes_per_day / SECONDS_PER_DAY,
        reads_per_day / SECONDS_PER_DAY,
    );
    let qps = requests_per_day / SECONDS_PER_DAY;
    let stored_per_day = actions_per_day * a.stored_share;
    let object_bytes_per_day = stored_per_day * a.object_size_bytes;
    let media_bytes_per_day = stored_per_day * a.media_share * a.media_size_bytes;
    let storage_per_day_bytes = object_bytes_per_day + media_bytes_per_day;
    let retained_days = a.retention_years.map(|years| a.days_per_year * years);
    Ok(Estimate {
        dau,
        actions_per_day,
        requests_per_day,
        qps,
        peak_qps: qps * a.peak_factor,
        read_qps,
        write_qps,
        stored_per_day,
        object_bytes_per_day,
        media_bytes_per_day,
        storage_per_day_bytes,
        storage_per_month_bytes: storage_per_day_bytes * a.days_per_month,
        records_retained: retained_days.map(|days| stored_per_day * days),
        storage_retained_bytes: retained_days.map(|days| storage_per_day_bytes * days),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_meaningless_assumptions() {
        let mut a = Assumptions::new(Volume::PerDay { actions: 1e6 });
        assert!(estimate(&a).is_ok());
        a.peak_factor = 0.5;
        assert!(matches!(
            estimate(&a),
            Err(EstimateError::Invalid {
                name: "peak-factor",
                ..
            })
        ));
        a.peak_factor = 2.0;
        a.media_share = 1.5;
        assert!(matches!(
            estimate(&a),
            Err(EstimateError::Invalid {
                name: "media-share",
                ..
            })
        ));
        a.media_share = 0.0;
        a.volume = Volume::PerDay { actions: f64::NAN };
        assert!(matches!(
            estimate(&a),
            Err(EstimateError::Invalid {
                name: "per-day",
                ..
            })
        ));
    }

    #[test]
    fn per_month_volume_uses_the_month_length() {
        let mut a = Assumptions::new(Volume::PerMonth { actions: 3e6 });
        a.object_size_bytes = 10.0;
        let e = estimate(&a).unwrap();
        assert!((e.actions_per_day - 1e5).abs() < 1e-6);
        assert!((e.storage_per_month_bytes - 3e7).abs() < 1e-3);
        assert_eq!(e.records_retained, None);
    }
}
