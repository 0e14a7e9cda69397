//! `hyperscale bench lsm`: db_bench's classic workloads on the LSM engine, in process.
//!
//! The workloads themselves live in `lsm::bench`, so the fjall comparison
//! (`bench/lsm-fjall`, a bench-only crate CI does not build) runs identical code.

use std::path::PathBuf;

use anyhow::Context;
use lsm::bench::{self, Config, Outcome, Workload};

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale bench lsm`.
#[derive(clap::Args)]
pub struct Args {
    /// Keys written by fillseq / fillrandom / overwrite (and the key space of reads).
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Operations of readrandom and seekrandom (default: --num).
    #[arg(long)]
    reads: Option<u64>,
    /// Value size in bytes (keys are 16 bytes).
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Comma-separated workloads: fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom.
    #[arg(
        long,
        default_value = "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom"
    )]
    benchmarks: String,
    /// Commit-log fsync policy: always, everysec or no.
    #[arg(long, default_value = "no")]
    sync: lsm::SyncPolicy,
    /// Directory for the stores (removed and recreated; default: a temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Block cache size in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Print the engine's statistics (levels, amplification, bloom, cache) after each
    /// workload, on stderr.
    #[arg(long)]
    stats: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let workloads = args
        .benchmarks
        .split(',')
        .map(|w| Workload::parse(w.trim()).with_context(|| format!("unknown benchmark {w:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cfg = Config {
        num: args.num,
        reads: args.reads.unwrap_or(args.num),
        value_size: args.value_size,
        seed: 42,
    };
    let tmp = std::env::temp_dir().join(format!("hyperscale-bench-lsm-{}", std::process::id()));
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.clone());
    let opts = lsm::Options {
        sync: args.sync,
        block_cache_size_bytes: args.cache_mb << 20,
        ..lsm::Options::default()
    };
    let mut db: Option<lsm::Db> = None;
    let mut results = Vec::new();
    for w in workloads {
        if w.fresh_store() || db.is_none() {
            drop(db.take());
            bench::fresh_dir(&dir).with_context(|| format!("preparing {}", dir.display()))?;
            db = Some(lsm::Db::open(&dir, opts.clone())?);
        }
        let engine = db.as_ref().expect("opened above");
        let outcome = bench::run(engine, w, &cfg, &mut |done, total| {
            note(&format!(
                "\r{:<11} {done:>10}/{total} ({:>3}%)",
                w.name(),
                done * 100 / total.max(1)
            ));
        })
        .map_err(anyhow::Error::msg)?;
        note("\n");
        if args.stats {
            note(&format!("{:#?}\n", engine.stats()));
        }
        results.push(outcome);
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&tmp);
    if args.json {
        emit_json(&to_json(&results, &args))
    } else {
        emit(&results_table(&results))
    }
}

fn results_table(results: &[Outcome]) -> String {
    let mut rows = vec![
        [
            "workload",
            "ops",
            "ops/s",
            "MB/s",
            "p50 µs",
            "p99 µs",
            "write-amp",
        ]
        .map(str::to_owned),
    ];
    for r in results {
        let wa = r
            .write_amplification
            .map_or("-".to_string(), |w| format!("{w:.2}"));
        rows.push([
            r.workload.to_string(),
            r.ops.to_string(),
            format!("{:.0}", r.ops_per_sec()),
            format!("{:.1}", r.mb_per_sec()),
            format!("{:.2}", r.p50_us),
            format!("{:.2}", r.p99_us),
            wa,
        ]);
    }
    table::render(&rows)
}

fn to_json(results: &[Outcome], args: &Args) -> serde_json::Value {
    serde_json::json!({
        "engine": "hyperscale-lsm",
        "num": args.num,
        "value_size": args.value_size,
        "sync": format!("{:?}", args.sync),
        "results": results.iter().map(|r| serde_json::json!({
            "workload": r.workload,
            "ops": r.ops,
            "seconds": r.elapsed.as_secs_f64(),
            "ops_per_sec": r.ops_per_sec(),
            "mb_per_sec": r.mb_per_sec(),
            "p50_us": r.p50_us,
            "p99_us": r.p99_us,
            "write_amplification": r.write_amplification,
        })).collect::<Vec<_>>(),
    })
}
