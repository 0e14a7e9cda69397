//! Our LSM engine against fjall, in one run, on identical workloads (`lsm::bench`) with
//! the same durability: `--sync no` = every write handed to the OS (fjall's default
//! `PersistMode::Buffer` per write; survives `kill -9`), `--sync always` = fsync before
//! each write returns (fjall: `persist(SyncData)` after each insert).
//!
//! Usage: `lsm-fjall-bench [--num N] [--reads N] [--sync no|always] [--json]
//! [--benchmarks a,b] [--engines ours,fjall] [--data-dir D] [--keep-data] [--stats]`
//! (`--stats`: our engine's statistics on stderr when its suite ends)
//!
//! `--keep-data` leaves the stores in `--data-dir` and reopens them when the first
//! workload is not a fill: fill once, then profile the reads alone
//! (`--benchmarks readseq,seekrandom --engines ours`).

use std::path::{Path, PathBuf};

use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use lsm::bench::{self, Config, Engine, Outcome, Workload};

struct Fjall {
    db: Database,
    ks: Keyspace,
    sync: bool,
}

impl Fjall {
    fn open(dir: &Path, sync: bool, cache_bytes: u64) -> Result<Self, String> {
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            .open()
            .map_err(|e| e.to_string())?;
        let ks = db
            .keyspace("bench", || {
                KeyspaceCreateOptions::default()
                    .data_block_compression_policy(CompressionPolicy::disabled())
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { db, ks, sync })
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.ks.insert(key, value).map_err(|e| e.to_string())?;
        if self.sync {
            self.db
                .persist(PersistMode::SyncData)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .ks
            .get(key)
            .map_err(|e| e.to_string())?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<(usize, u64), String> {
        let (mut n, mut bytes) = (0, 0);
        for guard in self.ks.range(start..).take(limit) {
            let (k, v) = guard.into_inner().map_err(|e| e.to_string())?;
            n += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok((n, bytes))
    }

    fn write_amplification(&self) -> Option<f64> {
        None
    }
}

/// Our engine, printing its statistics when dropped if asked (`--stats`).
struct Ours {
    db: lsm::Db,
    stats: bool,
}

impl Engine for Ours {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        Engine::put(&self.db, key, value)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Engine::get(&self.db, key)
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<(usize, u64), String> {
        Engine::scan(&self.db, start, limit)
    }

    fn write_amplification(&self) -> Option<f64> {
        Engine::write_amplification(&self.db)
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        if self.stats {
            eprintln!("{:#?}", self.db.stats());
        }
    }
}

struct Args {
    cfg: Config,
    sync: bool,
    json: bool,
    dir: PathBuf,
    workloads: Vec<Workload>,
    engines: Vec<String>,
    keep_data: bool,
    stats: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        cfg: Config {
            num: 1_000_000,
            reads: 0,
            value_size: 100,
            seed: 42,
        },
        sync: false,
        json: false,
        dir: std::env::temp_dir().join(format!("lsm-fjall-bench-{}", std::process::id())),
        workloads: Workload::ALL.to_vec(),
        engines: vec!["ours".into(), "fjall".into()],
        keep_data: false,
        stats: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--num" => a.cfg.num = val()?.parse().map_err(|e| format!("--num: {e}"))?,
            "--reads" => a.cfg.reads = val()?.parse().map_err(|e| format!("--reads: {e}"))?,
            "--sync" => a.sync = matches!(val()?.as_str(), "always"),
            "--data-dir" => a.dir = PathBuf::from(val()?),
            "--benchmarks" => {
                a.workloads = val()?
                    .split(',')
                    .map(|w| Workload::parse(w).ok_or(format!("unknown {w}")))
                    .collect::<Result<_, _>>()?
            }
            "--json" => a.json = true,
            "--engines" => a.engines = val()?.split(',').map(str::to_string).collect(),
            "--keep-data" => a.keep_data = true,
            "--stats" => a.stats = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.cfg.reads == 0 {
        a.cfg.reads = a.cfg.num;
    }
    Ok(a)
}

fn suite(
    name: &str,
    args: &Args,
    open: &dyn Fn(&Path) -> Result<Box<dyn Engine>, String>,
) -> Result<Vec<Outcome>, String> {
    let dir = args.dir.join(name);
    let mut engine: Option<Box<dyn Engine>> = None;
    let mut out = Vec::new();
    for &w in &args.workloads {
        if w.fresh_store() || engine.is_none() {
            drop(engine.take());
            if w.fresh_store() || !args.keep_data || !dir.exists() {
                bench::fresh_dir(&dir).map_err(|e| e.to_string())?;
            }
            engine = Some(open(&dir)?);
        }
        let e = engine.as_deref().expect("opened");
        let r = bench::run(e, w, &args.cfg, &mut |done, total| {
            eprint!("\r{name:<6} {:<11} {done:>10}/{total}", w.name());
        })?;
        eprintln!();
        out.push(r);
    }
    drop(engine);
    if !args.keep_data {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let args = parse_args()?;
    let cache = 64u64 << 20;
    let sync = args.sync;
    let wants = |name: &str| args.engines.iter().any(|e| e == name);
    let ours = if !wants("ours") {
        Vec::new()
    } else {
        suite("ours", &args, &|dir| {
            let opts = lsm::Options {
                sync: if sync {
                    lsm::SyncPolicy::Always
                } else {
                    lsm::SyncPolicy::No
                },
                block_cache_size_bytes: cache as usize,
                ..lsm::Options::default()
            };
            Ok(Box::new(Ours {
                db: lsm::Db::open(dir, opts).map_err(|e| e.to_string())?,
                stats: args.stats,
            }))
        })?
    };
    let theirs = if !wants("fjall") {
        Vec::new()
    } else {
        suite("fjall", &args, &|dir| {
            Ok(Box::new(Fjall::open(dir, sync, cache)?))
        })?
    };
    if !args.keep_data {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    if ours.is_empty() || theirs.is_empty() {
        for o in ours.iter().chain(&theirs) {
            println!(
                "{:<11} {:>11.0} ops/s p50 {:.2} p99 {:.2}",
                o.workload,
                o.ops_per_sec(),
                o.p50_us,
                o.p99_us
            );
        }
        return Ok(());
    }
    let cpu = |o: &Outcome| {
        o.cpu_us_per_op()
            .map_or("null".into(), |c| format!("{c:.3}"))
    };
    if args.json {
        let rows: Vec<String> = ours
            .iter()
            .zip(&theirs)
            .map(|(o, t)| {
                format!(
                    "{{\"workload\":\"{}\",\"ours_ops_per_sec\":{:.0},\"fjall_ops_per_sec\":{:.0},\"ratio\":{:.3},\"ours_cpu_us_per_op\":{},\"fjall_cpu_us_per_op\":{},\"ours_p50_us\":{:.2},\"ours_p99_us\":{:.2},\"fjall_p50_us\":{:.2},\"fjall_p99_us\":{:.2},\"ours_write_amp\":{}}}",
                    o.workload,
                    o.ops_per_sec(),
                    t.ops_per_sec(),
                    o.ops_per_sec() / t.ops_per_sec(),
                    cpu(o),
                    cpu(t),
                    o.p50_us,
                    o.p99_us,
                    t.p50_us,
                    t.p99_us,
                    o.write_amplification.map_or("null".into(), |w| format!("{w:.2}"))
                )
            })
            .collect();
        println!("[{}]", rows.join(","));
        return Ok(());
    }
    println!(
        "{:<11} {:>11} {:>11} {:>6} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "workload",
        "ours ops/s",
        "fjall ops/s",
        "ratio",
        "ours p50",
        "ours p99",
        "fj p50",
        "fj p99",
        "WA"
    );
    for (o, t) in ours.iter().zip(&theirs) {
        println!(
            "{:<11} {:>11.0} {:>11.0} {:>6.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}",
            o.workload,
            o.ops_per_sec(),
            t.ops_per_sec(),
            o.ops_per_sec() / t.ops_per_sec(),
            o.p50_us,
            o.p99_us,
            t.p50_us,
            t.p99_us,
            o.write_amplification
                .map_or("-".into(), |w| format!("{w:.2}"))
        );
    }
    Ok(())
}
