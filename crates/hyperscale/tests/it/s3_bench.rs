//! `hyperscale bench s3` against the server of [`crate::s3_clients`]: its SigV4
//! signatures pass the server's verification, every PUT and GET succeeds, and the JSON
//! report counts them; wrong credentials fail the run with a non-zero exit.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{hyperscale, wait_output};
use crate::s3_clients::S3;

fn bench(s3: &S3, secret: &str) -> std::process::Output {
    let child = hyperscale()
        .args([
            "bench",
            "s3",
            "--endpoint",
            &s3.endpoint,
            "--access-key",
            &s3.key,
        ])
        .args(["--secret-key", secret, "--bucket", "benched", "--json"])
        .args(["--sizes", "4KiB,1MiB", "--objects", "25", "--clients", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(120))
}

pub(crate) fn check(s3: &S3) {
    let out = bench(s3, &s3.secret);
    assert!(
        out.status.success(),
        "bench s3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let phases = report["phases"].as_array().unwrap();
    let got: Vec<(String, u64, u64, u64)> = phases
        .iter()
        .map(|p| {
            (
                p["op"].as_str().unwrap().to_string(),
                p["size_bytes"].as_u64().unwrap(),
                p["objects"].as_u64().unwrap(),
                p["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, u64)> = [
        ("PUT", 4096),
        ("GET", 4096),
        ("PUT", 1 << 20),
        ("GET", 1 << 20),
    ]
    .iter()
    .map(|(op, size)| (op.to_string(), *size, 25, 0))
    .collect();
    assert_eq!(got, want);
    assert!(phases.iter().all(|p| p["p99_ms"].as_f64().unwrap() > 0.0));
    // The objects are really there, at their size.
    let listed = s3.ok(&["s3", "ls", "--recursive", "s3://benched/bench-1048576/"]);
    assert_eq!(listed.lines().count(), 25, "{listed}");
    assert!(listed.contains(" 1048576 "), "{listed}");

    let out = bench(s3, "not-the-secret");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
}
