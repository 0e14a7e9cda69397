//! The retry pattern end to end, on both implementations: an application
//! consumes `payments`, routes failures through `retry::Router`, a
//! `retry::Worker` re-delivers them after their delay, and a record that
//! keeps failing ends in `payments.dlq` with its error, count and origin;
//! a record written to the retry topic by someone else, already out of
//! attempts, goes straight to the dead letters.

use std::collections::BTreeMap;
use std::time::Duration;

use mqclient::retry::{self, Policy, Routed, Router, Worker, WorkerConfig};
use mqclient::{ConsumerConfig, Record};
use tokio_util::sync::CancellationToken;

use crate::harness::{Harness, WAIT, both};

both! {
    failures_are_retried_after_their_delay_then_dead_lettered => retry_then_dead_letter;
}

async fn retry_then_dead_letter(h: Harness) {
    let client = h.client();
    let policy = Policy {
        max_attempts: 3,
        delay_ms: 200,
    };
    client.ensure_topic("payments", 2).await.unwrap();
    let router = Router::new(client.clone(), policy);
    router.ensure_topics("payments", 2).await.unwrap();
    let stop = CancellationToken::new();
    let worker = Worker::new(
        client.clone(),
        WorkerConfig {
            topic: "payments".into(),
            group: "payments-retry".into(),
            policy,
            partitions: 2,
            idle_timeout: None,
        },
    );
    let worker = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });

    for (key, value) in [("a", "ok"), ("b", "fail-once"), ("c", "fail-always")] {
        client
            .produce("payments", Record::new(value).key(key).header("trace", key))
            .await
            .unwrap();
    }
    let foreign = Record::new("given-up")
        .key("d")
        .header(retry::ATTEMPT_HEADER, "3");
    client.produce("payments.retry", foreign).await.unwrap();

    let mut app = client
        .subscribe(ConsumerConfig::group("app", &["payments"]))
        .await
        .unwrap();
    let mut processed: BTreeMap<String, u32> = BTreeMap::new();
    let mut due: BTreeMap<String, u64> = BTreeMap::new();
    let mut dead_routed = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while (processed.len() < 2 || dead_routed < 1) && tokio::time::Instant::now() < deadline {
        for m in app.poll(Duration::from_millis(200)).await.unwrap() {
            let value = String::from_utf8(m.value.clone().unwrap()).unwrap();
            let attempts = retry::attempts(&m);
            if let Some(&not_before) = due.get(&value) {
                assert!(
                    clock::now_ms() >= not_before,
                    "{value} came back before its delay"
                );
            }
            assert_eq!(
                m.header("trace"),
                m.key.as_deref(),
                "headers survive the detour"
            );
            let failure = match value.as_str() {
                "fail-once" if attempts == 0 => Some("timeout"),
                "fail-always" => Some("card declined"),
                _ => None,
            };
            match failure {
                None => {
                    processed.insert(value, attempts);
                }
                Some(error) => match router.fail(&m, error).await.unwrap() {
                    Routed::Retry {
                        attempt,
                        not_before_ms,
                        ..
                    } => {
                        assert_eq!(attempt, attempts + 1);
                        due.insert(value, not_before_ms);
                    }
                    Routed::Dead { attempts, .. } => {
                        assert_eq!(attempts, 3);
                        dead_routed += 1;
                    }
                },
            }
        }
        app.commit().await.unwrap();
    }
    app.close().await.unwrap();
    assert_eq!(processed.get("ok"), Some(&0));
    assert_eq!(
        processed.get("fail-once"),
        Some(&1),
        "processed on its second delivery"
    );
    assert_eq!(dead_routed, 1);

    // The worker's dead letter (the foreign record) may trail the app's.
    let mut letters = Vec::new();
    while letters.len() < 2 && tokio::time::Instant::now() < deadline {
        letters = retry::dead_letters(client.as_ref(), "payments", 100)
            .await
            .unwrap();
    }
    let by_value: BTreeMap<String, &retry::DeadLetter> = letters
        .iter()
        .map(|l| {
            (
                String::from_utf8_lossy(l.message.value.as_deref().unwrap()).into_owned(),
                l,
            )
        })
        .collect();
    let always = by_value["fail-always"];
    assert_eq!(
        (always.attempts, always.error.as_str()),
        (3, "card declined")
    );
    let origin = always.origin.clone().unwrap();
    assert!(origin.starts_with("payments/"), "{origin}");
    let given_up = by_value["given-up"];
    assert_eq!(given_up.attempts, 3);
    assert!(given_up.error.contains("gave up"), "{}", given_up.error);

    stop.cancel();
    let stats = tokio::time::timeout(WAIT, worker)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(stats.redelivered, 3, "fail-once once, fail-always twice");
    assert_eq!(stats.dead, 1, "the foreign record");
}
