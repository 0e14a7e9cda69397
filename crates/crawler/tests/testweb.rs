//! The crawler against the synthetic test web on 127.0.0.1: the page set,
//! robots, nofollow, politeness from the server's own log, duplicates,
//! traps, WARC, and a `kill -9` mid-crawl that resumes to the same set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crawler::crawl::{CrawlConfig, Crawler, End};
use crawler::state::Scope;
use crawler::store::Outcome;
use crawler::testweb::{
    CRAWL_DELAY_HOST, FAILING_HOST, ROBOTS_5XX_HOST, TestWeb, WebSpec, is_trap,
};

const DELAY_MS: u64 = 20;
const CHILD_ENV: &str = "HYPERSCALE_CRAWLER_CRASH_CHILD";

fn spec() -> WebSpec {
    WebSpec {
        hosts: 6,
        pages: 6 * 24,
        slow_ms: 30,
        base_port: 0,
        crawl_delay_ms: 100,
        change_ms: 0,
    }
}

fn config(dir: &Path) -> CrawlConfig {
    let mut cfg = CrawlConfig {
        data_dir: dir.to_path_buf(),
        concurrency: 8,
        ..CrawlConfig::default()
    };
    cfg.state.scope = Scope::SameDomain;
    cfg.state.politeness.delay_ms = DELAY_MS;
    cfg.state.expected_urls = 10_000;
    cfg.fetch.connect_timeout_ms = 2000;
    cfg.fetch.first_byte_timeout_ms = 2000;
    cfg.fetch.total_timeout_ms = 5000;
    cfg
}

/// (host, target) of the URLs a crawl recorded as fetched.
fn fetched_set(web: &TestWeb, crawler: &Crawler) -> BTreeSet<(usize, String)> {
    let pages = crawler.state().lock().pages().expect("pages");
    pages
        .iter()
        .filter(|p| p.outcome == Outcome::Fetched)
        .filter_map(|p| {
            let h = web
                .bases()
                .iter()
                .position(|b| p.url.starts_with(b.as_str()))?;
            Some((h, p.url[web.bases()[h].len()..].to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_the_test_web_politely_exactly_once() {
    let web = TestWeb::start(spec()).await.expect("test web");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    let warc = dir.path().join("out.warc.gz");
    cfg.warc = Some(warc.clone());
    let crawler = Crawler::open(cfg).expect("open");
    crawler.add_seeds(&[web.seed()]).expect("seeds");
    let end = tokio::time::timeout(Duration::from_secs(120), crawler.run())
        .await
        .expect("crawl ends in time")
        .expect("crawl");
    assert_eq!(end, End::Complete);

    let expected = web.expected();
    let log = web.log();
    let mut counts: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for entry in &log {
        *counts
            .entry((entry.host, entry.target.clone()))
            .or_default() += 1;
    }
    // Every reachable allowed page exactly once; nothing else but robots.txt and traps.
    for page in &expected.pages {
        assert_eq!(
            counts.get(page).copied(),
            Some(1),
            "{page:?} requested {:?} times",
            counts.get(page)
        );
    }
    for ((h, target), n) in &counts {
        assert_eq!(*n, 1, "host {h} {target} requested {n} times");
        assert!(
            !target.starts_with("/private/") || *h == FAILING_HOST,
            "robots-disallowed {target} was requested"
        );
        assert!(
            !target.starts_with("/nf/"),
            "nofollow-only {target} was requested"
        );
        assert!(
            *h != ROBOTS_5XX_HOST || target == "/robots.txt",
            "host with 503 robots.txt got {target}"
        );
        assert!(
            expected.pages.contains(&(*h, target.clone()))
                || target == "/robots.txt"
                || (*h == 0 && is_trap(target)),
            "unexpected request: host {h} {target}"
        );
    }
    // The crawl's own record agrees with the server's log.
    let fetched: BTreeSet<_> = fetched_set(&web, &crawler)
        .into_iter()
        .filter(|(h, t)| !(*h == 0 && is_trap(t)))
        .collect();
    assert_eq!(fetched, expected.pages);

    // Politeness, measured by the server: gaps between requests to one host.
    let mut by_host: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for entry in &log {
        by_host.entry(entry.host).or_default().push(entry.at_us);
    }
    for (h, mut times) in by_host {
        times.sort_unstable();
        let floor_ms = if h == CRAWL_DELAY_HOST { 100 } else { DELAY_MS };
        let min_gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .unwrap_or(u64::MAX);
        assert!(
            min_gap.saturating_add(2000) >= floor_ms * 1000,
            "host {h}: two requests {min_gap} us apart (delay {floor_ms} ms)"
        );
    }

    // Traps bounded; duplicates found; counters add up.
    let trap_requests = log
        .iter()
        .filter(|e| e.host == 0 && is_trap(&e.target))
        .count();
    assert!(
        trap_requests > 10 && trap_requests < 120,
        "trap requests: {trap_requests}"
    );
    let stats = crawler.stats().snapshot();
    assert!(stats.traps.values().sum::<u64>() >= 3, "{:?}", stats.traps);
    let dup_pages = expected
        .pages
        .iter()
        .filter(|(_, t)| t.starts_with("/dup/"))
        .count() as u64;
    let near_pages = expected
        .pages
        .iter()
        .filter(|(_, t)| t.starts_with("/near/"))
        .count() as u64;
    assert_eq!(
        stats.duplicates.get("exact").copied().unwrap_or(0),
        dup_pages
    );
    assert!(
        stats.duplicates.get("near").copied().unwrap_or(0) >= near_pages * 9 / 10,
        "{:?}",
        stats.duplicates
    );
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert!(stats.skipped.get("nofollow").copied().unwrap_or(0) > 0);
    assert!(stats.redirects > 0);
    assert_eq!(stats.frontier, 0);

    // WARC: one response record per 2xx page.
    drop(crawler);
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&warc).expect("warc")),
        &mut text,
    )
    .expect("gunzip");
    let responses = text.matches("WARC-Type: response\r\n").count();
    let ok_pages =
        log.iter().filter(|e| e.target != "/robots.txt").count() - web_failures(&web, &log);
    assert_eq!(responses, ok_pages);
}

/// Requests the web answered with a non-2xx status (500s, the redirects).
fn web_failures(web: &TestWeb, log: &[crawler::testweb::LogEntry]) -> usize {
    log.iter()
        .filter(|e| e.target != "/robots.txt")
        .filter(|e| {
            let status = web.status_of(e.host, &e.target);
            !(200..300).contains(&status)
        })
        .count()
}

/// The crash child: crawls until the parent kills it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed = std::env::var("HYPERSCALE_CRAWLER_SEED").expect("seed");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let crawler = Crawler::open(config(Path::new(&dir))).expect("open");
        crawler.add_seeds(&[seed]).expect("seeds");
        println!("{}", testkit::crash::READY);
        crawler.run().await.expect("crawl");
    });
}

