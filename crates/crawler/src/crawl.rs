//! The crawl loop: workers that lease a URL from the frontier, check
//! robots.txt, download, parse, and commit (the chapter's pipeline, steps
//! 2 → 10). Workers are tokio tasks; the state sits behind one mutex and
//! every call that touches the LSM store runs on the blocking pool. A host
//! is leased to one worker at a time, so `concurrency` bounds the number of
//! hosts fetched in parallel, not the load on any one host.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::dns::CachingResolver;
use crate::fetch::{FetchConfig, Fetcher, Validators};
use crate::frontier::{Lease, Next};
use crate::parse::Handlers;
use crate::politeness::Signal;
use crate::robots::{ROBOTS_BYTES_MAX, RobotsAnswer, RobotsCache, rules_from};
use crate::state::{CrawlState, StateConfig, WorkResult};
use crate::stats::Stats;

/// Everything a crawl is configured by.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrawlConfig {
    /// Where the state, page bodies and status live.
    pub data_dir: PathBuf,
    /// Parallel workers (hosts fetched at once).
    pub concurrency: usize,
    /// Stop after this many pages done (all runs); 0 = no limit.
    pub max_pages: u64,
    /// robots.txt cache lifetime.
    pub robots_ttl_ms: u64,
    /// WARC output, if any.
    pub warc: Option<PathBuf>,
    /// The downloader.
    pub fetch: FetchConfig,
    /// Frontier, filters, storage.
    pub state: StateConfig,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data/crawler"),
            concurrency: 32,
            max_pages: 0,
            robots_ttl_ms: 24 * 3600 * 1000,
            warc: None,
            fetch: FetchConfig::default(),
            state: StateConfig::default(),
        }
    }
}

/// A crawl ready to run.
pub struct Crawler {
    state: Arc<Mutex<CrawlState>>,
    fetcher: Fetcher,
    handlers: Arc<Handlers>,
    robots: Arc<Mutex<RobotsCache>>,
    cfg: CrawlConfig,
    stop: Arc<AtomicBool>,
    stats: Stats,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// Nothing left to fetch.
    Complete,
    /// `max_pages` reached.
    MaxPages,
    /// Stopped from outside.
    Stopped,
}

impl Crawler {
    /// Opens the state in `cfg.data_dir` with fresh counters.
    pub fn open(cfg: CrawlConfig) -> anyhow::Result<Self> {
        Self::open_with(cfg, Stats::default(), Handlers::default())
    }

