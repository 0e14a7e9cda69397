//! The crawl side and the test web of `bench/crawler-vs-scrapy.sh`, as one
//! small release binary (the whole `hyperscale` binary takes far longer to
//! build in release mode; the code paths are the same library calls).
//!
//! ```text
//! crawl_bench testweb HOSTS PAGES SEEDS_OUT      serve until killed
//! crawl_bench crawl SEEDS DATA_DIR CONCURRENCY   crawl, print one JSON line
//! ```
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use crawler::crawl::{CrawlConfig, Crawler};
use crawler::state::Scope;
use crawler::testweb::{TestWeb, WebSpec};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("testweb") => {
            let spec = WebSpec {
                hosts: args[2].parse().unwrap(),
                pages: args[3].parse().unwrap(),
                slow_ms: 0,
                base_port: 0,
                crawl_delay_ms: 0,
            };
            let web = TestWeb::start(spec).await.unwrap();
            std::fs::write(&args[4], format!("{}\n", web.seed())).unwrap();
            tokio::signal::ctrl_c().await.unwrap();
        }
        Some("crawl") => {
            let seeds: Vec<String> = std::fs::read_to_string(&args[2])
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            let mut cfg = CrawlConfig {
                data_dir: args[3].clone().into(),
                concurrency: args[4].parse().unwrap(),
                ..CrawlConfig::default()
            };
            cfg.state.scope = Scope::SameDomain;
            cfg.state.politeness.delay_ms = 0;
            cfg.state.store_bodies = false;
            let started = Instant::now();
            let crawler = Crawler::open(cfg).unwrap();
            crawler.add_seeds(&seeds).unwrap();
            crawler.run().await.unwrap();
            // HTTP answers (what Scrapy's parse callback counts, plus redirects).
            let pages = crawler.stats().snapshot().pages;
            println!(
                "{{\"system\":\"hyperscale\",\"pages\":{pages},\"seconds\":{},\"peak_rss_kib\":{}}}",
                started.elapsed().as_secs_f64(),
                peak_rss_kib()
            );
        }
        _ => eprintln!(
            "usage: crawl_bench testweb HOSTS PAGES SEEDS_OUT | crawl SEEDS DIR CONCURRENCY"
        ),
    }
}
