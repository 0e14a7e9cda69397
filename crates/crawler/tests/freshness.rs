//! Freshness against the test web: revisits send the last answer's
//! validators, `304 Not Modified` is handled, pages that change are revisited
//! more often than pages that never do, and politeness still holds — all
//! read from the web's own request log.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crawler::crawl::{CrawlConfig, Crawler, End};
use crawler::state::Scope;
use crawler::testweb::{ROBOTS_5XX_HOST, TestWeb, WebSpec};

const DELAY_MS: u64 = 10;
const CHANGE_MS: u64 = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisits_are_conditional_and_follow_the_change_rate() {
    let web = TestWeb::start(WebSpec {
        hosts: 5,
        pages: 5 * 8,
        slow_ms: 0,
        base_port: 0,
        crawl_delay_ms: 0,
        change_ms: CHANGE_MS,
    })
    .await
    .expect("test web");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = CrawlConfig {
        data_dir: dir.path().to_path_buf(),
        concurrency: 5,
        ..CrawlConfig::default()
    };
    cfg.state.scope = Scope::SameDomain;
    cfg.state.politeness.delay_ms = DELAY_MS;
    cfg.state.store_bodies = false;
    cfg.state.freshness.enabled = true;
    cfg.state.freshness.initial_ms = 400;
    cfg.state.freshness.min_ms = 100;
    cfg.state.freshness.max_ms = 3200;
    let crawler = Crawler::open(cfg).expect("open");
    crawler.add_seeds(&[web.seed()]).expect("seeds");
    let stop = crawler.stop_flag();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(4000)).await;
        stop.store(true, Ordering::SeqCst);
    });
    let end = tokio::time::timeout(Duration::from_secs(60), crawler.run())
        .await
        .expect("the crawl stops in time")
        .expect("crawl");
    assert_eq!(end, End::Stopped, "a revisiting crawl runs until stopped");

    let log = web.log();
    let mut visits: BTreeMap<(usize, String), Vec<(bool, u16)>> = BTreeMap::new();
    for e in log.iter().filter(|e| e.target.starts_with("/p/")) {
        visits
            .entry((e.host, e.target.clone()))
            .or_default()
            .push((e.conditional, e.status));
    }
    // Every revisit is conditional (the first visit is not), and unchanged
    // pages were answered 304.
    for ((h, target), seen) in &visits {
        assert!(!seen[0].0, "first visit of {h}{target} was conditional");
        if seen[0].1 == 200 {
            assert!(
                seen[1..].iter().all(|(conditional, _)| *conditional),
                "a revisit of {h}{target} without validators: {seen:?}"
            );
        }
    }
    let not_modified = log.iter().filter(|e| e.status == 304).count();
    assert!(not_modified > 0, "no 304 in the log");

    // Pages that change every CHANGE_MS get revisited more than static ones.
    let mean = |changing: bool| {
        let counts: Vec<usize> = visits
            .iter()
            .filter(|((h, t), _)| {
                let i: usize = t["/p/".len()..].parse().expect("page number");
                *h != ROBOTS_5XX_HOST && (i % 4 == 1) == changing
            })
            .map(|(_, v)| v.len())
            .collect();
        assert!(!counts.is_empty());
        counts.iter().sum::<usize>() as f64 / counts.len() as f64
    };
    let (changing, fixed) = (mean(true), mean(false));
    assert!(
        changing > fixed,
        "changing pages visited {changing:.2} times on average, static ones {fixed:.2}"
    );
    let snap = crawler.stats().snapshot();
    assert!(snap.revisits.get("not_modified").copied().unwrap_or(0) > 0);
    assert!(snap.revisits.get("changed").copied().unwrap_or(0) > 0);

    // Politeness holds for revisits too: one host never sees two requests
    // closer than the delay.
    let mut by_host: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for e in &log {
        by_host.entry(e.host).or_default().push(e.at_us);
    }
    for (host, mut times) in by_host {
        times.sort_unstable();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] + 1000 >= DELAY_MS * 1000,
                "host {host} requested {} µs apart",
                pair[1] - pair[0]
            );
        }
    }
}
