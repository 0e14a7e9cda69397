//! `hyperscale bench mq` end to end against a real `hyperscale mq serve`
//! child, with a tiny record count: every record produced is consumed, the
//! `--json` report parses and holds the numbers, so the bench cannot rot.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::common;

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use common::{hyperscale, serve, wait_output};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn bench_mq_produces_and_consumes_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["mq", "serve", "--bind", "127.0.0.1:0", "--data-dir"];
    let args = args.iter().map(OsStr::new).chain([data.as_os_str()]);
    let (_guard, _lines, banner) = serve(args, WAIT);
    let bootstrap = banner
        .strip_prefix("mq broker on ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    let bench = hyperscale()
        .args(["bench", "mq", "--bootstrap", &bootstrap])
        .args([
            "--records",
            "3000",
            "--batch-size",
            "100",
            "--partitions",
            "3",
        ])
        .args(["--producers", "2", "--consumers", "2", "--acks", "all"])
        .args(["--compression", "lz4", "--idle-timeout-secs", "5", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_output(bench, WAIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    assert!(
        stderr.contains("produced"),
        "no progress on stderr: {stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["produced"], 3000, "{report}");
    assert_eq!(report["consumed"], 3000, "{report}");
    assert!(report["produce_records_per_sec"].as_f64().unwrap() > 0.0);
    let (p50, p99) = (
        report["e2e_p50_ms"].as_f64().unwrap(),
        report["e2e_p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{report}");
}
