//! The crawler benchmark (`hyperscale bench crawler`, and the release
//! example `crawl_bench` that runs the same code without building all of
//! `hyperscale`): crawls of the synthetic [`crate::testweb`] with politeness
//! relaxed, each in a child process of its own so its peak RSS is its own.
//!
//! Two measurements in one run:
//! * **throughput**: the whole web crawled `runs` times by us and by Scrapy
//!   (PyPI; same concurrency, no delay, robots.txt obeyed, no cache): pages/s,
//!   MB/s, p99 fetch latency, peak RSS, and the medians' ratios;
//! * **flat RSS**: the frontier filled with N extra URLs (100k, 1M...) before
//!   a crawl of a fixed number of pages: the peak RSS must not grow with N,
//!   because the frontier lives in the LSM store, not in memory.
//!
//! The orchestration is here, so the verb and the example only say how to
//! start a child (`child` below) and print the [`Report`].

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::crawl::{CrawlConfig, Crawler};
use crate::state::Scope;
use crate::testweb::{TestWeb, WebSpec};

/// The Scrapy side: a spider with settings equivalent to our crawl's.
pub const SCRAPY_SPIDER: &str = include_str!("../../../bench/crawler_scrapy.py");

/// URLs queued per write batch while filling the frontier.
const FILL_BATCH: u64 = 500;
/// Depth of the fill URLs: the lowest priority, so the crawl walks the web
/// first and the fill stays queued.
const FILL_DEPTH: u32 = 16;

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Test-web hosts.
    pub hosts: usize,
    /// Test-web pages.
    pub pages: usize,
    /// Concurrent requests (both crawlers).
    pub concurrency: usize,
    /// Throughput runs per system (medians reported).
    pub runs: usize,
    /// Extra queued URLs of the flat-RSS runs (empty: none).
    pub queued: Vec<u64>,
    /// Pages crawled in each flat-RSS run.
    pub queued_pages: u64,
    /// Also run Scrapy (`python3` with `scrapy` must be installed).
    pub scrapy: bool,
}

/// What one child crawl does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSpec {
    /// Seed URLs.
    pub seeds: Vec<String>,
    /// Host bases (`http://127.0.0.1:port`) the fill URLs go to.
    pub bases: Vec<String>,
    /// The crawl's data directory (fresh).
    pub data_dir: PathBuf,
    /// Concurrent requests.
    pub concurrency: usize,
    /// URLs queued before the crawl.
    pub fill: u64,
    /// Pages to crawl (0: to the end).
    pub max_pages: u64,
}

/// One measured crawl.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// `hyperscale` or `scrapy`.
    pub system: String,
    /// URLs in the frontier when the crawl started.
    pub queued: u64,
    /// HTTP answers.
    pub pages: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Crawl time (the fill excluded).
    pub seconds: f64,
    /// p99 fetch latency.
    pub fetch_p99_ms: f64,
    /// Peak resident memory of the crawling process.
    pub peak_rss_kib: u64,
    /// Time to fill the frontier.
    #[serde(default)]
    pub fill_seconds: f64,
    /// Peak RSS when the fill was done (before the crawl).
    #[serde(default)]
    pub fill_peak_rss_kib: u64,
}

impl RunReport {
    /// Pages per second.
    pub fn pages_per_s(&self) -> f64 {
        self.pages as f64 / self.seconds.max(1e-9)
    }