    /// Opens with given counters (registered elsewhere) and handlers.
    pub fn open_with(cfg: CrawlConfig, stats: Stats, handlers: Handlers) -> anyhow::Result<Self> {
        let state = CrawlState::open(
            &cfg.data_dir,
            cfg.state.clone(),
            stats.clone(),
            cfg.warc.as_deref(),
        )?;
        let dns = CachingResolver::new(Duration::from_secs(300), 100_000);
        let fetcher = Fetcher::new(cfg.fetch.clone(), dns)?;
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
            fetcher,
            handlers: Arc::new(handlers),
            robots: Arc::new(Mutex::new(RobotsCache::new(
                Duration::from_millis(cfg.robots_ttl_ms),
                100_000,
            ))),
            cfg,
            stop: Arc::new(AtomicBool::new(false)),
            stats,
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<Mutex<CrawlState>> {
        &self.state
    }

    /// A flag that stops the workers after their current page.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Queues seeds.
    pub fn add_seeds(&self, seeds: &[String]) -> anyhow::Result<usize> {
        self.state.lock().add_seeds(seeds)
    }

    /// Runs the workers until the frontier is empty, `max_pages` is reached,
    /// or the stop flag is set.
    pub async fn run(&self) -> anyhow::Result<End> {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.cfg.concurrency.max(1) {
            let worker = Worker {
                state: self.state.clone(),
                fetcher: self.fetcher.clone(),
                handlers: self.handlers.clone(),
                robots: self.robots.clone(),
                stop: self.stop.clone(),
                max_pages: self.cfg.max_pages,
                fetch_latency: self.stats.fetch_latency.clone(),
            };
            workers.spawn(async move { worker.run().await });
        }
        let mut end = End::Complete;
        while let Some(result) = workers.join_next().await {
            match result {
                Ok(Ok(e)) => {
                    if e != End::Complete {
                        end = e;
                    }
                }
                Ok(Err(err)) => {
                    self.stop.store(true, Ordering::SeqCst);
                    workers.abort_all();
                    return Err(err);
                }
                Err(err) => {
                    self.stop.store(true, Ordering::SeqCst);
                    workers.abort_all();
                    return Err(anyhow::anyhow!("a crawl worker died: {err}"));
                }
            }
        }
        if self.stop.load(Ordering::SeqCst) && end == End::Complete {
            end = End::Stopped;
        }
        Ok(end)
    }
}

struct Worker {
    state: Arc<Mutex<CrawlState>>,
    fetcher: Fetcher,
    handlers: Arc<Handlers>,
    robots: Arc<Mutex<RobotsCache>>,
    stop: Arc<AtomicBool>,
    max_pages: u64,
    fetch_latency: crate::stats::LatencySamples,
}

/// Longest a worker sleeps before looking again.
const IDLE_POLL_MS: u64 = 20;

impl Worker {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut CrawlState) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || f(&mut state.lock()))
            .await
            .map_err(|e| anyhow::anyhow!("crawl state task failed: {e}"))?
    }

    async fn run(self) -> anyhow::Result<End> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(End::Stopped);
            }
            let max = self.max_pages;
            let next = self
                .blocking(move |s| {
                    if max > 0 && s.pages_done() >= max {
                        return Ok(None);
                    }
                    s.next(clock::now_ms()).map(Some)
                })
                .await?;
            let Some(next) = next else {
                return Ok(End::MaxPages);
            };
            match next {
                Next::Done => return Ok(End::Complete),
                Next::Busy => tokio::time::sleep(Duration::from_millis(IDLE_POLL_MS)).await,
                Next::WaitUntil(at) => {
                    let wait = at.saturating_sub(clock::now_ms()).clamp(1, IDLE_POLL_MS);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Next::Lease(lease) => self.work(lease).await?,
            }
        }
    }

    async fn work(&self, lease: Lease) -> anyhow::Result<()> {
        let Ok(url) = Url::parse(&lease.entry.url) else {
            let result = WorkResult::Failed {
                kind: crate::fetch::FetchErrorKind::Other,
                message: "stored URL does not parse".into(),
            };
            return self
                .blocking(move |s| s.complete(lease, result, clock::now_ms()))
                .await;
        };
        let now = clock::now_ms();
        let cached = self.robots.lock().get(&lease.host, now);
        let Some(rules) = cached else {
            return self.fetch_robots(lease, &url).await;
        };
        if !rules.allowed(url.as_str()) {
            return self
                .blocking(move |s| s.complete(lease, WorkResult::Disallowed, clock::now_ms()))
                .await;
        }
        let handlers = self.handlers.clone();
        let accept_url = url.clone();
        let validators = lease
            .entry
            .revisit
            .as_ref()
            .map(|r| Validators {
                etag: r.etag.clone(),
                last_modified: r.last_modified.clone(),
            })
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let fetched = self
            .fetcher
            .get(
                url.as_str(),
                &validators,
                move |media| handlers.any_accepts(media, &accept_url),
                self.fetcher.config().body_bytes_max,
            )
            .await;
        self.fetch_latency.record(started.elapsed());
        let handlers = self.handlers.clone();
        self.blocking(move |s| {
            let result = match fetched {
                Err(err) => WorkResult::Failed {
                    kind: err.kind,
                    message: err.message,
                },
                Ok(response) => {
                    let extracted = if response.body.is_empty() && response.type_skipped {
                        None
                    } else if (200..300).contains(&response.status) {
                        handlers
                            .find(&response.media_type(), &url)
                            .map(|h| h.extract(&url, &response.body))
                    } else {
                        None
                    };
                    WorkResult::Answered {
                        response: Box::new(response),
                        extracted,
                    }
                }
            };
            s.complete(lease, result, clock::now_ms())
        })
        .await
    }

    async fn fetch_robots(&self, lease: Lease, url: &Url) -> anyhow::Result<()> {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        let agent = self.fetcher.config().robots_agent().to_string();
        let answer = self
            .fetcher
            .get(
                robots_url.as_str(),
                &Validators::default(),
                |_| true,
                ROBOTS_BYTES_MAX,
            )
            .await;
        let (rules, signal) = match &answer {
            Ok(r) => (
                rules_from(&agent, RobotsAnswer::Status(r.status, &r.body)),
                if matches!(r.status, 429 | 503) {
                    Signal::Overloaded {
                        retry_after_ms: None,
                    }
                } else {
                    Signal::Answer {
                        elapsed_ms: r.elapsed_ms,
                    }
                },
            ),
            Err(_) => (
                rules_from(&agent, RobotsAnswer::Unreachable),
                Signal::Failed,
            ),
        };
        let failed = answer.as_ref().err().map(|e| e.kind);
        let crawl_delay = rules.crawl_delay_ms();
        let sitemaps = rules.sitemaps();
        self.robots.lock().put(&lease.host, rules, clock::now_ms());
        self.blocking(move |s| {
            s.robots_fetched(
                lease,
                crawl_delay,
                signal,
                &sitemaps,
                failed,
                clock::now_ms(),
            )
        })
        .await
    }
}
