//! Every reporting verb, with its stdout a pipe whose reader has already
//! gone (`hyperscale id next --count 100000 | head -1`): the report is cut
//! short quietly — no panic message, a clean exit.

use crate::common;

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use common::{Guard, Lines, hyperscale, interrupt_and_wait, serve, wait_output};

/// Runs `hyperscale args...` with stdout's reader closed before the child
/// writes anything; returns stderr after asserting a clean exit.
fn run_with_closed_stdout(args: &[&str]) -> String {
    let mut child = hyperscale()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hyperscale");
    drop(child.stdout.take()); // The reader is gone: every write is EPIPE.
    let output = wait_output(child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        output.status.success(),
        "{args:?}: {}: {stderr}",
        output.status
    );
    stderr
}

#[test]
fn reporting_verbs_end_quietly_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "domain: test\ndescriptors:\n  - key: path\n    rate_limit:\n      \
         unit: second\n      requests_per_unit: 1\n",
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let lsm_dir = dir.path().join("lsm");
    let lsm_dir = lsm_dir.to_str().unwrap();
    let verbs: &[&[&str]] = &[
        &["id", "next", "--count", "100000"],
        &["id", "next", "--count", "3", "--json"],
        &["id", "decode", "123456789012345"],
        &["id", "compare", "--duration-ms", "5"],
        &["ratelimit", "rules", "--rules", rules],
        &[
            "ratelimit",
            "check",
            "--rules",
            rules,
            "--descriptor",
            "path=/x",
            "--requests",
            "3",
        ],
        &[
            "ratelimit",
            "simulate",
            "--rate",
            "5",
            "--burst-pattern",
            "0-3/100ms:2",
        ],
        &["ring", "simulate", "--keys", "1000"],
        &["estimate", "--preset", "twitter"],
        &[
            "bench",
            "lsm",
            "--num",
            "500",
            "--benchmarks",
            "fillseq,readrandom",
            "--data-dir",
            lsm_dir,
        ],
    ];
    for args in verbs {
        run_with_closed_stdout(args);
    }
}

#[test]
fn bench_kv_ends_quietly_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["kv", "serve", "--bind", "127.0.0.1:0", "--data-dir"];
    let args = args.iter().map(OsStr::new).chain([dir.path().as_os_str()]);
    let (_server, _lines, started) = serve(args, Duration::from_secs(60));
    let addr = started
        .rsplit(' ')
        .next()
        .unwrap_or_else(|| panic!("no address in {started:?}"));
    run_with_closed_stdout(&[
        "bench",
        "kv",
        "--addr",
        addr,
        "--clients",
        "1",
        "--requests",
        "100",
    ]);
}

#[test]
fn up_keeps_running_and_exits_cleanly_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = hyperscale()
        .env("TMPDIR", dir.path())
        .args(["up", "--ephemeral-ports", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let stderr = Lines::new(child.stderr.take().unwrap());
    let mut guard = Guard(child);
    // Logged right after the table went to the closed pipe.
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("hyperscale is up")) {
        let line = stderr.next_within(Duration::from_secs(60));
        assert!(!line.contains("panicked"), "{line}");
        seen.push(line);
    }
    let exit = interrupt_and_wait(&mut guard, Duration::from_secs(10));
    seen.extend(stderr.rest_within(Duration::from_secs(10)));
    assert!(exit.success(), "exit status {exit}: {seen:?}");
    assert!(!seen.iter().any(|l| l.contains("panicked")), "{seen:?}");
}
