//! Failover: an upstream dies mid-test; idempotent requests keep succeeding,
//! the gateway reports it down, and it returns to rotation once restarted.

use crate::support;

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, WAIT, client, config, up_line};

#[tokio::test]
async fn dead_upstream_fails_over_and_comes_back() {
    let a = TestUpstream::start("a").await;
    let mut b = TestUpstream::start("b").await;
    let gateway = TestGateway::start(config(&[&a, &b], Balance::RoundRobin)).await;
    let http = client();
    for _ in 0..4 {
        assert_eq!(
            http.get(gateway.url("/")).send().await.unwrap().status(),
            200
        );
    }
    b.kill().await;
    // Every idempotent request succeeds: the ones sent to `b` before it is
    // detected are retried on `a`.
    for i in 0..20 {
        let response = http.get(gateway.url("/after-kill")).send().await.unwrap();
        assert_eq!(response.status(), 200, "request {i} failed");
        assert_eq!(response.headers()["x-upstream"], "a");
        let response = http
            .put(gateway.url("/put"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "PUT {i} failed");
    }
    gateway.wait_for_metric(&up_line(&b, 0)).await;
    assert!(
        gateway
            .metrics()
            .await
            .contains("hyperscale_gateway_retries_total")
    );
    b.restart().await;
    gateway.wait_for_metric(&up_line(&b, 1)).await;
    let before = b.total_hits();
    for _ in 0..4 {
        assert_eq!(
            http.get(gateway.url("/back"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert!(
        b.hits("/back") >= 1,
        "restarted upstream got no traffic ({before} hits before)"
    );
}

#[tokio::test]
async fn post_is_not_replayed_after_a_failure_status() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let gateway = TestGateway::start(config(&[&a, &b], Balance::RoundRobin)).await;
    let http = client();
    // `/fail` answers 503 on both: a GET is tried on both, a POST on one.
    let response = http.get(gateway.url("/fail")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        a.hits("/fail") + b.hits("/fail"),
        2,
        "GET should be retried once"
    );
    let response = http
        .post(gateway.url("/fail"))
        .body("pay")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        a.hits("/fail") + b.hits("/fail"),
        3,
        "POST must not be replayed"
    );
    let response = http
        .post(gateway.url("/fail"))
        .header("idempotency-key", "k1")
        .body("pay")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        a.hits("/fail") + b.hits("/fail"),
        5,
        "keyed POST is replayable"
    );
}

#[tokio::test]
async fn errors_are_json_with_502_503_504() {
    let mut dead = TestUpstream::start("dead").await;
    dead.kill().await;
    let mut config = config(&[&dead], Balance::RoundRobin);
    config.pools.get_mut("web").unwrap().eject_after_failures = 1;
    config.pools.get_mut("web").unwrap().health.interval_ms = 60_000;
    let gateway = TestGateway::start(config).await;
    let http = client();
    let response = http.get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("connect"),
        "{body}"
    );
    // Ejected after one failure, and probes are far away: 503 at once.
    let response = http.get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no healthy upstream"),
        "{body}"
    );

    let slow = TestUpstream::start("slow").await;
    let mut config = support::config(&[&slow], Balance::RoundRobin);
    config.timeouts.upstream_response_ms = 300;
    let gateway = TestGateway::start(config).await;
    let response = tokio::time::timeout(WAIT, http.get(gateway.url("/hang")).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 504);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("300 ms"), "{body}");
}
