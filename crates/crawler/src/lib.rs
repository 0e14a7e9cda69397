//! A web crawler: the *System Design Interview* chapter "Design a web
//! crawler" (웹 크롤러 설계, ch. 9), built for real.
//!
//! # The pipeline
//! seed URLs → **URL frontier** ([`frontier`]) → **HTML downloader**
//! ([`fetch`], with a caching DNS resolver, [`dns`], and robots.txt,
//! [`robots`]) → **content parser** ([`parse`]) → **content seen?**
//! ([`seen`], exact xxh3 + [`simhash`] near duplicates) → **content storage**
//! ([`store`], local files and WARC) — and from the parser: **URL extractor**
//! → **URL filter** ([`normalize`], [`traps`], scope) → **URL seen?** (bloom
//! filter in front of a persistent set) → back into the frontier. [`crawl`]
//! runs the loop; [`state`] commits each page's results as one batch.
//!
//! # What is hand-written and why
//! The frontier (front queues by priority through a pluggable
//! [`prioritize::Prioritizer`], one back queue per host, a heap of hosts by
//! next-allowed time, per-host delays raised by `Crawl-delay`, 429/503 and
//! slow answers — [`politeness`]) is what the chapter designs, so it is ours,
//! and it lives **on disk** in our LSM engine (`lsm`): memory holds a count
//! and a short buffer per host, never the queue, so a crawl of 100M URLs runs
//! in bounded memory — Scrapy's best-known problem on broad crawls — and a
//! `kill -9` resumes exactly (a URL leaves the queue in the same write batch
//! that records its page and queues its links). URL normalization, the trap
//! limits and the dedup rules are small and chapter-specific, also ours.
//!
//! Everything the field already solved comes from well-kept crates: HTTP/1.1
//! and HTTP/2 with gzip/brotli from `reqwest` (hyper), HTML parsing from
//! `scraper` (html5ever, the browser-grade parser), robots.txt from
//! `texting_robots` (tested against Google's corpus), URLs from `url`
//! (WHATWG), sitemaps from `quick-xml`, gzip from `flate2`, the bloom filter
//! from our `sketch`.
//!
//! # Trade-offs and knobs
//! | knob | default | trade-off |
//! |---|---|---|
//! | `politeness.delay_ms` | 1000 | load on each site vs. crawl speed |
//! | `concurrency` | 32 | hosts fetched at once vs. memory and sockets |
//! | `traps.*` | 2048 B URLs, depth 64, 32 segments, a segment 3 times, 1 date per URL | coverage vs. trap pages fetched |
//! | `scope` | same-host | what counts as "the site" |
//! | `fetch.*_timeout_ms` | 5 s connect, 10 s first byte, 30 s total | patience with slow servers vs. workers held |
//! | `fetch.body_bytes_max` | 8 MiB | big pages vs. memory (also the gzip-bomb cap) |
//! | `redirects_max` | 5 | redirect chains followed |
//! | `expected_urls` | 1M | bloom filter memory (~1.2 MB per million) vs. disk lookups |
//! | `buffer_per_host` | 16 | memory per host vs. disk reads |
//! | `robots_ttl_ms` | 24 h | freshness of rules vs. robots.txt requests |
//!
//! The LSM store's log is written on every batch and fsynced once a second:
//! a killed process loses nothing; a power loss can lose the last second of
//! progress (those pages are fetched again, never lost from the queue).
#![warn(missing_docs)]

pub mod bench;
pub mod cluster;
pub mod console;
pub mod crawl;
pub mod dns;
pub mod fetch;
pub mod freshness;
pub mod frontier;
pub mod normalize;
pub mod parse;
pub mod politeness;
pub mod prioritize;
pub mod robots;
pub mod route;
pub mod seen;
pub mod simhash;
pub mod state;
pub mod stats;
pub mod store;
pub mod testweb;
pub mod traps;
