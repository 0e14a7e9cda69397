//! Range-query latency over data in the head: `cargo run --release -p tsdb
//! --example query_bench -- [series] [hours] [runs]`. Writes `series`
//! counters scraped every 15 s for `hours`, then times dashboard-style range
//! queries over the whole span at a 60 s step (median of `runs`).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use tsdb::promql::{QueryLimits, range_query};

fn main() {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: i64| args.get(i).copied().unwrap_or(d);
    let (series, hours, runs) = (arg(0, 200), arg(1, 6), arg(2, 5));
    let dir = tempfile::tempdir().unwrap();
    let opts = tsdb::Options {
        limits: tsdb::Limits {
            future_tolerance_ms: None,
            ..tsdb::Limits::default()
        },
        maintenance_interval_ms: 0,
        ..tsdb::Options::default()
    };
    let db = tsdb::Db::open(dir.path(), opts).unwrap();
    let labels: Vec<tsdb::Labels> = (0..series)
        .map(|i| {
            let (job, inst) = (format!("job{}", i % 4), format!("host{i}:9100"));
            db.labels([
                ("__name__", "http_requests_total"),
                ("job", &job),
                ("instance", &inst),
            ])
            .unwrap()
        })
        .collect();
    let end_ms = hours * 3_600_000;
    let mut t = 0;
    while t <= end_ms {
        let batch = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), vec![(t, (t / 1000 * (i as i64 + 1)) as f64)]))
            .collect();
        let _visible_now = db.append(batch).unwrap();
        t += 15_000;
    }
    db.append(Vec::new()).unwrap().wait().unwrap();
    let limits = QueryLimits::default();
    for q in [
        "http_requests_total",
        "sum by (job) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.9, sum by (job, le) (rate(http_requests_total[5m])))",
        "max_over_time(http_requests_total[1h]) - min_over_time(http_requests_total[1h])",
    ] {
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                range_query(&db, q, 0, end_ms, 60_000, &limits).unwrap();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!("{:>10.1} ms  {q}", times[times.len() / 2]);
    }
}
