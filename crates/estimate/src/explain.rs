//! Formula lines: the estimate written out the way it is said aloud.
//!
//! The chapter's point is the reasoning, not the number, so every figure
//! comes with the arithmetic that produced it ("QPS = 300M tweets / 86,400 s
//! = 3,472"). [`explain`] rebuilds the chain of [`crate::capacity`] as
//! [`Line`]s, attaching the notes' own figure where a preset has one.

use serde::Serialize;

use crate::capacity::{Assumptions, Estimate, Mix, Population, SECONDS_PER_DAY, Volume};
use crate::presets::NotesFigure;
use crate::units::{bytes, count, exact};

/// Which output a line (or a notes figure) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Daily active users.
    Dau,
    /// Actions per day.
    ActionsPerDay,
    /// Backend requests per day.
    RequestsPerDay,
    /// Average requests per second.
    Qps,
    /// Average writes per second.
    WriteQps,
    /// Average reads per second.
    ReadQps,
    /// Peak requests per second.
    PeakQps,
    /// Object bytes stored per day (when media is sized separately).
    ObjectStoragePerDay,
    /// Media bytes stored per day (when objects are sized separately).
    MediaStoragePerDay,
    /// All bytes stored per day.
    StoragePerDay,
    /// All bytes stored per month.
    StoragePerMonth,
    /// Objects kept over the retention period.
    RecordsRetained,
    /// Bytes kept over the retention period.
    StorageRetained,
}

/// How a line's value is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A number of things.
    Count,
    /// Things per second.
    PerSecond,
    /// Bytes.
    Bytes,
}

/// One step of the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// What it computes.
    pub metric: Metric,
    /// Its name, as printed ("Peak QPS").
    pub label: String,
    /// The arithmetic, operands in human units ("3,472 × 2").
    pub formula: String,
    /// The result in plain units.
    pub value: f64,
    /// How `value` is measured.
    pub unit: Unit,
    /// The result in full ("3,472" or "54.75 PB").
    pub exact: String,
    /// The result with a unit suffix ("3.47K").
    pub human: String,
    /// What the notes say, when the preset has the figure.
    pub notes: Option<NotesFigure>,
}

fn line(metric: Metric, label: String, formula: String, value: f64, unit: Unit) -> Line {
    let (exact, human) = match unit {
        Unit::Bytes => (bytes(value), bytes(value)),
        Unit::Count | Unit::PerSecond => (exact(value), count(value)),
    };
    Line {
        metric,
        label,
        formula,
        value,
        unit,
        exact,
        human,
        notes: None,
    }
}

/// The formula lines of estimate `e` for assumptions `a`, with `notes`
/// attached to the lines they are about.
pub fn explain(a: &Assumptions, e: &Estimate, notes: &[NotesFigure]) -> Vec<Line> {
    let mut lines = traffic_lines(a, e);
    lines.extend(storage_lines(a, e));
    for l in &mut lines {
        l.notes = notes.iter().find(|n| n.metric == l.metric).cloned();
    }
    lines
}

fn traffic_lines(a: &Assumptions, e: &Estimate) -> Vec<Line> {
    let name = &a.action_name;
    let mut lines = Vec::new();
    let per_day_label = format!("{} per day", capitalized(name));
    match a.volume {
        Volume::PerUser {
            population,
            actions_per_user_per_day,
        } => {
            let dau = population.dau();
            if let Population::Mau {
                mau,
                daily_active_ratio,
            } = population
            {
                let formula = format!(
                    "{} MAU × {}%",
                    count(mau),
                    exact(daily_active_ratio * 100.0)
                );
                lines.push(line(Metric::Dau, "DAU".into(), formula, dau, Unit::Count));
            }
            let formula = format!("{} DAU × {}", count(dau), exact(actions_per_user_per_day));
            lines.push(line(
                Metric::ActionsPerDay,
                per_day_label,
                formula,
                e.actions_per_day,
                Unit::Count,
            ));
        }
        Volume::PerDay { actions } => {
            let formula = format!("{} (given)", count(actions));
            lines.push(line(
                Metric::ActionsPerDay,
                per_day_label,
                formula,
                e.actions_per_day,
                Unit::Count,
            ));
        }
        Volume::PerMonth { actions } => {
            let formula = format!(
                "{} per month / {} days",
                count(actions),
                exact(a.days_per_month)
            );
            lines.push(line(
                Metric::ActionsPerDay,
                per_day_label,
                formula,
                e.actions_per_day,
                Unit::Count,
            ));
        }
    }
    let action_requests_per_day = e.actions_per_day * a.requests_per_action;
    let mut requests = format!("{} {name}", count(e.actions_per_day));
    if a.requests_per_action != 1.0 {
        let formula = format!("{requests} × {} requests", exact(a.requests_per_action));
        lines.push(line(
            Metric::RequestsPerDay,
            "Requests per day".into(),
            formula,
            action_requests_per_day,
            Unit::Count,
        ));
        requests = format!("{} requests", count(action_requests_per_day));
    }
    let seconds = exact(SECONDS_PER_DAY);
    match a.mix {
        Mix::AllWrites | Mix::AllReads => {
            let formula = format!("{requests} / {seconds} s");
            lines.push(line(
                Metric::Qps,
                "QPS".into(),
                formula,
                e.qps,
                Unit::PerSecond,
            ));
        }
        Mix::ReadsPerWrite(reads) => {
            let formula = format!("{requests} / {seconds} s");
            lines.push(line(
                Metric::WriteQps,
                "Write QPS".into(),
                formula,
                e.write_qps,
                Unit::PerSecond,
            ));
            let formula = format!("{} × {} reads per write", exact(e.write_qps), exact(reads));
            lines.push(line(
                Metric::ReadQps,
                "Read QPS".into(),
                formula,
                e.read_qps,
                Unit::PerSecond,
            ));
            let formula = format!("{} + {}", exact(e.write_qps), exact(e.read_qps));
            lines.push(line(
                Metric::Qps,
                "QPS".into(),
                formula,
                e.qps,
                Unit::PerSecond,
            ));
        }
    }
    let formula = format!("{} × {}", exact(e.qps), exact(a.peak_factor));
    lines.push(line(
        Metric::PeakQps,
        "Peak QPS".into(),
        formula,
        e.peak_qps,
        Unit::PerSecond,
    ));
    lines
}

