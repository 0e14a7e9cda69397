//! Back-of-the-envelope estimation: QPS, storage, the nines and latency
//! numbers (*System Design Interview*, vol. 1, ch. 2, "개략적인 규모 추정",
//! and the estimation step of every later chapter).
//!
//! # What it is for
//!
//! Before designing, size the problem: how many requests per second at
//! average and at peak, how much data per day and over the retention period.
//! The chapter teaches a chain of simple multiplications over round,
//! commonly known numbers; being right within a factor of ~2 is the goal,
//! and *showing the reasoning* matters more than the digits. This crate
//! does the same chain, exactly, and prints every step.
//!
//! # The pieces
//!
//! - [`capacity`]: the model. [`Assumptions`] (users or a daily/monthly
//!   volume, actions per user, requests per action, read:write mix, peak
//!   factor, object and media sizes, retention) go into [`estimate()`], which
//!   returns an [`Estimate`] in plain units (per second, bytes).
//! - [`explain`]: the same chain as formula lines ("QPS = 300M tweets /
//!   86,400 s = 3,472"), each with its exact and human-unit value.
//! - [`presets`]: the notes' worked examples (Twitter, URL shortener, web
//!   crawler, ad click aggregation, search autocomplete) with the figures the
//!   notes give, so exact arithmetic and the notes' rounding are side by side.
//!   The tests hold our arithmetic to the notes' numbers.
//! - [`availability`]: the nines table, in exact integer arithmetic.
//! - [`latency`]: Jeff Dean's latency numbers and the notes' lessons.
//! - [`units`]: K/M/B counts and decimal KB..PB sizes, in and out.
//!
//! # Conventions (the knobs)
//!
//! - A day is 86,400 s. A month is 30 days and a year 365 days in capacity
//!   estimates (as the notes count); presets that follow the notes' "12
//!   months" set a 360-day year. Availability uses 365.25-day years and
//!   365.25/12-day months, as the notes' nines table does.
//! - Sizes are decimal: 1 KB = 1,000 bytes, 1 PB = 10^15 bytes.
//! - The peak factor defaults to 2 (the notes' usual "peak = 2 x QPS").
//!
//! The crate is pure: no I/O, no clocks, every output `serde::Serialize`.
#![warn(missing_docs)]

pub mod availability;
pub mod capacity;
mod error;
pub mod explain;
pub mod latency;
pub mod presets;
pub mod units;

pub use capacity::{Assumptions, Estimate, Mix, Population, Volume, estimate};
pub use error::{EstimateError, ParseError};
pub use explain::{Line, Metric, explain};
pub use presets::{NotesFigure, Preset};

/// An estimate with its reasoning: what `hyperscale estimate --json` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The preset it started from, if any.
    pub preset: Option<&'static str>,
    /// The assumptions used.
    pub assumptions: Assumptions,
    /// The numbers.
    pub estimate: Estimate,
    /// The formula lines, with the notes' figures where known.
    pub lines: Vec<Line>,
}

/// Estimates `assumptions` and explains the result, attaching `notes`.
pub fn report(
    preset: Option<&'static str>,
    assumptions: Assumptions,
    notes: &[NotesFigure],
) -> Result<Report, EstimateError> {
    let estimate = estimate(&assumptions)?;
    let lines = explain(&assumptions, &estimate, notes);
    Ok(Report {
        preset,
        assumptions,
        estimate,
        lines,
    })
}
