//! Differential tests against Prometheus's own tool (Debian's `prometheus`
//! ships `promtool`): the same rule files are accepted or refused by both,
//! with the same line and column; and `promtool test rules` replays the
//! fixed series through Prometheus's rule engine and checks that, at every
//! evaluation, the firing alerts (labels, annotations) and recorded samples
//! are exactly the ones ours produced.

use std::fmt::Write as _;
use std::process::Command;

use alerting::rules::{AlertState, parse_rule_file};
use tsdb::promql::{QueryLimits, QueryValue, Value, instant_query};

use crate::support::{RULES, STEP_MS, fixed_series, setup};

fn promtool(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is not installed (scripts/test installs Debian's prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `(file text, whether both must accept it, "line:col" both must report)`.
fn cases() -> Vec<(&'static str, bool, Option<&'static str>)> {
    vec![
        (RULES, true, None),
        ("groups: []\n", true, None),
        (
            "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up ==\n",
            false,
            Some("5:11"),
        ),
        (
            "groups:\n- name: a\n  rules:\n  - record: \"bad name\"\n    expr: up\n",
            false,
            Some("4:13"),
        ),
        (
            "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up\n  - alert: Y\n    expr: |\n      sum(rate(x[5m])) by\n",
            false,
            Some("7:11"),
        ),
        (
            "groups:\n- name: a\n  rules:\n  - alert: Y\n    expr: up\n    annotations:\n      s: \"{{ if }}\"\n",
            false,
            None,
        ),
        (
            "groups:\n- name: a\n  rules:\n  - alert: Y\n    expr: up\n    labels:\n      s: \"{{ nosuchfunc 1 }}\"\n",
            false,
            None,
        ),
        ("groups:\n- name: a\n  rulez: []\n", false, None),
        (
            "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up\n    for: 5x\n",
            false,
            None,
        ),
        (
            "groups:\n- name: a\n  rules:\n  - record: x\n    alert: Y\n    expr: up\n",
            false,
            None,
        ),
        ("groups:\n- name: a\n  rules:\n  - record: x\n", false, None),
        (
            "groups:\n- name: a\n  rules: []\n- name: a\n  rules: []\n",
            false,
            None,
        ),
        (
            "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n    for: 1m\n",
            false,
            None,
        ),
        (
            "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up\n    labels:\n      __name__: y\n",
            false,
            None,
        ),
        (
            "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up\n    keep_firing_for: 1m\n    annotations:\n      d: '{{ $value | humanizeDuration }} {{ $labels.instance | toUpper }}'\n",
            true,
            None,
        ),
        (
            "groups:\n  - name: a\n    rules:\n   - alert: X\n",
            false,
            None,
        ),
    ]
}

#[test]
fn check_rules_agrees_with_promtool() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, ok, pos)) in cases().into_iter().enumerate() {
        let name = format!("case{i}.yml");
        std::fs::write(dir.path().join(&name), text).unwrap();
        let (theirs_ok, theirs) = promtool(&["check", "rules", &name], dir.path());
        let ours = parse_rule_file(&name, text);
        assert_eq!(theirs_ok, ok, "promtool on case {i}:\n{text}\n{theirs}");
        assert_eq!(
            ours.is_ok(),
            ok,
            "ours on case {i}:\n{text}\n{:?}",
            ours.err()
        );
        if let Some(pos) = pos {
            let errs = ours.unwrap_err();
            let first = errs[0].to_string();
            assert!(
                first.starts_with(&format!("{name}: {pos}: ")),
                "ours: {first}"
            );
            assert!(
                theirs.contains(&format!("{name}: {pos}: ")),
                "promtool: {theirs}"
            );
        }
    }
}

#[test]
fn promtool_test_rules_confirms_our_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let (db, m) = setup(&dir.path().join("db"));
    let end_ms = 300_000;
    // Evaluate ours at every step; turn the firing alerts and recorded
    // samples into promtool's expectations.
    let mut tests = String::new();
    let mut t = 0;
    while t <= end_ms {
        m.eval_all_at(t);
        for g in m.groups() {
            for r in g.rules.iter().filter(|r| r.spec.alerting) {
                let _ = writeln!(
                    tests,
                    "      - eval_time: {}s\n        alertname: {}\n        exp_alerts:",
                    t / 1000,
                    r.spec.name
                );
                let firing: Vec<_> = r
                    .alerts
                    .values()
                    .filter(|a| a.state == AlertState::Firing)
                    .collect();
                if firing.is_empty() {
                    tests.pop();
                    tests.push_str(" []\n");
                }
                for a in firing {
                    let mut labels = a.labels.clone();
                    labels.remove("alertname");
                    let _ = writeln!(
                        tests,
                        "          - exp_labels: {}",
                        serde_json::to_string(&labels).unwrap()
                    );
                    let _ = writeln!(
                        tests,
                        "            exp_annotations: {}",
                        serde_json::to_string(&a.annotations).unwrap()
                    );
                }
            }
        }
        t += STEP_MS;
    }
    let mut exprs = String::new();
    for t in (0..=end_ms).step_by(60_000) {
        let QueryValue::Instant {
            value: Value::Vector(v),
            ..
        } = instant_query(&db, "job:up:sum", t, &QueryLimits::default()).unwrap()
        else {
            panic!("not a vector")
        };
        let _ = writeln!(
            exprs,
            "      - expr: job:up:sum\n        eval_time: {}s\n        exp_samples:",
            t / 1000
        );
        for e in v {
            let _ = writeln!(
                exprs,
                "          - labels: 'job:up:sum{{job=\"{}\"}}'\n            value: {}",
                e.metric["job"], e.value
            );
        }
    }
    let mut series = String::new();
    for (sel, _, values) in fixed_series() {
        let vals: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(
            series,
            "      - series: '{sel}'\n        values: '{}'",
            vals.join(" ")
        );
    }
    let file = format!(
        "rule_files:\n  - rules.yml\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n{series}    alert_rule_test:\n{tests}    promql_expr_test:\n{exprs}"
    );
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    std::fs::write(dir.path().join("test.yml"), &file).unwrap();
    let (ok, out) = promtool(&["test", "rules", "test.yml"], dir.path());
    assert!(
        ok,
        "promtool disagrees with our evaluation:\n{out}\n--- test file ---\n{file}"
    );
    // The expectations are not vacuous: some evaluation had a firing alert.
    assert!(file.contains("alertname: InstanceDown\n        exp_alerts:\n          - exp_labels"));
}
