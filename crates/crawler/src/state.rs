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
use serde::{Deserialize, Serialize};
use url::Url;

use crate::fetch::{FetchErrorKind, Response};
use crate::freshness::{
    Change, FreshnessConfig, REVISIT_PREFIX, Revisit, due_of, next_interval_ms, revisit_key,
};
use crate::frontier::{Frontier, Lease, Next, QueuedUrl};
use crate::normalize::{NormalizeOptions, domain_of, host_key, resolve};
use crate::parse::Extracted;
use crate::politeness::{PolitenessConfig, Signal, next_delay_ms};
use crate::prioritize::{DepthPrioritizer, Prioritizer};
use crate::route::Router;
use crate::seen::{ContentMatch, ContentSeen, UrlSeen, content_hash};
use crate::simhash::simhash;
use crate::stats::Stats;
use crate::store::{BodyStore, Outcome, PageMeta, WarcResponse, WarcWriter, done_key};
use crate::traps::{self, TrapLimits};

const PAGES_KEY: &[u8] = b"m/pages";
const SCOPE_PREFIX: &[u8] = b"m/scope/";
/// Times a 429/503 URL is put back before it is recorded as failed.
const OVERLOAD_RETRIES_MAX: u32 = 3;

/// Which discovered URLs are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Only the seeds' hosts.
    #[default]
    SameHost,
    /// The seeds' registrable domains.
    SameDomain,
    /// Anything.
    Any,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "same-host" => Ok(Self::SameHost),
            "same-domain" => Ok(Self::SameDomain),
            "any" => Ok(Self::Any),
            other => Err(format!(
                "unknown scope {other:?}; use same-host, same-domain or any"
            )),
        }
    }
}

/// The state's knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Politeness.
    pub politeness: PolitenessConfig,
    /// Trap limits.
    pub traps: TrapLimits,
    /// Scope.
    pub scope: Scope,
    /// Sort query parameters when normalizing.
    pub sort_query: bool,
    /// Redirect hops followed from one URL.
    pub redirects_max: u32,
    /// Write page bodies to `<data-dir>/pages`.
    pub store_bodies: bool,
    /// URLs the bloom filter is sized for.
    pub expected_urls: usize,
    /// Queue head kept in memory per host.
    pub buffer_per_host: usize,
    /// Revisits of fetched pages.
    pub freshness: FreshnessConfig,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            politeness: PolitenessConfig::default(),
            traps: TrapLimits::default(),
            scope: Scope::SameHost,
            sort_query: true,
            redirects_max: 5,
            store_bodies: true,
            expected_urls: 1_000_000,
            buffer_per_host: 16,
            freshness: FreshnessConfig::default(),
        }
    }
}

/// What a worker brings back for a lease.
pub enum WorkResult {
    /// robots.txt disallows the URL: nothing was requested.
    Disallowed,
    /// No HTTP answer.
    Failed {
        /// Kind.
        kind: FetchErrorKind,
        /// Message.
        message: String,
    },
    /// An HTTP answer, with what its handler extracted.
    Answered {
        /// The response.
        response: Box<Response>,
        /// The handler's output, when one read the body.
        extracted: Option<Extracted>,
    },
}

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

/// Key prefix of URLs waiting to be forwarded to another node.
const OUTBOX_PREFIX: &[u8] = b"o/";

fn outbox_key(node: &str, url: &str) -> Vec<u8> {
    let mut key = OUTBOX_PREFIX.to_vec();
    key.extend_from_slice(node.as_bytes());
    key.push(0);
    key.extend_from_slice(url.as_bytes());
    key
}

