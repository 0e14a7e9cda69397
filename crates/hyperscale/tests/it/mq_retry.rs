//! `hyperscale mq retry` and `hyperscale mq dlq` against a real
//! `hyperscale mq serve` child: a failed record written to
//! `<topic>.retry` comes back to `<topic>` only after the delay, with its
//! attempt counted in a header; a worker whose attempts are used up moves
//! the next one to `<topic>.dlq`, resuming after what the first run
//! committed; `dlq` lists it with its error, as a table and as JSON.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::mq_cli::{fails_with_one_line, json, mq, ok, start_broker};

use serde_json::Value;

fn consumed(bootstrap: &str, topic: &str, count: usize) -> Vec<Value> {
    let count = count.to_string();
    let args = [
        "consume",
        topic,
        "--from-beginning",
        "--max-messages",
        &count,
        "--timeout-ms",
        "20000",
        "--json",
    ];
    ok(&mq(bootstrap, &args, ""))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs the retry worker of `payments` in group `rw` until 2 s without work.
fn run_worker(bootstrap: &str, max_attempts: &str, delay_ms: &str) -> Value {
    let args = [
        "retry",
        "--topic",
        "payments",
        "--group",
        "rw",
        "--max-attempts",
        max_attempts,
        "--delay-ms",
        delay_ms,
        "--timeout-ms",
        "2000",
        "--json",
    ];
    json(&mq(bootstrap, &args, ""))
}

#[test]
fn the_retry_worker_redelivers_after_the_delay_and_dead_letters_after_the_last_attempt() {
    let broker = start_broker();
    let b = broker.bootstrap.as_str();
    ok(&mq(
        b,
        &["topics", "create", "payments", "--partitions", "2"],
        "",
    ));
    ok(&mq(b, &["topics", "create", "payments.retry"], ""));
    // A failed record written by a client that knows nothing of the
    // headers: it counts as one failed attempt.
    ok(&mq(
        b,
        &["produce", "payments.retry", "--key-separator", ":"],
        "order-1:charge 10\n",
    ));

    let stats = run_worker(b, "3", "400");
    assert_eq!(
        (stats["redelivered"].as_i64(), stats["dead"].as_i64()),
        (Some(1), Some(0))
    );

    let failed = &consumed(b, "payments.retry", 1)[0];
    let back = &consumed(b, "payments", 1)[0];
    assert_eq!(back["key"], "order-1");
    assert_eq!(back["value"], "charge 10");
    assert_eq!(back["headers"]["retry.attempt"], "1", "{back}");
    let waited = back["timestamp_ms"].as_i64().unwrap() - failed["timestamp_ms"].as_i64().unwrap();
    assert!(
        waited >= 400,
        "re-delivered {waited} ms after the failure, before its delay"
    );

    // One attempt allowed: the next failure is a dead letter, and the
    // group resumes after the record the first run committed.
    ok(&mq(
        b,
        &["produce", "payments.retry", "--key-separator", ":"],
        "order-2:charge 99\n",
    ));
    let stats = run_worker(b, "1", "400");
    assert_eq!(
        (stats["redelivered"].as_i64(), stats["dead"].as_i64()),
        (Some(0), Some(1))
    );

    let letters = json(&mq(b, &["dlq", "--topic", "payments", "--json"], ""));
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["key"], "order-2");
    assert_eq!(letters[0]["value"], "charge 99");
    assert_eq!(letters[0]["attempts"], 1);
    assert!(letters[0]["error"].as_str().unwrap().contains("gave up"));
    let table = ok(&mq(b, &["dlq", "--topic", "payments"], ""));
    assert!(
        table.starts_with("1 dead letter(s) in payments.dlq"),
        "{table}"
    );
    assert!(
        table.contains("ATTEMPTS") && table.contains("order-2"),
        "{table}"
    );
    let groups = json(&mq(b, &["groups", "describe", "rw", "--json"], ""));
    assert_eq!(groups["partitions"][0]["lag"], 0, "{groups}");

    fails_with_one_line(
        &mq(b, &["retry", "--topic", "", "--timeout-ms", "100"], ""),
        "invalid",
    );
    fails_with_one_line(
        &mq(b, &["retry", "--topic", "t", "--max-attempts", "0"], ""),
        "at least 1",
    );
    fails_with_one_line(&mq(b, &["dlq", "--topic", "nothing"], ""), "unknown topic");
}