#[test]
fn kill_9_mid_crawl_then_resume_gives_the_same_page_set() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let web = runtime.block_on(TestWeb::start(spec())).expect("test web");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_text = dir.path().display().to_string();
    testkit::crash::run_child_until_killed(
        "crash_child",
        [
            (CHILD_ENV, dir_text.as_str()),
            ("HYPERSCALE_CRAWLER_SEED", web.seed().as_str()),
        ],
        Duration::from_millis(1500),
    );
    let before = web.log().len();
    assert!(
        before > 20,
        "the child crawled only {before} requests before the kill"
    );
    let crawler = Crawler::open(config(dir.path())).expect("reopen after kill -9");
    let done_before = crawler.state().lock().pages_done();
    assert!(done_before > 0);
    crawler.add_seeds(&[web.seed()]).expect("seeds");
    let end = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), crawler.run()).await })
        .expect("in time")
        .expect("crawl");
    assert_eq!(end, End::Complete);
    let expected = web.expected();
    let fetched: BTreeSet<_> = fetched_set(&web, &crawler)
        .into_iter()
        .filter(|(h, t)| !(*h == 0 && is_trap(t)))
        .collect();
    assert_eq!(fetched, expected.pages);
    // Nothing finished before the kill was downloaded again: only the pages
    // in flight at the kill (at most one per worker) were requested twice.
    let mut counts: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for entry in web.log() {
        if entry.target != "/robots.txt" {
            *counts.entry((entry.host, entry.target)).or_default() += 1;
        }
    }
    let repeated = counts.values().filter(|n| **n > 1).count();
    assert!(repeated <= 8, "{repeated} pages were downloaded twice");
    assert!(counts.values().all(|n| *n <= 2));
}
