//! `hyperscale bench metrics` against our own `metrics serve`, small: every
//! sample it reports sent is in the server afterwards, its dashboard runs,
//! and flags out of bounds are refused before anything is sent.

use std::time::Duration;

use crate::common::{get, hyperscale, serve};

#[test]
fn bench_metrics_lands_every_sample_and_runs_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", testkit::free_port());
    let data = dir.path().join("m");
    let (_guard, _lines, banner) = serve(
        [
            "metrics",
            "serve",
            "--bind",
            &api,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(banner.contains("metrics listening"), "{banner}");
    let end_ms = (clock::now_ms() as i64) / 15_000 * 15_000;
    let out = hyperscale()
        .args(["bench", "metrics", "--server", &format!("http://{api}")])
        .args(["--series", "200", "--points", "40", "--writers", "3"])
        .args(["--samples-per-request", "150", "--query-repeats", "1"])
        .args(["--end-ms", &end_ms.to_string(), "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ingest"]["errors"], 0, "{report}");
    assert_eq!(report["ingest"]["samples"], 8000, "{report}");
    let queries = report["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 20, "{report}");
    assert_eq!(queries[0]["series"], 1, "count() is one series: {report}");
    // Every sample is in the server: 200 series × 40 points in 10 minutes
    // (a second past the end: one scrape in ten is up to 3 ms late).
    let q = "sum(count_over_time(%7Bjob%3D%22node%22%7D%5B15m%5D))";
    let (status, body) = get(&format!(
        "http://{api}/api/v1/query?query={q}&time={}",
        end_ms / 1000 + 1
    ));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""8000"]"#), "{body}");

    // Out-of-bounds flags: a clear error, nothing sent.
    let out = hyperscale()
        .args(["bench", "metrics", "--server", &format!("http://{api}")])
        .args(["--writers", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--writers"));
}
