//! Load balancing through a real gateway to real upstream servers: round
//! robin spreads, least connections prefers the idle upstream, consistent
//! hashing is sticky. Also the forwarding headers.

use crate::support;

use std::collections::{HashMap, HashSet};

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, WAIT, client, config};

async fn served_by(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    response.headers()["x-upstream"]
        .to_str()
        .expect("x-upstream is the upstream's ASCII name")
        .to_string()
}

#[tokio::test]
async fn round_robin_spreads_evenly_and_rewrites_headers() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let gateway = TestGateway::start(config(&[&a, &b], Balance::RoundRobin)).await;
    let http = client();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..10 {
        let response = http
            .get(gateway.url("/page?x=1"))
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "hop-by-hop")
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        assert_eq!(
            headers["x-seen-secret"], "",
            "Connection-listed header forwarded"
        );
        assert_eq!(headers["x-seen-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(headers["x-seen-via"], gateway::headers::VIA);
        assert!(
            headers
                .get_all("via")
                .iter()
                .any(|v| v == gateway::headers::VIA)
        );
        *counts.entry(served_by(response).await).or_default() += 1;
    }
    assert_eq!(counts["a"], 5, "{counts:?}");
    assert_eq!(counts["b"], 5, "{counts:?}");
    assert_eq!(a.hits("/page") + b.hits("/page"), 10);
}

#[tokio::test]
async fn least_connections_sends_new_requests_to_the_idle_upstream() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let gateway = TestGateway::start(config(&[&a, &b], Balance::LeastConnections)).await;
    let http = client();
    let slow = tokio::spawn({
        let http = http.clone();
        let url = gateway.url("/slow");
        async move { http.get(url).send().await.unwrap().status() }
    });
    // Wait until one upstream holds the slow request.
    let busy = tokio::time::timeout(WAIT, async {
        loop {
            for upstream in [&a, &b] {
                if *upstream.seen.parked.lock().unwrap() == 1 {
                    return upstream.name.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the slow request never reached an upstream");
    for _ in 0..8 {
        let idle = served_by(http.get(gateway.url("/fast")).send().await.unwrap()).await;
        assert_ne!(idle, busy, "least connections chose the busy upstream");
    }
    for upstream in [&a, &b] {
        upstream.seen.release.notify_waiters();
    }
    assert_eq!(
        tokio::time::timeout(WAIT, slow).await.unwrap().unwrap(),
        200
    );
}

#[tokio::test]
async fn consistent_hashing_keeps_each_key_on_one_upstream() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let mut config = config(&[&a, &b], Balance::ConsistentHash);
    config.pools.get_mut("web").unwrap().hash_key = "header:x-user".into();
    let gateway = TestGateway::start(config).await;
    let http = client();
    let mut owners: HashMap<usize, String> = HashMap::new();
    for round in 0..3 {
        for user in 0..30 {
            let response = http
                .get(gateway.url("/profile"))
                .header("x-user", format!("user-{user}"))
                .send()
                .await
                .unwrap();
            let upstream = served_by(response).await;
            let owner = owners.entry(user).or_insert_with(|| upstream.clone());
            assert_eq!(*owner, upstream, "user-{user} moved in round {round}");
        }
    }
    let used: HashSet<&String> = owners.values().collect();
    assert_eq!(
        used.len(),
        2,
        "30 keys all hashed to one upstream: {owners:?}"
    );
}