fn scope_value(scope: Scope, url: &Url) -> String {
    match scope {
        Scope::SameDomain => domain_of(url),
        _ => host_key(url),
    }
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
        let opts = lsm::Options {
            create_if_missing: true,
            sync: lsm::SyncPolicy::EverySec,
            memtable_size_bytes: 8 << 20,
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

    /// Queues a new URL: into the frontier, or, when another node of the
    /// cluster owns its host, into that node's outbox (`o/<node>\0<url>`,
    /// in the same batch, so a forward survives a crash like a queued URL).
    fn enqueue(&mut self, batch: &mut WriteBatch, url: &Url, depth: u32, redirects: u32, now_ms: u64) {
        let host = host_key(url);
        let entry = QueuedUrl {
            url: url.to_string(),
            depth,
            redirects,
            revisit: None,
        };
        if let Some(owner) = self.router.as_ref().and_then(|r| r.remote_owner(&host)) {
            batch.put(
                &outbox_key(owner, &entry.url),
                &serde_json::to_vec(&entry).expect("a queued URL serializes"),
            );
            self.stats.forwarded.inc();
            return;
        }
        let prio = self.prioritizer.priority(url, depth);
        self.frontier.push(batch, &host, prio, entry, now_ms);
        self.stats.queued.inc();
    }

    /// Routes new URLs of other nodes' hosts to their outboxes from now on.
    pub fn set_router(&mut self, router: Router) {
        self.router = Some(router);
    }

    /// Up to `max` URLs waiting to be forwarded to `node`, with their keys.
    pub fn outbox(&self, node: &str, max: usize) -> anyhow::Result<Vec<(Vec<u8>, QueuedUrl)>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(&outbox_key(node, ""))?.take(max) {
            let kv = kv?;
            if let Ok(entry) = serde_json::from_slice::<QueuedUrl>(&kv.value) {
                out.push((kv.key, entry));
            }
        }
        Ok(out)
    }

    /// Drops outbox entries the peer acknowledged.
    pub fn forwarded(&mut self, keys: &[Vec<u8>]) -> anyhow::Result<()> {
        let mut batch = WriteBatch::new();
        for key in keys {
            batch.delete(key);
        }
        self.write(batch)?;
        Ok(())
    }

    /// Queues URLs a peer forwarded (its hosts are ours): the URL-seen test,
    /// then the frontier, never forwarded again (two nodes that disagree on
    /// the ring cannot bounce a URL between them).
    pub fn receive(&mut self, entries: &[QueuedUrl]) -> anyhow::Result<usize> {
        let opts = NormalizeOptions {
            sort_query: self.cfg.sort_query,
        };
        let mut batch = WriteBatch::new();
        let mut added = 0;
        let now_ms = clock::now_ms();
        for entry in entries {
            let Ok(url) = crate::normalize::normalize_str(&entry.url, opts) else {
                Stats::inc(&self.stats.skipped, "bad_url");
                continue;
            };
            if !self.url_seen.insert_if_new(&mut batch, url.as_str())? {
                continue;
            }
            let prio = self.prioritizer.priority(&url, entry.depth);
            let queued = QueuedUrl {
                url: url.to_string(),
                depth: entry.depth,
                redirects: entry.redirects,
                revisit: None,
            };
            self.frontier.push(&mut batch, &host_key(&url), prio, queued, now_ms);
            self.stats.queued.inc();
            added += 1;
        }
        self.write(batch)?;
        self.update_gauges();
        Ok(added)
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

    fn first_revisit_due(&self) -> lsm::Result<Option<u64>> {
        match self.db.scan_prefix(REVISIT_PREFIX)?.next() {
            Some(kv) => Ok(due_of(&kv?.key)),
            None => Ok(None),
        }
    }

    /// Moves the revisits due by `now_ms` (a bounded number per call) into
    /// the frontier, each in the batch that deletes its schedule key.
    fn promote_revisits(&mut self, now_ms: u64) -> anyhow::Result<()> {
        const PROMOTE_MAX: usize = 256;
        let end = revisit_key(now_ms.saturating_add(1), "");
        let due: Vec<(Vec<u8>, Vec<u8>)> = self
            .db
            .scan((
                std::ops::Bound::Included(REVISIT_PREFIX),
                std::ops::Bound::Excluded(end.as_slice()),
            ))?
            .take(PROMOTE_MAX)
            .map(|kv| kv.map(|kv| (kv.key, kv.value)))
            .collect::<lsm::Result<_>>()?;
        let mut batch = WriteBatch::new();
        for (key, value) in due {
            batch.delete(&key);
            let Ok(entry) = serde_json::from_slice::<QueuedUrl>(&value) else {
                continue;
            };
            let Ok(url) = Url::parse(&entry.url) else {
                continue;
            };
            // Revisits go first among a host's URLs; politeness still spaces them.
            self.frontier
                .push(&mut batch, &host_key(&url), 0, entry, now_ms);
        }
        self.write(batch)?;
        self.next_revisit_ms = self.first_revisit_due()?;
        Ok(())
    }

    /// Schedules the next visit of a page answered 2xx or 304 (in `batch`).
    fn schedule_revisit(
        &mut self,
        batch: &mut WriteBatch,
        lease: &Lease,
        meta: &PageMeta,
        now_ms: u64,
    ) {
        let last = lease.entry.revisit.as_ref().map(|r| {
            let change = Change::of(meta.status, meta.content_hash, r);
            Stats::inc(&self.stats.revisits, change.name());
            (r.interval_ms, change)
        });
        let interval_ms = next_interval_ms(last, &self.cfg.freshness);
        let due = now_ms.saturating_add(interval_ms);
        let entry = QueuedUrl {
            url: lease.entry.url.clone(),
            depth: lease.entry.depth,
            redirects: 0,
            revisit: Some(Revisit {
                etag: meta.etag.clone(),
                last_modified: meta.last_modified.clone(),
                content_hash: meta.content_hash,
                interval_ms,
            }),
        };
        batch.put(
            &revisit_key(due, &entry.url),
            &serde_json::to_vec(&entry).expect("a queued URL serializes"),
        );
        self.next_revisit_ms = Some(self.next_revisit_ms.map_or(due, |d| d.min(due)));
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

    fn answered(
        &mut self,
        batch: &mut WriteBatch,
        lease: &Lease,
        meta: &mut PageMeta,
        response: Response,
        extracted: Option<Extracted>,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let status = response.status;
        Stats::inc(&self.stats.statuses, &format!("{}xx", status / 100));
        self.stats.pages.inc();
        self.stats.bytes.inc_by(response.body.len() as u64);
        meta.status = status;
        meta.content_type = response.media_type();
        meta.length = response.body.len() as u64;
        meta.etag = response.header("etag").map(str::to_string);
        meta.last_modified = response.header("last-modified").map(str::to_string);
        if status == 304
            && let Some(last) = &lease.entry.revisit
        {
            // Not modified: the page is what the last visit saw.
            meta.content_hash = last.content_hash;
            meta.etag = meta.etag.take().or_else(|| last.etag.clone());
            meta.last_modified = meta.last_modified.take().or_else(|| last.last_modified.clone());
        }
        if response.type_skipped {
            Stats::inc(&self.stats.skipped, "type");
        }
        let base = Url::parse(&lease.entry.url)?;
        let depth = lease.entry.depth;
        if (300..400).contains(&status)
            && let Some(location) = response.header("location")
        {
            meta.redirect_to = Some(location.to_string());
            if lease.entry.redirects >= self.cfg.redirects_max {
                Stats::inc(&self.stats.skipped, "redirect_limit");
            } else {
                self.stats.redirects.inc();
                // A redirect is the same page under another name: same depth.
                self.discover(
                    batch,
                    &base,
                    location,
                    depth,
                    lease.entry.redirects + 1,
                    now_ms,
                );
            }
        }
        if let Some(extracted) = extracted {
            let hash = content_hash(&response.body);
            let fingerprint = simhash(&extracted.text);
            meta.content_hash = hash;
            meta.simhash = fingerprint;
            meta.canonical = extracted.canonical.clone();
            meta.links_found = extracted.links.len() as u32;
            let mut novel = true;
            // A revisit is the same URL again: it is not a duplicate of itself.
            if (200..300).contains(&status) && lease.entry.revisit.is_none() {
                match self
                    .content_seen
                    .check(batch, &lease.entry.url, hash, fingerprint)?
                {
                    ContentMatch::New => {}
                    ContentMatch::Exact { of } => {
                        Stats::inc(&self.stats.duplicates, "exact");
                        meta.duplicate_of = Some(of);
                        meta.duplicate_kind = Some("exact".into());
                        novel = false;
                    }
                    ContentMatch::Near { of, .. } => {
                        Stats::inc(&self.stats.duplicates, "near");
                        meta.duplicate_of = Some(of);
                        meta.duplicate_kind = Some("near".into());
                    }
                }
            }
            let link_base = extracted.base.clone().unwrap_or_else(|| base.clone());
            let mut queued = 0;
            let mut on_page = HashSet::new();
            for link in &extracted.links {
                if link.nofollow {
                    Stats::inc(&self.stats.skipped, "nofollow");
                    continue;
                }
                if !on_page.insert(link.href.as_str()) {
                    continue;
                }
                queued +=
                    u32::from(self.discover(batch, &link_base, &link.href, depth + 1, 0, now_ms));
            }
            meta.outlinks = queued;
            if novel
                && !extracted.noindex
                && (200..300).contains(&status)
                && let Some(bodies) = &self.bodies
            {
                meta.body_file = Some(bodies.put(&lease.entry.url, &response.body)?);
            }
        }
        if (200..300).contains(&status)
            && let Some(warc) = &mut self.warc
        {
            warc.response(&WarcResponse {
                url: &lease.entry.url,
                fetched_at_ms: now_ms,
                status,
                headers: &response.headers,
                body: &response.body,
            })?;
        }
        Ok(())
    }

    /// The URL filter and URL-seen test for one link; true if it was queued.
    fn discover(
        &mut self,
        batch: &mut WriteBatch,
        base: &Url,
        href: &str,
        depth: u32,
        redirects: u32,
        now_ms: u64,
    ) -> bool {
        let opts = NormalizeOptions {
            sort_query: self.cfg.sort_query,
        };
        let url = match resolve(base, href, opts) {
            Ok(url) => url,
            Err(crate::normalize::UrlError::Scheme(_)) => return false,
            Err(_) => {
                Stats::inc(&self.stats.skipped, "bad_url");
                return false;
            }
        };
        if self.cfg.scope != Scope::Any
            && !self.scope_set.contains(&scope_value(self.cfg.scope, &url))
        {
            Stats::inc(&self.stats.skipped, "scope");
            return false;
        }
        if let Err(trap) = traps::check(&url, depth, &self.cfg.traps, self.now_year) {
            Stats::inc(&self.stats.traps, trap.name());
            return false;
        }
        match self.url_seen.insert_if_new(batch, url.as_str()) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(err) => {
                tracing::warn!("URL-seen lookup failed: {err}");
                return false;
            }
        }
        self.enqueue(batch, &url, depth, redirects, now_ms);
        true
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
