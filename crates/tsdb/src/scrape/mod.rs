//! Collection by pull, the chapter's preferred model: a collector reads a
//! list of targets (service discovery: here fixed lists and files, as
//! Prometheus's `static_configs` and `file_sd_configs`), fetches each
//! target's `/metrics` every interval and writes what it finds.
//!
//! ```text
//!  prometheus.yml ──▶ Config ──▶ targets (static + SD files, re-read every refresh_interval)
//!                                  │ ring: owner(target) == this collector?
//!                                  ▼
//!                     one loop per owned target ── GET /metrics (timeout, body limit)
//!                                  │  text format ─▶ limits ─▶ + job/instance labels
//!                                  ▼
//!                     Db::append: samples, stale markers, up / scrape_duration_seconds /
//!                                 scrape_samples_scraped
//! ```
//!
//! # Sharding
//!
//! One collector cannot pull from every target of a big fleet, so the
//! chapter spreads targets over several collectors that own ranges of a
//! consistent-hash ring (the workspace's `ring` crate, 100 virtual nodes per
//! collector). Each collector is started with `--collector-id i --collectors
//! n`, reads the same config, and keeps only the targets the ring gives it:
//! every target is scraped by exactly one collector, and adding a collector
//! moves only about `1/n` of the targets ([`Sharding::owns`]).
//!
//! # Health and staleness
//!
//! Every scrape writes `up` (1 or 0), `scrape_duration_seconds` and
//! `scrape_samples_scraped` with the target's labels. A series that a
//! target stops exposing, every series of a failed scrape, and all of a
//! target's series when it leaves the config (or this collector's share)
//! get a staleness marker, so queries stop showing them at once rather than
//! after the 5-minute lookback.
//!
//! # Limits
//!
//! Per job, as Prometheus names them: `body_size_limit`, `sample_limit`,
//! `label_limit`, `label_name_length_limit`, `label_value_length_limit`;
//! a breach fails the scrape (`up` 0) and stores none of its samples. The
//! database's own [`crate::Limits`] apply on top.

pub mod config;
pub mod target;
pub mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Config, Target};
pub use target::{State, scrape};

use crate::Db;

/// Why a scrape, or the configuration, failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The configuration or an SD file is invalid.
    #[error("scrape config: {0}")]
    Config(String),
    /// The target could not be fetched.
    #[error("{0}")]
    Http(String),
    /// The target did not answer within the scrape timeout.
    #[error("scrape timed out after {after_ms} ms")]
    Timeout {
        /// The timeout.
        after_ms: u64,
    },
    /// The body is larger than `body_size_limit`.
    #[error("body size limit exceeded ({limit} bytes)")]
    BodyLimit {
        /// The limit.
        limit: usize,
    },
    /// More samples than `sample_limit`.
    #[error("sample limit exceeded ({limit})")]
    SampleLimit {
        /// The limit.
        limit: usize,
    },
    /// A series breaks a label limit (the job's or the database's).
    #[error("label limit exceeded: {0}")]
    LabelLimit(String),
    /// A malformed line in the exposition text.
    #[error("line {line}: {why}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// Which share of the targets this collector scrapes.
pub struct Sharding {
    id: usize,
    ring: Option<ring::Ring<String>>,
}

impl Sharding {
    /// Collector `id` of `collectors` (`0 <= id < collectors`).
    pub fn new(id: usize, collectors: usize) -> Result<Self, ScrapeError> {
        if collectors == 0 || id >= collectors {
            return Err(ScrapeError::Config(format!(
                "collector id {id} is not below the collector count {collectors}"
            )));
        }
        if collectors == 1 {
            return Ok(Self { id, ring: None });
        }
        let mut r = ring::Ring::new();
        for i in 0..collectors {
            r.add_server(collector_name(i), 100)
                .map_err(|e| ScrapeError::Config(format!("collectors: {e}")))?;
        }
        Ok(Self { id, ring: Some(r) })
    }

    /// The only collector: owns every target.
    pub fn single() -> Self {
        Self { id: 0, ring: None }
    }

    /// Whether this collector scrapes `target`.
    pub fn owns(&self, target: &Target) -> bool {
        match &self.ring {
            None => true,
            Some(r) => {
                r.owner(target.ring_key().as_bytes()).map(String::as_str)
                    == Some(collector_name(self.id).as_str())
            }
        }
    }
}

