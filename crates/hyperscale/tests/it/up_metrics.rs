//! `hyperscale up`'s metrics, checked from outside (issue 14's "done when"):
//! `promtool query instant ... up` lists every system as a target, the
//! console's metrics page charts every system's request rate, and the range
//! query behind it returns a series for each system with a request counter.
//! Called by the `up` test with the addresses from its table.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::get;

/// Percent-encodes `text` for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `probe` until it returns true or `limit` passes; returns the last
/// result of `describe` for the failure message.
fn eventually(limit: Duration, mut probe: impl FnMut() -> (bool, String)) -> String {
    let started = Instant::now();
    loop {
        let (done, last) = probe();
        if done {
            return last;
        }
        assert!(started.elapsed() < limit, "gave up after {limit:?}: {last}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every check; `systems` are the names `up` printed in its table.
pub fn check(console: &str, prometheus: &str, systems: &[String]) {
    // promtool, Prometheus's own client, lists one `up` series per system.
    let listed = eventually(Duration::from_secs(30), || {
        let out = Command::new("promtool")
            .args(["query", "instant", &format!("http://{prometheus}"), "up"])
            .output()
            .expect("promtool (Debian prometheus; scripts/test installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = out.status.success()
            && systems
                .iter()
                .all(|s| text.contains(&format!("system=\"{s}\"}} => 1")));
        (all, text)
    });
    assert!(listed.contains("job=\"hyperscale\""), "{listed}");

    // The page's query, straight from the metrics server: a series per
    // system with a request counter (rate needs two scrapes in its window).
    let query = console::requests::rate_query();
    let counted: Vec<&str> = console::requests::counted_systems().collect();
    for system in &counted {
        assert!(
            systems.iter().any(|s| s == system),
            "{system} not in {systems:?}"
        );
    }
    let url = |q: &str| {
        let now_s = clock::now_ms() / 1000;
        format!(
            "http://{prometheus}/api/v1/query_range?query={}&start={}&end={now_s}&step=1",
            encode(q),
            now_s - 60
        )
    };
    eventually(Duration::from_secs(30), || {
        let (status, reply) = get(&url(&query));
        let all = status == 200
            && counted
                .iter()
                .all(|s| reply.contains(&format!("{{\"system\":\"{s}\"}}")));
        (all, reply)
    });

    // The console's metrics page charts them: a line and a legend row each.
    let page = eventually(Duration::from_secs(10), || {
        let (status, page) = get(&format!("http://{console}/metrics"));
        let all = status == 200
            && counted
                .iter()
                .all(|s| page.contains(&format!("class=\"series\">{s}</span>")));
        (all, page)
    });
    assert!(page.matches("<polyline").count() >= counted.len(), "{page}");
    // A bad query is the metrics server's error on the page, not a crash.
    let (status, page) = get(&format!("http://{console}/metrics?query=sum%28"));
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"down\"") && !page.contains("<polyline"),
        "{page}"
    );
    // One system's share of the metrics, in the exposition format.
    let (status, text) = get(&format!("http://{console}/systems/kv/metrics"));
    assert_eq!(status, 200);
    assert!(text.contains("hyperscale_kv_commands_total") && text.ends_with("# EOF\n"));
    assert!(!text.contains("hyperscale_mq_"), "{text}");
    let (status, _) = get(&format!("http://{console}/systems/nope/metrics"));
    assert_eq!(status, 404);
}
