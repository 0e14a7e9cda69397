//! `hyperscale metrics serve --scrape-config` as real processes: two
//! collectors read the same `prometheus.yml` and split its targets by the
//! ring, so each target's `up` lands in exactly one of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{get, serve};

/// The `instance` → `up` value of every `up` series a server holds.
fn ups(api: &str) -> BTreeMap<String, String> {
    let (status, body) = get(&format!("http://{api}/api/v1/query?query=up"));
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    reply["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let instance = s["metric"]["instance"].as_str().unwrap().to_string();
            (instance, s["value"][1].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn two_collectors_scrape_each_target_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = || format!("127.0.0.1:{}", testkit::free_port());
    let (apis, admins) = ([port(), port()], [port(), port()]);
    // Both admin endpoints (up) and four addresses nobody listens on (down).
    let mut targets: Vec<String> = admins.to_vec();
    targets.extend((0..4).map(|_| port()));
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: fleet\n    \
             static_configs: [{{targets: [{}]}}]\n",
            quoted.join(", ")
        ),
    )
    .unwrap();
    let mut guards = Vec::new();
    for i in 0..2 {
        let data = dir.path().join(format!("c{i}"));
        let (guard, lines, banner) = serve(
            [
                "metrics",
                "serve",
                "--bind",
                &apis[i],
                "--admin-bind",
                &admins[i],
                "--data-dir",
                data.to_str().unwrap(),
                "--scrape-config",
                config.to_str().unwrap(),
                "--collector-id",
                &i.to_string(),
                "--collectors",
                "2",
            ],
            Duration::from_secs(30),
        );
        assert!(banner.contains("metrics listening"), "{banner}");
        guards.push((guard, lines));
    }
    let started = Instant::now();
    let (mut a, mut b) = (ups(&apis[0]), ups(&apis[1]));
    while a.len() + b.len() < targets.len() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
        (a, b) = (ups(&apis[0]), ups(&apis[1]));
    }
    // Every target in exactly one collector, none in both.
    assert_eq!(a.len() + b.len(), targets.len(), "{a:?} {b:?}");
    for t in &targets {
        assert!(a.contains_key(t) ^ b.contains_key(t), "{t}: {a:?} {b:?}");
    }
    assert!(
        !a.is_empty() && !b.is_empty(),
        "the ring gives both a share"
    );
    for (t, up) in a.iter().chain(&b) {
        let want = if admins.contains(t) { "1" } else { "0" };
        assert_eq!(up, want, "{t}");
    }
}