fn collector_name(i: usize) -> String {
    format!("collector-{i}")
}

/// Scrapes the targets of a config that this collector owns, until stopped.
pub struct Manager {
    db: Arc<Db>,
    config: Config,
    sharding: Sharding,
    client: reqwest::Client,
    running: BTreeMap<Target, (oneshot::Sender<bool>, JoinHandle<()>)>,
}

impl Manager {
    /// A manager over `db`.
    pub fn new(db: Arc<Db>, config: Config, sharding: Sharding) -> Result<Self, ScrapeError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("hyperscale-tsdb/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| ScrapeError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            db,
            config,
            sharding,
            client,
            running: BTreeMap::new(),
        })
    }

    /// A manager reading `path` (a `prometheus.yml`).
    pub fn from_file(db: Arc<Db>, path: PathBuf, sharding: Sharding) -> Result<Self, ScrapeError> {
        Self::new(db, Config::load(&path)?, sharding)
    }

    /// The targets this collector scrapes now.
    pub fn targets(&self) -> Vec<Target> {
        self.running.keys().cloned().collect()
    }

    /// Re-reads service discovery and starts or stops target loops to
    /// match; a target that left gets its series marked stale. An SD error
    /// keeps the current targets (as Prometheus keeps the last good list).
    /// Spawns on the current tokio runtime: call it from inside one.
    pub fn sync(&mut self) {
        let wanted = match self.config.targets() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "service discovery failed; keeping the current targets");
                return;
            }
        };
        let wanted: BTreeMap<Target, ()> = wanted
            .into_iter()
            .filter(|t| self.sharding.owns(t))
            .map(|t| (t, ()))
            .collect();
        let gone: Vec<Target> = self
            .running
            .keys()
            .filter(|t| !wanted.contains_key(*t))
            .cloned()
            .collect();
        for t in gone {
            if let Some((stop, _)) = self.running.remove(&t) {
                let _ = stop.send(true);
            }
        }
        for (t, ()) in wanted {
            if self.running.contains_key(&t) {
                continue;
            }
            let (stop, stopped) = oneshot::channel();
            let job = self.config.jobs[t.job].clone();
            let task = tokio::spawn(target::run(
                self.db.clone(),
                self.client.clone(),
                job,
                t.clone(),
                stopped,
            ));
            self.running.insert(t, (stop, task));
        }
    }

    /// Syncs every refresh interval until `shutdown`, then stops every loop
    /// (without stale markers: the targets did not go away, we did).
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let refresh = self
            .config
            .jobs
            .iter()
            .map(|j| j.refresh)
            .min()
            .unwrap_or(Duration::from_secs(300));
        tokio::pin!(shutdown);
        loop {
            self.sync();
            tokio::select! {
                _ = tokio::time::sleep(refresh) => {}
                _ = &mut shutdown => break,
            }
        }
        for (_, (stop, task)) in std::mem::take(&mut self.running) {
            let _ = stop.send(false);
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_exactly_one_collector() {
        let yaml = format!(
            "scrape_configs: [{{job_name: a, static_configs: [{{targets: [{}]}}]}}]",
            (0..300)
                .map(|i| format!("'h{i}:80'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let config = Config::parse(&yaml, PathBuf::from(".")).unwrap();
        let targets = config.targets().unwrap();
        let shards: Vec<Sharding> = (0..3).map(|i| Sharding::new(i, 3).unwrap()).collect();
        let mut counts = [0usize; 3];
        for t in &targets {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(t)).collect();
            assert_eq!(owners.len(), 1, "{t:?}");
            counts[owners[0]] += 1;
        }
        // Virtual nodes spread them: no collector idles or takes most.
        assert!(
            counts.iter().all(|&c| (50..=150).contains(&c)),
            "{counts:?}"
        );
        // Adding a collector moves about a quarter, not most.
        let four: Vec<Sharding> = (0..4).map(|i| Sharding::new(i, 4).unwrap()).collect();
        let moved = targets
            .iter()
            .filter(|t| {
                let before = (0..3).find(|&i| shards[i].owns(t));
                let after = (0..4).find(|&i| four[i].owns(t));
                before != after
            })
            .count();
        assert!(moved < 120, "{moved} of 300 moved");
        assert!(Sharding::new(3, 3).is_err());
        assert!(Sharding::new(0, 0).is_err());
    }
}
