//! `hyperscale bench crawler`: our crawler and Scrapy on the same synthetic
//! test web, politeness relaxed, plus the flat-RSS check (peak RSS with 100k
//! and 1M URLs queued). The runs live in `crawler::bench` (the release
//! example `crawl_bench` runs the same code); each crawl is a child process
//! of this binary (`--child`), so each peak RSS is that crawl's own.

use std::process::Command;

use anyhow::Context;
use crawler::bench::{self, BenchConfig, ChildSpec, Report, RunReport};

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale bench crawler`.
#[derive(clap::Args)]
pub struct Args {
    /// Test-web hosts.
    #[arg(long, default_value_t = 50)]
    hosts: usize,
    /// Test-web pages.
    #[arg(long, default_value_t = 20_000)]
    pages: usize,
    /// Concurrent requests, ours and Scrapy's.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Throughput runs per system (medians reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// URLs queued before each flat-RSS run, comma-separated ("" for none).
    #[arg(long, default_value = "100000,1000000")]
    queued: String,
    /// Pages crawled in each flat-RSS run.
    #[arg(long, default_value_t = 20_000)]
    queued_pages: u64,
    /// Skip the Scrapy runs.
    #[arg(long)]
    no_scrapy: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Internal: run one crawl from this JSON spec and print its report.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// Runs the benchmark (or, with `--child`, one of its crawls).
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(spec) = &args.child {
        let spec: ChildSpec = serde_json::from_str(spec).context("bad --child spec")?;
        return emit(&format!(
            "{}\n",
            serde_json::to_string(&bench::child(&spec)?)?
        ));
    }
    let queued = args
        .queued
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .context("--queued takes comma-separated counts, e.g. 100000,1000000")?;
    let cfg = BenchConfig {
        hosts: args.hosts.max(5),
        pages: args.pages,
        concurrency: args.concurrency.max(1),
        runs: args.runs.max(1),
        queued,
        queued_pages: args.queued_pages,
        scrapy: !args.no_scrapy,
    };
    let exe = std::env::current_exe().context("cannot find this binary to start the crawls")?;
    let child = || {
        let mut cmd = Command::new(&exe);
        cmd.args(["bench", "crawler", "--child"]);
        cmd
    };
    let report = bench::run(&cfg, &child, &|r| {
        note(&format!(
            "{} queued={} pages={} {:.0} pages/s, peak RSS {} MiB\n",
            r.system,
            r.queued,
            r.pages,
            r.pages_per_s(),
            r.peak_rss_kib / 1024
        ))
    })?;
    if args.json {
        emit_json(&report)
    } else {
        emit(&report_text(&report))
    }
}

fn run_row(r: &RunReport) -> [String; 8] {
    [
        r.system.clone(),
        r.queued.to_string(),
        r.pages.to_string(),
        format!("{:.2}", r.seconds),
        format!("{:.0}", r.pages_per_s()),
        format!("{:.2}", r.mb_per_s()),
        format!("{:.2}", r.fetch_p99_ms),
        format!("{:.1}", r.peak_rss_kib as f64 / 1024.0),
    ]
}

fn report_text(report: &Report) -> String {
    let header = [
        "system",
        "queued",
        "pages",
        "seconds",
        "pages/s",
        "MB/s",
        "p99 ms",
        "peak RSS MiB",
    ]
    .map(str::to_owned);
    let mut rows = vec![header.clone()];
    rows.extend(report.runs.iter().map(run_row));
    let mut out = format!(
        "load before: {}\n{}",
        report.load_before,
        table::render(&rows)
    );
    let mut med = vec![["median", "pages/s", "MB/s", "p99 ms", "peak RSS MiB"].map(str::to_owned)];
    for m in &report.medians {
        med.push([
            m.system.clone(),
            format!("{:.0}", m.pages_per_s),
            format!("{:.2}", m.mb_per_s),
            format!("{:.2}", m.fetch_p99_ms),
            format!("{:.1}", m.peak_rss_mib),
        ]);
    }
    out.push_str(&table::render(&med));
    if let (Some(p), Some(r)) = (report.pages_ratio, report.rss_ratio) {
        out.push_str(&format!(
            "ratio vs scrapy: {p:.1}x pages/s, {r:.2}x peak RSS\n"
        ));
    }
    if !report.queued_runs.is_empty() {
        let mut rows = vec![header];
        rows.extend(report.queued_runs.iter().map(run_row));
        out.push_str(&table::render(&rows));
    }
    if let Some(g) = report.rss_growth {
        out.push_str(&format!(
            "peak RSS growth across queued sizes: {:.1}% (target ≤ 20%)\n",
            g * 100.0
        ));
    }
    out.push_str(&format!("load after: {}\n", report.load_after));
    out
}
