//! The crawl's state and its one write path: everything that happens to a
//! URL taken off the frontier — its page record, its content fingerprints,
//! the new URLs it links to (through the URL filter and the URL-seen test),
//! the host's politeness record — is committed in one LSM write batch. That
//! is what makes a `kill -9` resume exact: a page is either done (its record
//! and its outlinks are on disk and it is off the queue) or still queued.
//!
//! The decisions are made here from the worker's result; the I/O (HTTP,
//! parsing) happened before, outside the lock.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use lsm::{Db, WriteBatch};
use url::Url;

use crate::fetch::FetchErrorKind;
use crate::frontier::{Frontier, Lease, Next};
use crate::normalize::NormalizeOptions;
use crate::politeness::{Signal, next_delay_ms};
use crate::prioritize::{DepthPrioritizer, Prioritizer};
use crate::route::Router;
use crate::seen::{ContentSeen, UrlSeen};
use crate::stats::Stats;
use crate::store::{BodyStore, Outcome, PageMeta, WarcWriter, done_key};

mod answer;
mod config;
mod outbox;
mod revisit;

use config::scope_value;
pub use config::{Scope, StateConfig, WorkResult};

const PAGES_KEY: &[u8] = b"m/pages";
const SCOPE_PREFIX: &[u8] = b"m/scope/";
/// Times a 429/503 URL is put back before it is recorded as failed.
const OVERLOAD_RETRIES_MAX: u32 = 3;

/// The crawl state over one store.
pub struct CrawlState {
    db: Arc<Db>,
    frontier: Frontier,
    url_seen: UrlSeen,
    content_seen: ContentSeen,
    prioritizer: Box<dyn Prioritizer>,
    cfg: StateConfig,
    scope_set: HashSet<String>,
    stats: Stats,
    bodies: Option<BodyStore>,
    warc: Option<WarcWriter>,
    pages_done: u64,
    retries: HashMap<String, u32>,
    now_year: u32,
    /// Due time of the earliest scheduled revisit.
    next_revisit_ms: Option<u64>,
    /// Host → node, in a cluster.
    router: Option<Router>,
}

