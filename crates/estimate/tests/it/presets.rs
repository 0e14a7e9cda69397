//! The notes' worked examples, recomputed: every figure the notes give must
//! come out of our arithmetic within the notes' own rounding, and the exact
//! values must be the notes' formulas evaluated without rounding.

use estimate::presets::{self, NAMES};
use estimate::{Metric, Report, report};

fn run(name: &str) -> Report {
    let preset = presets::preset(name).expect("preset exists");
    report(Some(preset.name), preset.assumptions, &preset.notes).expect("preset is valid")
}

fn value(report: &Report, metric: Metric) -> f64 {
    report
        .lines
        .iter()
        .find(|l| l.metric == metric)
        .unwrap_or_else(|| panic!("{:?} has no {metric:?} line", report.preset))
        .value
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= want.abs() * 1e-9,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn every_notes_figure_is_within_the_notes_rounding() {
    for name in NAMES {
        let report = run(name);
        let preset = presets::preset(name).unwrap();
        assert!(!preset.notes.is_empty(), "{name} has notes figures");
        for figure in &preset.notes {
            let line = report
                .lines
                .iter()
                .find(|l| l.metric == figure.metric)
                .unwrap_or_else(|| panic!("{name}: no line for {:?}", figure.metric));
            assert_eq!(line.notes.as_ref(), Some(figure), "{name}: figure attached");
            let off_pct = (line.value - figure.value).abs() / figure.value * 100.0;
            let allowed = figure.tolerance_pct.max(1e-7);
            assert!(
                off_pct <= allowed,
                "{name} {:?}: ours {} vs notes {} is {off_pct:.3}% off, allowed {allowed}%",
                figure.metric,
                line.value,
                figure.text
            );
        }
    }
}

#[test]
fn twitter_matches_the_notes() {
    let r = run("twitter");
    assert_close(value(&r, Metric::Dau), 150e6, "DAU = 300M x 50%");
    assert_close(value(&r, Metric::Qps), 150e6 * 2.0 / 86_400.0, "QPS");
    assert_eq!(
        r.lines
            .iter()
            .find(|l| l.metric == Metric::Qps)
            .unwrap()
            .exact,
        "3,472"
    );
    assert_close(
        value(&r, Metric::PeakQps),
        150e6 * 2.0 / 86_400.0 * 2.0,
        "peak",
    );
    assert_close(
        value(&r, Metric::StoragePerDay),
        30e12,
        "30 TB/day of media",
    );
    assert_close(
        value(&r, Metric::StorageRetained),
        30e12 * 365.0 * 5.0,
        "30 TB x 365 x 5",
    );
    let retained = r
        .lines
        .iter()
        .find(|l| l.metric == Metric::StorageRetained)
        .unwrap();
    assert_eq!(retained.exact, "54.75 PB");
    assert_eq!(retained.notes.as_ref().unwrap().text, "≈55 PB");
}

#[test]
fn shortener_matches_the_notes() {
    let r = run("shortener");
    assert_close(value(&r, Metric::WriteQps), 1e8 / 86_400.0, "writes/s");
    assert_close(value(&r, Metric::ReadQps), 1e9 / 86_400.0, "reads/s");
    assert_close(value(&r, Metric::Qps), 1.1e9 / 86_400.0, "read + write");
    assert_close(
        value(&r, Metric::RecordsRetained),
        365e9,
        "365 billion records",
    );
    assert_close(value(&r, Metric::StorageRetained), 36.5e12, "36.5 TB");
    let records = r
        .lines
        .iter()
        .find(|l| l.metric == Metric::RecordsRetained)
        .unwrap();
    assert_eq!(records.human, "365B");
}

#[test]
fn crawler_matches_the_notes() {
    let r = run("crawler");
    assert_close(value(&r, Metric::Qps), 1e9 / 30.0 / 86_400.0, "pages/s");
    assert_close(
        value(&r, Metric::PeakQps),
        2.0 * 1e9 / 30.0 / 86_400.0,
        "peak",
    );
    assert_close(value(&r, Metric::StoragePerMonth), 500e12, "500 TB/month");
    assert_close(
        value(&r, Metric::StorageRetained),
        500e12 * 12.0 * 5.0,
        "500 TB x 12 x 5",
    );
    let retained = r
        .lines
        .iter()
        .find(|l| l.metric == Metric::StorageRetained)
        .unwrap();
    assert_eq!(retained.formula, "500 TB × 12 months × 5");
}

#[test]
fn adclick_matches_the_notes() {
    let r = run("adclick");
    assert_close(value(&r, Metric::Qps), 1e9 / 86_400.0, "clicks/s");
    assert_close(value(&r, Metric::PeakQps), 5.0 * 1e9 / 86_400.0, "peak 5x");
    assert_close(value(&r, Metric::StoragePerDay), 100e9, "100 GB/day");
    assert_close(value(&r, Metric::StoragePerMonth), 3e12, "3 TB/month");
}

#[test]
fn autocomplete_matches_the_notes() {
    let r = run("autocomplete");
    assert_close(
        value(&r, Metric::RequestsPerDay),
        2e9,
        "10M x 10 x 20 requests",
    );
    assert_close(value(&r, Metric::Qps), 2e9 / 86_400.0, "QPS");
    assert_close(value(&r, Metric::PeakQps), 4e9 / 86_400.0, "peak");
    assert_close(
        value(&r, Metric::StoragePerDay),
        0.4e9,
        "0.4 GB/day of new queries",
    );
    assert_eq!(r.estimate.write_qps, 0.0, "autocomplete queries are reads");
}

#[test]
fn formula_lines_show_the_reasoning() {
    let r = run("twitter");
    let formulas: Vec<String> = r
        .lines
        .iter()
        .map(|l| format!("{} = {} = {}", l.label, l.formula, l.exact))
        .collect();
    assert_eq!(formulas[0], "DAU = 300M MAU × 50% = 150,000,000");
    assert_eq!(formulas[1], "Tweets per day = 150M DAU × 2 = 300,000,000");
    assert_eq!(formulas[2], "QPS = 300M tweets / 86,400 s = 3,472");
    assert_eq!(formulas[3], "Peak QPS = 3,472 × 2 = 6,944");
    assert_eq!(
        formulas[4],
        "Storage per day (media) = 300M tweets × 10% × 1 MB = 30 TB"
    );
}

#[test]
fn reports_serialize_to_json() {
    let r = run("shortener");
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["preset"], "shortener");
    assert_eq!(json["assumptions"]["mix"]["kind"], "reads_per_write");
    assert_eq!(json["assumptions"]["mix"]["reads_per_write"], 10.0);
    assert!((json["estimate"]["write_qps"].as_f64().unwrap() - 1e8 / 86_400.0).abs() < 1e-6);
    let lines = json["lines"].as_array().unwrap();
    let read = lines.iter().find(|l| l["metric"] == "read_qps").unwrap();
    assert_eq!(read["notes"]["text"], "11,600");
    assert_eq!(read["unit"], "per_second");
}
