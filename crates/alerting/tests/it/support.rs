//! Fixed series and rule files shared by the tests.

use std::sync::Arc;

use alerting::rules::{RuleManager, RuleOptions, parse_rule_file};
use tsdb::{Db, Options};

/// Scrape interval of the fixed series.
pub const STEP_MS: i64 = 15_000;

/// `(series selector, labels, values at 0, 15 s, 30 s, ...)`.
pub type Fixed = Vec<(&'static str, Vec<(&'static str, &'static str)>, Vec<f64>)>;

/// Instance `a` is always up; `b` goes down at 60 s and returns at 180 s;
/// `c` flaps: down for one scrape at 45 s and again from 120 s to 150 s.
pub fn fixed_series() -> Fixed {
    let n = 21; // 0 .. 300 s
    let b: Vec<f64> = (0..n)
        .map(|i| if (4..12).contains(&i) { 0.0 } else { 1.0 })
        .collect();
    let c: Vec<f64> = (0..n)
        .map(|i| {
            if i == 3 || (8..10).contains(&i) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    vec![
        (
            "up{job=\"api\",instance=\"a\"}",
            vec![("__name__", "up"), ("job", "api"), ("instance", "a")],
            vec![1.0; n],
        ),
        (
            "up{job=\"api\",instance=\"b\"}",
            vec![("__name__", "up"), ("job", "api"), ("instance", "b")],
            b,
        ),
        (
            "up{job=\"db\",instance=\"c\"}",
            vec![("__name__", "up"), ("job", "db"), ("instance", "c")],
            c,
        ),
    ]
}

/// Rules exercising `for`, `keep_firing_for`, label and annotation
/// templates and recording rules (valid for promtool too).
pub const RULES: &str = r#"groups:
- name: availability
  interval: 15s
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: InstanceDown
    expr: up == 0
    for: 30s
    labels:
      severity: page
      team: '{{ $labels.job }}-oncall'
    annotations:
      summary: 'Instance {{ $labels.instance }} of {{ $labels.job }} is down'
      value: '{{ $value | humanize }} ({{ printf "%.1f" $value }})'
  - alert: JobDegraded
    expr: job:up:sum{job="db"} < 1
    keep_firing_for: 30s
    labels:
      severity: ticket
    annotations:
      description: '{{ $labels.job }} has {{ $value }} instances up'
"#;

/// A database holding [`fixed_series`] and a manager over [`RULES`].
pub fn setup(dir: &std::path::Path) -> (Arc<Db>, RuleManager) {
    let db = Arc::new(Db::open(dir, Options::default()).unwrap());
    let mut batch = Vec::new();
    for (_, labels, values) in fixed_series() {
        let l = db.labels(labels).unwrap();
        let samples = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * STEP_MS, *v))
            .collect();
        batch.push((l, samples));
    }
    db.append(batch).unwrap().wait().unwrap();
    let file = parse_rule_file("rules.yml", RULES).unwrap();
    let m = RuleManager::new(db.clone(), vec![file], RuleOptions::default());
    (db, m)
}
