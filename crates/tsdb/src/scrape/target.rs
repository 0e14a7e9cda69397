//! One target's scrape loop: fetch `/metrics` every interval within the
//! timeout and a body-size bound, parse it, check the job's limits, attach
//! the target's labels, write the samples and the report series (`up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`) in one append, and
//! mark series stale when they vanish: a series missing from a scrape, every
//! series of a failed scrape, and everything (report series too) when the
//! target leaves the configuration or this collector's share of the ring.
//! The staleness marker is Prometheus's special NaN, so PromQL stops
//! returning the series at once instead of 5 minutes later.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::config::{Job, Target};
use super::{ScrapeError, text};
use crate::{Db, Labels, SeriesSamples};

/// Accept header Prometheus sends for the text format.
const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// Runs until `stop` fires or is dropped; marks all series stale if it
/// fired with `true` (the target went away, rather than the process).
pub async fn run(
    db: Arc<Db>,
    client: reqwest::Client,
    job: Job,
    target: Target,
    mut stop: oneshot::Receiver<bool>,
) {
    let mut state = State::default();
    // Spread targets over the interval, as Prometheus does, by a stable
    // offset from the target's identity.
    let interval_ms = u64::try_from(job.interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let offset_ms = xxhash_rust::xxh3::xxh3_64(target.ring_key().as_bytes()) % interval_ms;
    let first = tokio::time::Instant::now() + Duration::from_millis(offset_ms.min(1_000));
    let mut tick = tokio::time::interval_at(first, job.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mark_stale = loop {
        tokio::select! {
            _ = tick.tick() => {}
            stopped = &mut stop => break stopped.unwrap_or(false),
        }
        let started_ms = now_ms();
        let started = Instant::now();
        let result = scrape(&client, &job, &target).await;
        let duration = started.elapsed();
        let batch = state.batch(&db, &job, &target, started_ms, duration, result);
        write(&db, batch).await;
    };
    if mark_stale {
        let batch = state.all_stale(&db, &target, now_ms());
        write(&db, batch).await;
    }
}

fn now_ms() -> i64 {
    i64::try_from(clock::now_ms()).unwrap_or(i64::MAX)
}

async fn write(db: &Db, batch: Vec<SeriesSamples>) {
    match db.append(batch) {
        Ok(ticket) => {
            if let Err(e) = ticket.await {
                tracing::warn!(error = %e, "scraped samples were not stored");
            }
        }
        Err(e) => tracing::warn!(error = %e, "scraped samples were refused"),
    }
}

/// Fetches and parses one scrape, bounded by the timeout and body limit.
pub async fn scrape(
    client: &reqwest::Client,
    job: &Job,
    target: &Target,
) -> Result<Vec<text::ParsedSample>, ScrapeError> {
    let body = tokio::time::timeout(job.timeout, fetch(client, &target.url, job.body_bytes_max))
        .await
        .map_err(|_| ScrapeError::Timeout {
            after_ms: u64::try_from(job.timeout.as_millis()).unwrap_or(u64::MAX),
        })??;
    let samples_max = match job.config.sample_limit {
        0 => usize::MAX,
        n => n,
    };
    text::parse(&body, samples_max)
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    bytes_max: usize,
) -> Result<String, ScrapeError> {
    let http = |e: reqwest::Error| ScrapeError::Http(e.to_string());
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .send()
        .await
        .map_err(http)?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Http(format!(
            "server returned HTTP status {}",
            resp.status()
        )));
    }
    if resp.content_length().is_some_and(|n| n > bytes_max as u64) {
        return Err(ScrapeError::BodyLimit { limit: bytes_max });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > bytes_max {
            return Err(ScrapeError::BodyLimit { limit: bytes_max });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| ScrapeError::Http("the body is not UTF-8".into()))
}

/// What the loop remembers between scrapes: the series of the last
/// successful scrape, to mark the ones that disappear.
#[derive(Default)]
pub struct State {
    previous: HashSet<Labels>,
    reported: bool,
}

impl State {
    /// Turns a scrape's outcome into one append: its samples (or none, if it
    /// failed), stale markers for series that vanished, and the report series.
    pub fn batch(
        &mut self,
        db: &Db,
        job: &Job,
        target: &Target,
        t_ms: i64,
        duration: Duration,
        result: Result<Vec<text::ParsedSample>, ScrapeError>,
    ) -> Vec<SeriesSamples> {
        let (samples, error) = match result.and_then(|s| label(db, job, target, s)) {
            Ok(samples) => (samples, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        if let Some(e) = &error {
            tracing::debug!(url = %target.url, error = %e, "scrape failed");
        }
        let scraped = samples.len();
        let current: HashSet<Labels> = samples.iter().map(|(l, _)| l.clone()).collect();
        let mut batch: Vec<SeriesSamples> = samples
            .into_iter()
            .map(|(l, v)| (l, vec![(t_ms, v)]))
            .collect();
        for gone in self.previous.difference(&current) {
            batch.push((gone.clone(), vec![(t_ms, crate::chunk::stale_nan())]));
        }
        self.previous = current;
        let up = if error.is_some() { 0.0 } else { 1.0 };
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", duration.as_secs_f64()),
            ("scrape_samples_scraped", scraped as f64),
        ] {
            if let Some(l) = report_labels(db, target, name) {
                batch.push((l, vec![(t_ms, value)]));
            }
        }
        self.reported = true;
        batch
    }

    /// Stale markers for everything this target wrote (it is gone).
    pub fn all_stale(&mut self, db: &Db, target: &Target, t_ms: i64) -> Vec<SeriesSamples> {
        let mut batch: Vec<SeriesSamples> = self
            .previous
            .drain()
            .map(|l| (l, vec![(t_ms, crate::chunk::stale_nan())]))
            .collect();
        if self.reported {
            for name in ["up", "scrape_duration_seconds", "scrape_samples_scraped"] {
                if let Some(l) = report_labels(db, target, name) {
                    batch.push((l, vec![(t_ms, crate::chunk::stale_nan())]));
                }
            }
        }
        batch
    }
}

/// Attaches the target's labels (renaming clashing exposed ones
/// `exported_*` unless `honor_labels`) and checks the job's label limits.
fn label(
    db: &Db,
    job: &Job,
    target: &Target,
    samples: Vec<text::ParsedSample>,
) -> Result<Vec<(Labels, f64)>, ScrapeError> {
    let c = &job.config;
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashSet::with_capacity(samples.len());
    for (mut labels, value) in samples {
        for (name, value) in &target.labels {
            match labels.iter().position(|(n, _)| n == name) {
                Some(_) if c.honor_labels => {}
                Some(i) => {
                    labels[i].0 = format!("exported_{name}");
                    labels.push((name.clone(), value.clone()));
                }
                None => labels.push((name.clone(), value.clone())),
            }
        }
        if c.label_limit > 0 && labels.len() > c.label_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "{} labels on a series, label_limit is {}",
                labels.len(),
                c.label_limit
            )));
        }
        for (n, v) in &labels {
            if c.label_name_length_limit > 0 && n.len() > c.label_name_length_limit {
                return Err(ScrapeError::LabelLimit(format!(
                    "label name {n:?} is longer than label_name_length_limit {}",
                    c.label_name_length_limit
                )));
            }
            if c.label_value_length_limit > 0 && v.len() > c.label_value_length_limit {
                return Err(ScrapeError::LabelLimit(format!(
                    "the value of label {n:?} is longer than label_value_length_limit {}",
                    c.label_value_length_limit
                )));
            }
        }
        let l = db
            .labels(labels)
            .map_err(|e| ScrapeError::LabelLimit(e.to_string()))?;
        // A series exposed twice keeps its first value (Prometheus reports
        // a duplicate; the append would refuse it).
        if seen.insert(l.clone()) {
            out.push((l, value));
        }
    }
    Ok(out)
}

/// `{__name__=name, <target labels>}`.
fn report_labels(db: &Db, target: &Target, name: &str) -> Option<Labels> {
    let pairs = std::iter::once(("__name__".to_string(), name.to_string()))
        .chain(target.labels.iter().cloned());
    db.labels(pairs).ok()
}