/// "300M tweets" or "100M searches × 20%": the stored actions per day.
fn stored(a: &Assumptions, e: &Estimate) -> String {
    let mut text = format!("{} {}", count(e.actions_per_day), a.action_name);
    if a.stored_share != 1.0 {
        text.push_str(&format!(" × {}%", exact(a.stored_share * 100.0)));
    }
    text
}

fn storage_lines(a: &Assumptions, e: &Estimate) -> Vec<Line> {
    let has_objects = a.object_size_bytes > 0.0;
    let has_media = a.media_share > 0.0 && a.media_size_bytes > 0.0;
    if !has_objects && !has_media {
        return Vec::new();
    }
    let mut lines = Vec::new();
    let object_formula = format!("{} × {}", stored(a, e), bytes(a.object_size_bytes));
    let media_formula = format!(
        "{} × {}% × {}",
        stored(a, e),
        exact(a.media_share * 100.0),
        bytes(a.media_size_bytes)
    );
    let per_day = "Storage per day".to_owned();
    match (has_objects, has_media) {
        (true, true) => {
            lines.push(line(
                Metric::ObjectStoragePerDay,
                "Object storage per day".into(),
                object_formula,
                e.object_bytes_per_day,
                Unit::Bytes,
            ));
            lines.push(line(
                Metric::MediaStoragePerDay,
                "Media storage per day".into(),
                media_formula,
                e.media_bytes_per_day,
                Unit::Bytes,
            ));
            let formula = format!(
                "{} + {}",
                bytes(e.object_bytes_per_day),
                bytes(e.media_bytes_per_day)
            );
            lines.push(line(
                Metric::StoragePerDay,
                per_day,
                formula,
                e.storage_per_day_bytes,
                Unit::Bytes,
            ));
        }
        (true, false) => lines.push(line(
            Metric::StoragePerDay,
            per_day,
            object_formula,
            e.storage_per_day_bytes,
            Unit::Bytes,
        )),
        (false, _) => lines.push(line(
            Metric::StoragePerDay,
            format!("{per_day} (media)"),
            media_formula,
            e.storage_per_day_bytes,
            Unit::Bytes,
        )),
    }
    let monthly = match a.volume {
        Volume::PerMonth { actions } if !has_media && a.stored_share == 1.0 => {
            format!(
                "{} {} × {}",
                count(actions),
                a.action_name,
                bytes(a.object_size_bytes)
            )
        }
        _ => format!(
            "{} × {} days",
            bytes(e.storage_per_day_bytes),
            exact(a.days_per_month)
        ),
    };
    lines.push(line(
        Metric::StoragePerMonth,
        "Storage per month".into(),
        monthly,
        e.storage_per_month_bytes,
        Unit::Bytes,
    ));
    lines.extend(retention_lines(a, e, has_media));
    lines
}

fn retention_lines(a: &Assumptions, e: &Estimate, has_media: bool) -> Vec<Line> {
    let (Some(years), Some(records), Some(retained)) = (
        a.retention_years,
        e.records_retained,
        e.storage_retained_bytes,
    ) else {
        return Vec::new();
    };
    let over = format!("over {} years", exact(years));
    let days = exact(a.days_per_year);
    let formula = format!(
        "{} {}/day × {days} days × {}",
        count(e.stored_per_day),
        a.action_name,
        exact(years)
    );
    let mut lines = vec![line(
        Metric::RecordsRetained,
        format!("Records {over}"),
        formula,
        records,
        Unit::Count,
    )];
    let formula = match a.volume {
        Volume::PerMonth { .. } => format!(
            "{} × {} months × {}",
            bytes(e.storage_per_month_bytes),
            exact(a.days_per_year / a.days_per_month),
            exact(years)
        ),
        _ if !has_media => format!(
            "{} records × {}",
            count(records),
            bytes(a.object_size_bytes)
        ),
        _ => format!(
            "{} × {days} days × {}",
            bytes(e.storage_per_day_bytes),
            exact(years)
        ),
    };
    lines.push(line(
        Metric::StorageRetained,
        format!("Storage {over}"),
        formula,
        retained,
        Unit::Bytes,
    ));
    lines
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
