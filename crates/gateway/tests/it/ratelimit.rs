//! The rate limit through the gateway, driven by a rules file: 10 requests a
//! minute per client on `/limited`, nothing elsewhere; raising the limit in
//! the file takes effect without a restart.

use crate::support;

use std::path::Path;
use std::time::Duration;

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, WAIT, client, config, header_of, raw, status_of};

fn rules(limit: u32) -> String {
    format!(
        "domain: gateway\n\
         descriptors:\n  \
           - key: path\n    \
             value: /limited\n    \
             descriptors:\n      \
               - key: remote_address\n        \
                 rate_limit:\n          \
                   unit: minute\n          \
                   requests_per_unit: {limit}\n          \
                   algorithm: sliding_window_log\n"
    )
}

fn write_rules(path: &Path, limit: u32) {
    // Write then rename: the watcher never sees a half-written file.
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, rules(limit)).expect("cannot write the rules file");
    std::fs::rename(&temporary, path).expect("cannot replace the rules file");
}

#[tokio::test]
async fn twelve_requests_get_ten_answers_then_429s_and_reload_raises_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("ratelimit.yaml");
    write_rules(&rules_path, 10);
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let mut config = config(&[&a, &b], Balance::RoundRobin);
    config.ratelimit.rules = Some(rules_path.clone());
    config.ratelimit.reload_ms = 50;
    let gateway = TestGateway::start(config).await;
    let http = client();

    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = http.get(gateway.url("/limited/item")).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers();
        if status == 200 {
            assert_eq!(headers["x-ratelimit-limit"], "10");
            assert!(headers.contains_key("x-ratelimit-remaining"));
        } else {
            assert_eq!(status, 429);
            assert_eq!(headers["x-ratelimit-limit"], "10");
            assert_eq!(headers["x-ratelimit-remaining"], "0");
            assert!(
                headers.contains_key("x-ratelimit-retry-after"),
                "{headers:?}"
            );
            assert!(headers.contains_key("retry-after"), "{headers:?}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses[..10], [200; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
    assert_eq!(
        a.hits("/limited/item") + b.hits("/limited/item"),
        10,
        "a 429 reached an upstream"
    );
    for _ in 0..15 {
        let response = http.get(gateway.url("/free")).send().await.unwrap();
        assert_eq!(response.status(), 200, "an unlimited path was limited");
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
    }
    let metrics = gateway.metrics().await;
    assert!(metrics.contains("outcome=\"rejected\""), "{metrics}");
    assert!(
        metrics.contains("hyperscale_gateway_requests_total{route=\"/\",status=\"429\"} 2"),
        "{metrics}"
    );

    // Raise the limit in the file; no restart.
    write_rules(&rules_path, 100);
    let admitted = tokio::time::timeout(WAIT, async {
        loop {
            let response = http.get(gateway.url("/limited/item")).send().await.unwrap();
            if response.status() == 200 {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the raised limit never took effect");
    assert_eq!(admitted.headers()["x-ratelimit-limit"], "100");
}

/// Every spelling of `/limited/` an upstream resolves to the same file
/// shares the one limit: raw bytes over TCP, so nothing normalizes the path
/// on the client side (what `curl --path-as-is` sends).
#[tokio::test]
async fn path_variants_are_counted_against_the_same_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("ratelimit.yaml");
    write_rules(&rules_path, 10);
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.ratelimit.rules = Some(rules_path);
    let gateway = TestGateway::start(config).await;
    let variants = [
        "/limited/",
        "//limited/",
        "/./limited/",
        "/x/../limited/",
        "/%6cimited/",
        "/%2flimited/",
    ];
    let mut statuses = Vec::new();
    for index in 0..12 {
        let target = variants[index % variants.len()];
        let request = format!("GET {target} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
        let answer = raw(gateway.addr, request.as_bytes()).await;
        let status = status_of(&answer);
        if status == 200 {
            assert_eq!(
                header_of(&answer, "x-seen-path"),
                Some("/limited/"),
                "{target} was not forwarded normalized: {answer}"
            );
        }
        assert_eq!(
            header_of(&answer, "x-ratelimit-limit"),
            Some("10"),
            "{target}: {answer}"
        );
        statuses.push((target, status));
    }
    let admitted = statuses.iter().filter(|(_, status)| *status == 200).count();
    assert_eq!(admitted, 10, "{statuses:?}");
    assert!(
        statuses[10..].iter().all(|(_, status)| *status == 429),
        "{statuses:?}"
    );
    assert_eq!(a.hits("/limited/"), 10, "{statuses:?}");
    assert_eq!(
        a.total_hits() - health_probes(&a),
        10,
        "a variant reached the upstream unnormalized"
    );

    // Traversal above the root never reaches an upstream.
    let answer = raw(
        gateway.addr,
        b"GET /../../../../etc/passwd HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("above the root"), "{answer}");
    assert_eq!(a.total_hits() - health_probes(&a), 10);
}

fn health_probes(upstream: &TestUpstream) -> usize {
    upstream.hits("/health")
}

#[tokio::test]
async fn an_invalid_rules_file_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("ratelimit.yaml");
    std::fs::write(&rules_path, "domain: gateway\ndescriptors:\n  - key: path\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n").unwrap();
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.ratelimit.rules = Some(rules_path);
    let mut registry = service::metrics::Registry::default();
    let err = gateway::Gateway::new(config, &mut registry)
        .err()
        .expect("invalid rules accepted");
    let text = err.to_string();
    assert!(
        text.contains("ratelimit.rules") && text.contains("line"),
        "{text}"
    );
}