impl CrawlState {
    /// Opens (or creates) the crawl store in `dir`.
    pub fn open(
        dir: &Path,
        cfg: StateConfig,
        stats: Stats,
        warc: Option<&Path>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // The log is written (not fsynced) on every batch: a killed process
        // loses nothing; a power loss may lose the last second.
        // Memory is bounded by the write buffers (one active and at most one
        // immutable memtable) and the block cache: a frontier of 100M URLs
        // costs disk, not RAM (`hyperscale bench crawler` checks the peak
        // RSS is flat from 100k to 1M queued URLs).
        let opts = lsm::Options {
            create_if_missing: true,
            sync: lsm::SyncPolicy::EverySec,
            memtable_size_bytes: 4 << 20,
            immutable_memtables_max: 1,
            block_cache_size_bytes: 8 << 20,
            ..Default::default()
        };
        let db = Arc::new(Db::open(dir.join("state"), opts).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the crawl store in {}: {e} (is another crawl using it?)",
                dir.display()
            )
        })?);
        let now = clock::now_ms();
        let frontier = Frontier::open(db.clone(), cfg.politeness, cfg.buffer_per_host, now)?;
        let url_seen = UrlSeen::open(db.clone(), cfg.expected_urls)?;
        let content_seen = ContentSeen::new(db.clone());
        let pages_done = match db.get(PAGES_KEY)? {
            Some(b) if b.len() == 8 => u64::from_be_bytes(b.try_into().expect("8 bytes")),
            _ => 0,
        };
        let mut scope_set = HashSet::new();
        for kv in db.scan_prefix(SCOPE_PREFIX)? {
            let kv = kv?;
            scope_set.insert(String::from_utf8_lossy(&kv.key[SCOPE_PREFIX.len()..]).into_owned());
        }
        let bodies = if cfg.store_bodies {
            Some(BodyStore::open(&dir.join("pages"))?)
        } else {
            None
        };
        let warc = match warc {
            Some(path) => Some(WarcWriter::open(path, "hyperscale-crawler")?),
            None => None,
        };
        let year = time::OffsetDateTime::from_unix_timestamp((now / 1000) as i64)
            .map(|t| t.year() as u32)
            .unwrap_or(2026);
        let state = Self {
            db,
            frontier,
            url_seen,
            content_seen,
            prioritizer: Box::new(DepthPrioritizer),
            cfg,
            scope_set,
            stats,
            bodies,
            warc,
            pages_done,
            retries: HashMap::new(),
            now_year: year,
            next_revisit_ms: None,
            router: None,
        };
        let mut state = state;
        state.next_revisit_ms = state.first_revisit_due()?;
        state.update_gauges();
        Ok(state)
    }

    /// Replaces the prioritizer.
    pub fn set_prioritizer(&mut self, prioritizer: Box<dyn Prioritizer>) {
        self.prioritizer = prioritizer;
    }

    /// Queues the seeds (already-seen ones are ignored, so a resumed crawl
    /// can be given the same seeds) and adds them to the scope.
    pub fn add_seeds(&mut self, seeds: &[String]) -> anyhow::Result<usize> {
        let opts = NormalizeOptions {
            sort_query: self.cfg.sort_query,
        };
        let mut batch = WriteBatch::new();
        let mut added = 0;
        for seed in seeds {
            let url = crate::normalize::normalize_str(seed, opts)
                .map_err(|e| anyhow::anyhow!("seed {seed:?}: {e}"))?;
            let value = scope_value(self.cfg.scope, &url);
            let mut key = SCOPE_PREFIX.to_vec();
            key.extend_from_slice(value.as_bytes());
            batch.put(&key, b"");
            self.scope_set.insert(value);
            added += usize::from(self.queue_new(&mut batch, &url, 0)?);
        }
        self.write(batch)?;
        self.update_gauges();
        Ok(added)
    }

    /// Queues URLs at `depth` without widening the scope (what a bulk
    /// import does, and how the benchmark fills the frontier); seen ones
    /// are ignored. One write batch for all of them: callers bound the slice.
    pub fn add_queued(&mut self, urls: &[String], depth: u32) -> anyhow::Result<usize> {
        let opts = NormalizeOptions {
            sort_query: self.cfg.sort_query,
        };
        let mut batch = WriteBatch::new();
        let mut added = 0;
        for raw in urls {
            let url = crate::normalize::normalize_str(raw, opts)
                .map_err(|e| anyhow::anyhow!("URL {raw:?}: {e}"))?;
            added += usize::from(self.queue_new(&mut batch, &url, depth)?);
        }
        self.write(batch)?;
        self.update_gauges();
        Ok(added)
    }

    /// The URL-seen test and the frontier push for one normalized URL.
    fn queue_new(&mut self, batch: &mut WriteBatch, url: &Url, depth: u32) -> lsm::Result<bool> {
        if !self.url_seen.insert_if_new(batch, url.as_str())? {
            return Ok(false);
        }
        self.enqueue(batch, url, depth, 0, clock::now_ms());
        Ok(true)
    }

    fn write(&mut self, batch: WriteBatch) -> lsm::Result<()> {
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.db.write(&batch)
        };
        self.url_seen.written();
        result
    }

    /// Pages done (all runs).
    pub fn pages_done(&self) -> u64 {
        self.pages_done
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The store (read-only uses: listing pages).
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The next URL to fetch (drops URLs of hosts over their page limit).
    pub fn next(&mut self, now_ms: u64) -> anyhow::Result<Next> {
        if self.next_revisit_ms.is_some_and(|due| due <= now_ms) {
            self.promote_revisits(now_ms)?;
        }
        loop {
            let next = match (self.frontier.next(now_ms)?, self.next_revisit_ms) {
                (Next::Done, Some(due)) => Next::WaitUntil(due),
                (Next::WaitUntil(at), Some(due)) => Next::WaitUntil(at.min(due)),
                (next, _) => next,
            };
            let Next::Lease(lease) = &next else {
                self.update_gauges();
                return Ok(next);
            };
            if lease.entry.revisit.is_some()
                || self.frontier.host_fetched(&lease.host) < self.cfg.traps.pages_per_host_max
            {
                self.update_gauges();
                return Ok(next);
            }
            let Next::Lease(lease) = next else {
                unreachable!("matched above")
            };
            Stats::inc(&self.stats.traps, "pages_per_host");
            let meta = self.meta(&lease, Outcome::Trap, now_ms);
            let mut batch = WriteBatch::new();
            self.frontier.remove(&mut batch, &lease);
            self.put_done(&mut batch, &meta);
            self.write(batch)?;
            self.frontier.release(&lease.host, now_ms, 0);
        }
    }

    fn meta(&self, lease: &Lease, outcome: Outcome, now_ms: u64) -> PageMeta {
        PageMeta {
            url: lease.entry.url.clone(),
            outcome,
            status: 0,
            fetched_at_ms: now_ms,
            content_type: String::new(),
            length: 0,
            content_hash: 0,
            simhash: 0,
            outlinks: 0,
            links_found: 0,
            redirect_to: None,
            duplicate_of: None,
            duplicate_kind: None,
            canonical: None,
            etag: None,
            last_modified: None,
            error: None,
            body_file: None,
            depth: lease.entry.depth,
        }
    }

    fn put_done(&mut self, batch: &mut WriteBatch, meta: &PageMeta) {
        batch.put(
            &done_key(&meta.url),
            &serde_json::to_vec(meta).expect("page meta serializes"),
        );
        self.pages_done += 1;
        batch.put(PAGES_KEY, &self.pages_done.to_be_bytes());
    }

    /// robots.txt of the lease's host was fetched; the lease goes back to the
    /// head of its queue and the host rests for its delay.
    pub fn robots_fetched(
        &mut self,
        lease: Lease,
        crawl_delay_ms: Option<u64>,
        signal: Signal,
        sitemaps: &[String],
        failed: Option<FetchErrorKind>,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        self.stats.robots_fetched.inc();
        if let Some(kind) = failed {
            Stats::inc(&self.stats.errors, kind.name());
        }
        let host = lease.host.clone();
        self.frontier.set_crawl_delay(&host, crawl_delay_ms);
        let (_, current) = self.frontier.host_delay(&host);
        let delay = next_delay_ms(current, crawl_delay_ms, signal, &self.cfg.politeness);
        let mut batch = WriteBatch::new();
        if let Ok(base) = Url::parse(&lease.entry.url) {
            for sitemap in sitemaps {
                self.discover(&mut batch, &base, sitemap, 1, 0, now_ms);
            }
        }
        self.frontier.record_fetch(&mut batch, &host, delay, false);
        self.frontier.unlease(lease);
        self.write(batch)?;
        self.frontier.release(&host, now_ms, delay);
        self.update_gauges();
        Ok(())
    }

    /// Commits a worker's result for `lease`.
    pub fn complete(
        &mut self,
        lease: Lease,
        result: WorkResult,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let host = lease.host.clone();
        let (crawl_delay, current) = self.frontier.host_delay(&host);
        let mut batch = WriteBatch::new();
        let mut meta = self.meta(&lease, Outcome::Fetched, now_ms);
        let delay = match result {
            WorkResult::Disallowed => {
                Stats::inc(&self.stats.skipped, "robots");
                meta.outcome = Outcome::Robots;
                self.frontier.remove(&mut batch, &lease);
                self.put_done(&mut batch, &meta);
                self.write(batch)?;
                self.frontier.release(&host, now_ms, 0);
                self.update_gauges();
                return Ok(());
            }
            WorkResult::Failed { kind, message } => {
                Stats::inc(&self.stats.errors, kind.name());
                tracing::debug!(url = %lease.entry.url, "fetch failed: {message}");
                meta.outcome = Outcome::Error;
                meta.error = Some(kind.name().to_string());
                next_delay_ms(current, crawl_delay, Signal::Failed, &self.cfg.politeness)
            }
            WorkResult::Answered {
                response,
                extracted,
            } => {
                let overloaded = matches!(response.status, 429 | 503);
                let signal = if overloaded {
                    let retry_after_ms = response
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| s.saturating_mul(1000));
                    Signal::Overloaded { retry_after_ms }
                } else {
                    Signal::Answer {
                        elapsed_ms: response.elapsed_ms,
                    }
                };
                let delay = next_delay_ms(current, crawl_delay, signal, &self.cfg.politeness);
                let tries = self.retries.entry(lease.entry.url.clone()).or_insert(0);
                if overloaded && *tries < OVERLOAD_RETRIES_MAX {
                    *tries += 1;
                    Stats::inc(&self.stats.statuses, "5xx");
                    self.frontier.record_fetch(&mut batch, &host, delay, false);
                    self.frontier.unlease(lease);
                    self.write(batch)?;
                    self.frontier.release(&host, now_ms, delay);
                    return Ok(());
                }
                self.retries.remove(&lease.entry.url);
                self.answered(&mut batch, &lease, &mut meta, *response, extracted, now_ms)?;
                if self.cfg.freshness.enabled
                    && ((200..300).contains(&meta.status) || meta.status == 304)
                {
                    self.schedule_revisit(&mut batch, &lease, &meta, now_ms);
                }
                delay
            }
        };
        self.frontier.remove(&mut batch, &lease);
        self.put_done(&mut batch, &meta);
        self.frontier.record_fetch(&mut batch, &host, delay, true);
        self.write(batch)?;
        self.frontier.release(&host, now_ms, delay);
        self.update_gauges();
        Ok(())
    }

    fn update_gauges(&self) {
        let f = self.frontier.stats();
        self.stats.frontier.set(f.queued as i64);
        self.stats.hosts_active.set(f.hosts_active as i64);
        self.stats.hosts_queued.set(f.hosts_queued as i64);
    }

    /// Every page record, in URL order.
    pub fn pages(&self) -> anyhow::Result<Vec<PageMeta>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(crate::store::DONE_PREFIX)? {
            let kv = kv?;
            if let Ok(meta) = serde_json::from_slice::<PageMeta>(&kv.value) {
                out.push(meta);
            }
        }
        Ok(out)
    }
}
