//! `hyperscale bench crawler` as one small release binary (the whole
//! `hyperscale` binary takes far longer to build in release mode): the same
//! [`crawler::bench::run`], the report printed as JSON.
//!
//! ```text
//! crawl_bench [HOSTS PAGES CONCURRENCY RUNS QUEUED,QUEUED.. QUEUED_PAGES [noscrapy]]
//! ```
#![allow(clippy::unwrap_used)]

use std::process::Command;

use crawler::bench::{self, BenchConfig, ChildSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let spec: ChildSpec = serde_json::from_str(&args[2])?;
        println!("{}", serde_json::to_string(&bench::child(&spec)?)?);
        return Ok(());
    }
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let cfg = BenchConfig {
        hosts: arg(1, "50").parse()?,
        pages: arg(2, "20000").parse()?,
        concurrency: arg(3, "32").parse()?,
        runs: arg(4, "3").parse()?,
        queued: arg(5, "100000,1000000")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?,
        queued_pages: arg(6, "20000").parse()?,
        scrapy: arg(7, "") != "noscrapy",
    };
    let exe = std::env::current_exe()?;
    let child = || {
        let mut cmd = Command::new(&exe);
        cmd.arg("child");
        cmd
    };
    let report = bench::run(&cfg, &child, &|r| {
        eprintln!("{}", serde_json::to_string(r).unwrap())
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