    /// MB (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// The medians of one system's throughput runs.
#[derive(Debug, Clone, Serialize)]
pub struct Median {
    /// System.
    pub system: String,
    /// Median pages/s.
    pub pages_per_s: f64,
    /// Median MB/s.
    pub mb_per_s: f64,
    /// Median p99 fetch latency.
    pub fetch_p99_ms: f64,
    /// Median peak RSS.
    pub peak_rss_mib: f64,
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `/proc/loadavg` (1, 5, 15 min) before.
    pub load_before: String,
    /// And after.
    pub load_after: String,
    /// Every throughput run.
    pub runs: Vec<RunReport>,
    /// Medians per system.
    pub medians: Vec<Median>,
    /// Our median pages/s over Scrapy's.
    pub pages_ratio: Option<f64>,
    /// Our median peak RSS over Scrapy's.
    pub rss_ratio: Option<f64>,
    /// The flat-RSS runs, by fill size.
    pub queued_runs: Vec<RunReport>,
    /// Largest over smallest peak RSS of the flat-RSS runs, minus one (the
    /// target: at most 0.20).
    pub rss_growth: Option<f64>,
}

/// This process's peak resident set (`VmHWM`), in KiB (0 where `/proc` is missing).
pub fn peak_rss_kib() -> u64 {
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

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs one child crawl in this process (the child side).
pub fn child(spec: &ChildSpec) -> anyhow::Result<RunReport> {
    let runtime = tokio::runtime::Runtime::new()?;
    let mut cfg = CrawlConfig {
        data_dir: spec.data_dir.clone(),
        concurrency: spec.concurrency,
        max_pages: spec.max_pages,
        ..CrawlConfig::default()
    };
    cfg.state.scope = Scope::SameDomain;
    cfg.state.politeness.delay_ms = 0;
    cfg.state.store_bodies = false;
    let crawler = Crawler::open(cfg)?;
    crawler.add_seeds(&spec.seeds)?;
    let fill_started = Instant::now();
    let mut next = 0;
    while next < spec.fill && !spec.bases.is_empty() {
        let end = (next + FILL_BATCH).min(spec.fill);
        let urls: Vec<String> = (next..end)
            .map(|i| {
                let base = &spec.bases[(i % spec.bases.len() as u64) as usize];
                format!("{base}/fill/{i}")
            })
            .collect();
        crawler.state().lock().add_queued(&urls, FILL_DEPTH)?;
        next = end;
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    let fill_peak_rss_kib = peak_rss_kib();
    if std::env::var_os("HYPERSCALE_BENCH_LSM_STATS").is_some() {
        // Where the memory goes: the store's buffers and tables after the fill.
        eprintln!("{:#?}", crawler.state().lock().db().stats());
        eprintln!(
            "{}",
            std::fs::read_to_string("/proc/self/status").unwrap_or_default()
        );
    }
    let queued = crawler.stats().snapshot().frontier;
    let started = Instant::now();
    runtime.block_on(crawler.run())?;
    let seconds = started.elapsed().as_secs_f64();
    let snap = crawler.stats().snapshot();
    Ok(RunReport {
        system: "hyperscale".into(),
        queued,
        pages: snap.pages,
        bytes: snap.bytes,
        seconds,
        fetch_p99_ms: crawler
            .stats()
            .fetch_latency
            .quantile_ms(0.99)
            .unwrap_or(0.0),
        peak_rss_kib: peak_rss_kib(),
        fill_seconds,
        fill_peak_rss_kib,
    })
}

/// Runs `cmd` and parses the last line of its standard output as a report.
fn last_json_line(mut cmd: Command, what: &str) -> anyhow::Result<RunReport> {
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        anyhow::bail!("{what} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow::anyhow!("{what} printed no report"))?;
    Ok(serde_json::from_str(line)?)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn medians(system: &str, runs: &[RunReport]) -> Option<Median> {
    let mine: Vec<&RunReport> = runs.iter().filter(|r| r.system == system).collect();
    if mine.is_empty() {
        return None;
    }
    let of = |f: &dyn Fn(&RunReport) -> f64| median(mine.iter().map(|r| f(r)).collect());
    Some(Median {
        system: system.into(),
        pages_per_s: of(&|r| r.pages_per_s()),
        mb_per_s: of(&|r| r.mb_per_s()),
        fetch_p99_ms: of(&|r| r.fetch_p99_ms),
        peak_rss_mib: of(&|r| r.peak_rss_kib as f64 / 1024.0),
    })
}

/// Checks that Scrapy can run, with an error that says how to get it.
pub fn scrapy_available() -> anyhow::Result<()> {
    let ok = Command::new("python3")
        .args(["-c", "import scrapy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        anyhow::bail!(
            "python3 with scrapy is needed for the comparison: `python3 -m pip install scrapy`, or pass --no-scrapy"
        );
    }
    Ok(())
}

/// Runs the benchmark: `child_cmd` starts a process that reads a
/// [`ChildSpec`] as JSON from its last argument, runs [`child`] and prints
/// the report as one JSON line; `progress` hears about each run.
pub fn run(
    cfg: &BenchConfig,
    child_cmd: &dyn Fn() -> Command,
    progress: &dyn Fn(&RunReport),
) -> anyhow::Result<Report> {
    if cfg.scrapy {
        scrapy_available()?;
    }
    let work =
        std::env::temp_dir().join(format!("hyperscale-crawler-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let spider = work.join("spider.py");
    std::fs::write(&spider, SCRAPY_SPIDER)?;
    // The test web runs here, on its own runtime, while the children crawl it.
    let runtime = tokio::runtime::Runtime::new()?;
    let web = runtime.block_on(TestWeb::start(WebSpec {
        hosts: cfg.hosts,
        pages: cfg.pages,
        slow_ms: 0,
        base_port: 0,
        crawl_delay_ms: 0,
        change_ms: 0,
    }))?;
    let seeds = vec![web.seed()];
    let seeds_file = work.join("seeds.txt");
    std::fs::write(&seeds_file, format!("{}\n", web.seed()))?;
    let bases = web.bases().to_vec();
    let spec = |fill: u64, max_pages: u64, n: usize| ChildSpec {
        seeds: seeds.clone(),
        bases: bases.clone(),
        data_dir: work.join(format!("crawl-{n}")),
        concurrency: cfg.concurrency,
        fill,
        max_pages,
    };
    let ours = |spec: &ChildSpec| -> anyhow::Result<RunReport> {
        let mut cmd = child_cmd();
        cmd.arg(serde_json::to_string(spec)?);
        let report = last_json_line(cmd, "the crawl child");
        let _ = std::fs::remove_dir_all(&spec.data_dir);
        report
    };
    let result = (|| {
        let load_before = load();
        let mut runs = Vec::new();
        for i in 0..cfg.runs {
            let report = ours(&spec(0, 0, i))?;
            progress(&report);
            runs.push(report);
            if cfg.scrapy {
                let mut cmd = Command::new("python3");
                cmd.arg(&spider)
                    .arg(&seeds_file)
                    .arg(cfg.concurrency.to_string());
                let mut report = last_json_line(cmd, "Scrapy")?;
                report.system = "scrapy".into();
                progress(&report);
                runs.push(report);
            }
        }
        let mut queued_runs = Vec::new();
        for (i, fill) in cfg.queued.iter().enumerate() {
            let report = ours(&spec(*fill, cfg.queued_pages, cfg.runs + i))?;
            progress(&report);
            queued_runs.push(report);
        }
        let load_after = load();
        let medians: Vec<Median> = ["hyperscale", "scrapy"]
            .iter()
            .filter_map(|s| medians(s, &runs))
            .collect();
        let ratio = |f: &dyn Fn(&Median) -> f64| match medians.as_slice() {
            [ours, theirs] if f(theirs) > 0.0 => Some(f(ours) / f(theirs)),
            _ => None,
        };
        let rss: Vec<u64> = queued_runs.iter().map(|r| r.peak_rss_kib).collect();
        let rss_growth = match (rss.iter().min(), rss.iter().max()) {
            (Some(&lo), Some(&hi)) if lo > 0 && rss.len() > 1 => Some(hi as f64 / lo as f64 - 1.0),
            _ => None,
        };
        Ok(Report {
            load_before,
            load_after,
            pages_ratio: ratio(&|m| m.pages_per_s),
            rss_ratio: ratio(&|m| m.peak_rss_mib),
            runs,
            medians,
            queued_runs,
            rss_growth,
        })
    })();
    drop(web);
    drop(runtime);
    let _ = std::fs::remove_dir_all(&work);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_rates() {
        let run = |system: &str, pages: u64, seconds: f64| RunReport {
            system: system.into(),
            pages,
            bytes: pages * 1000,
            seconds,
            ..Default::default()
        };
        let runs = vec![
            run("hyperscale", 100, 1.0),
            run("hyperscale", 100, 0.5),
            run("hyperscale", 100, 2.0),
            run("scrapy", 10, 1.0),
        ];
        let m = medians("hyperscale", &runs).expect("runs");
        assert_eq!(m.pages_per_s, 100.0);
        assert!((m.mb_per_s - 0.1).abs() < 1e-9);
        assert!(medians("other", &runs).is_none());
    }
}
