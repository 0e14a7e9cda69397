//! Rule evaluation benchmark: 1,000 rules (500 recording, 500 alerting)
//! over 100,000 series, one evaluation round timed (median of 3), and the
//! same data and rules written out for Prometheus (`--prom-dir DIR`:
//! `data.om` for `promtool tsdb create-blocks-from openmetrics`, and
//! `rules.yml`), so BENCHMARKS.md can compare the two on one machine.
//!
//! `cargo run --release -p alerting --example rules_bench [-- --prom-dir DIR]`
// A benchmark may unwrap: a failure ends it with the reason.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use alerting::rules::{RuleManager, RuleOptions, parse_rule_file};
use tsdb::{Db, Options};

const INSTANCES: usize = 1000;
const CPUS: usize = 100;
const SAMPLES: i64 = 10;
const STEP_MS: i64 = 15_000;

fn main() {
    let prom_dir = std::env::args().skip_while(|a| a != "--prom-dir").nth(1);
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    let now_ms = i64::try_from(clock::now_ms()).unwrap() / 1000 * 1000;
    let start_ms = now_ms - (SAMPLES - 1) * STEP_MS;
    let value =
        |i: usize, c: usize, k: i64| ((i * 31 + c * 7) % 100) as f64 / 100.0 + k as f64 * 0.001;
    let loaded = Instant::now();
    for i in 0..INSTANCES {
        let mut batch = Vec::with_capacity(CPUS);
        for c in 0..CPUS {
            let l = db
                .labels([
                    ("__name__", "node_cpu".to_string()),
                    ("instance", format!("i{i}")),
                    ("cpu", format!("c{c}")),
                ])
                .unwrap();
            batch.push((
                l,
                (0..SAMPLES)
                    .map(|k| (start_ms + k * STEP_MS, value(i, c, k)))
                    .collect(),
            ));
        }
        db.append(batch).unwrap().wait().unwrap();
    }
    eprintln!(
        "loaded {} series in {:?}",
        INSTANCES * CPUS,
        loaded.elapsed()
    );
    let mut rules = String::from("groups:\n- name: bench\n  interval: 1m\n  rules:\n");
    for i in 0..500 {
        let _ = writeln!(
            rules,
            "  - record: instance:node_cpu:avg_{i}\n    expr: avg by (instance) (node_cpu{{instance=\"i{i}\"}})"
        );
        let _ = writeln!(
            rules,
            "  - alert: CpuHigh{i}\n    expr: max by (instance, cpu) (node_cpu{{instance=\"i{}\"}}) > 0.9\n    for: 5m\n    labels:\n      severity: page\n    annotations:\n      summary: '{{{{ $labels.instance }}}} cpu {{{{ $labels.cpu }}}} at {{{{ $value | humanizePercentage }}}}'",
            500 + i
        );
    }
    let file = parse_rule_file("rules.yml", &rules).unwrap();
    let m = RuleManager::new(db.clone(), vec![file], RuleOptions::default());
    let mut times = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        let tr = m.eval_all_at(now_ms + round * 1000);
        times.push(t.elapsed().as_secs_f64());
        if round == 0 {
            eprintln!("round 0: {} alert transitions", tr.len());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "ours: 1000 rules over {} series: median {:.3} s per evaluation round (rounds {:?})",
        INSTANCES * CPUS,
        times[1],
        times
    );
    if let Some(out) = prom_dir {
        let out = std::path::Path::new(&out);
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(out.join("rules.yml"), &rules).unwrap();
        let mut om = String::from("# TYPE node_cpu gauge\n");
        for i in 0..INSTANCES {
            for c in 0..CPUS {
                for k in 0..SAMPLES {
                    let _ = writeln!(
                        om,
                        "node_cpu{{instance=\"i{i}\",cpu=\"c{c}\"}} {} {}",
                        value(i, c, k),
                        (start_ms + k * STEP_MS) / 1000
                    );
                }
            }
        }
        om.push_str("# EOF\n");
        std::fs::write(out.join("data.om"), om).unwrap();
        println!(
            "wrote {}/data.om and rules.yml (data ends at {now_ms} ms)",
            out.display()
        );
    }
}
