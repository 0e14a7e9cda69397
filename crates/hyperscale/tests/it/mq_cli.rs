//! `hyperscale mq topics|produce|consume|groups` against a real
//! `hyperscale mq serve` child: the operator's round trip (create, list,
//! produce, consume in a group, lag 0, produce more, lag 3), every `--json`
//! parses, and failures are one line on stderr with a non-zero exit.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::common;

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{Guard, hyperscale, serve, wait_output};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

pub(crate) struct Broker {
    pub(crate) bootstrap: String,
    _guard: Guard,
    _dir: tempfile::TempDir,
}

pub(crate) fn start_broker() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["mq", "serve", "--bind", "127.0.0.1:0", "--data-dir"];
    let args = args.iter().map(OsStr::new).chain([data.as_os_str()]);
    let (guard, _lines, banner) = serve(args, WAIT);
    let bootstrap = banner
        .strip_prefix("mq broker on ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    Broker {
        bootstrap,
        _guard: guard,
        _dir: dir,
    }
}

/// Runs `hyperscale mq ARGS --bootstrap B` with `stdin`, bounded in time.
pub(crate) fn mq(bootstrap: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = hyperscale()
        .arg("mq")
        .args(args)
        .args(["--bootstrap", bootstrap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    wait_output(child, WAIT)
}

pub(crate) fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub(crate) fn json(output: &Output) -> Value {
    let text = ok(output);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

fn lags(described: &Value) -> Vec<i64> {
    described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().expect("a committed partition has a lag"))
        .collect()
}

#[test]
fn create_produce_consume_in_a_group_and_watch_the_lag() {
    let broker = start_broker();
    let b = broker.bootstrap.as_str();

    let created = mq(
        b,
        &[
            "topics",
            "create",
            "demo",
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        ],
        "",
    );
    assert!(ok(&created).contains("created topic demo"));
    let listed = json(&mq(b, &["topics", "list", "--json"], ""));
    assert_eq!(
        listed,
        serde_json::json!([{"name": "demo", "partitions": 2}])
    );

    let lines: String = (1..=10).map(|i| format!("line-{i}\n")).collect();
    let produced = json(&mq(b, &["produce", "demo", "--json"], &lines));
    assert_eq!(produced["records"], 10);

    let consumed = mq(
        b,
        &[
            "consume",
            "demo",
            "--group",
            "g1",
            "--from-beginning",
            "--max-messages",
            "10",
            "--timeout-ms",
            "20000",
            "--json",
        ],
        "",
    );
    let records: Vec<Value> = ok(&consumed)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut values: Vec<String> = records
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .collect();
    values.sort();
    let mut want: Vec<String> = (1..=10).map(|i| format!("line-{i}")).collect();
    want.sort();
    assert_eq!(values, want);
    assert!(
        records
            .iter()
            .all(|r| r["topic"] == "demo" && r["offset"].is_i64())
    );

    let described = json(&mq(b, &["groups", "describe", "g1", "--json"], ""));
    assert_eq!(lags(&described), vec![0, 0], "{described}");
    assert_eq!(
        described["state"], "Empty",
        "the consumer left: {described}"
    );

    ok(&mq(b, &["produce", "demo"], "a\nb\nc\n"));
    let described = json(&mq(b, &["groups", "describe", "g1", "--json"], ""));
    assert_eq!(lags(&described).iter().sum::<i64>(), 3, "{described}");
    let table = ok(&mq(b, &["groups", "describe", "g1"], ""));
    assert!(table.contains("LAG"), "{table}");

    let groups = json(&mq(b, &["groups", "list", "--json"], ""));
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "g1"),
        "{groups}"
    );
    let topic = json(&mq(b, &["topics", "describe", "demo", "--json"], ""));
    let partitions = topic["partitions"].as_array().unwrap();
    let ends: i64 = partitions
        .iter()
        .map(|p| p["end_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(ends, 13, "{topic}");
    assert!(
        partitions
            .iter()
            .all(|p| p["size_bytes"].as_i64().unwrap() > 0),
        "{topic}"
    );

    ok(&mq(b, &["topics", "delete", "demo"], ""));
    assert_eq!(
        json(&mq(b, &["topics", "list", "--json"], "")),
        serde_json::json!([])
    );
}

pub(crate) fn fails_with_one_line(output: &Output, needle: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains(needle), "{stderr:?}");
}

#[test]
fn errors_are_one_line_and_a_failure_exit() {
    let broker = start_broker();
    let b = broker.bootstrap.as_str();
    fails_with_one_line(
        &mq(b, &["consume", "nope", "--timeout-ms", "1000"], ""),
        "topic nope does not exist",
    );
    fails_with_one_line(&mq(b, &["produce", "nope"], "x\n"), "does not exist");
    fails_with_one_line(&mq(b, &["topics", "delete", "nope"], ""), "does not exist");
    fails_with_one_line(
        &mq(b, &["topics", "create", "t", "--config", "flush.ms=1"], ""),
        "unsupported topic config flush.ms",
    );
    ok(&mq(b, &["topics", "create", "t"], ""));
    fails_with_one_line(&mq(b, &["topics", "create", "t"], ""), "already exists");
    fails_with_one_line(
        &mq(b, &["produce", "t", "--partition", "5"], "x\n"),
        "partition 5 does not exist",
    );

    // A port nobody listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    fails_with_one_line(
        &mq(&format!("127.0.0.1:{port}"), &["topics", "list"], ""),
        "cannot reach a Kafka broker",
    );
}
