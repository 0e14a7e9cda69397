//! A `db_bench`-style harness: the classic LevelDB/RocksDB workloads over any engine.
//!
//! Why it lives here: `hyperscale bench lsm` runs it on this engine, and a bench-only
//! crate outside the workspace runs the very same code on `fjall` (and could on others),
//! so both sides of a comparison do identical work. Keys are 16 bytes (zero-padded
//! decimal), values `value_size` pseudo-random bytes (incompressible, like db_bench's
//! default), one operation per call, one thread.
//!
//! Workloads: `fillseq` (ascending keys into a fresh store), `fillrandom` (random keys
//! into a fresh store), `overwrite` (random keys over the filled store), `readrandom`
//! (random point reads of existing keys), `readseq` (one full ordered scan), `seekrandom`
//! (seek to a random key and read one entry).

use std::path::Path;
use std::time::{Duration, Instant};

/// An engine the harness can drive.
pub trait Engine {
    /// Writes one key.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String>;
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Visits up to `limit` entries from `start` in order, returning bytes read.
    fn scan(&self, start: &[u8], limit: usize) -> Result<(usize, u64), String>;
    /// Write amplification so far, if the engine reports it.
    fn write_amplification(&self) -> Option<f64>;
}

/// One workload of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Ascending keys into a fresh store.
    FillSeq,
    /// Random keys into a fresh store.
    FillRandom,
    /// Random keys over the filled store.
    Overwrite,
    /// Random point reads.
    ReadRandom,
    /// One full ordered scan.
    ReadSeq,
    /// Random seeks reading one entry.
    SeekRandom,
}

impl Workload {
    /// All workloads, in the order they run.
    pub const ALL: [Workload; 6] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadSeq,
        Workload::SeekRandom,
    ];

    /// The db_bench name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadSeq => "readseq",
            Workload::SeekRandom => "seekrandom",
        }
    }

    /// Parses a db_bench name.
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// True when the workload needs a fresh, empty store.
    pub fn fresh_store(self) -> bool {
        matches!(self, Workload::FillSeq | Workload::FillRandom)
    }
}

/// Sizes of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Keys written by fills and overwrite (also the key space of reads).
    pub num: u64,
    /// Operations of readrandom and seekrandom.
    pub reads: u64,
    /// Value size in bytes.
    pub value_size: usize,
    /// Seed of the key and value generator.
    pub seed: u64,
}

/// The measurements of one workload.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Workload name.
    pub workload: &'static str,
    /// Operations done.
    pub ops: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Key + value bytes moved.
    pub bytes: u64,
    /// Median latency (µs).
    pub p50_us: f64,
    /// 99th percentile latency (µs).
    pub p99_us: f64,
    /// Engine write amplification after the workload, if reported.
    pub write_amplification: Option<f64>,
    /// CPU time of the calling thread (user + system) during the workload, where the
    /// platform reports it: unlike wall time, barely moved by other processes' load.
    pub cpu: Option<Duration>,
}

impl Outcome {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Calling-thread CPU microseconds per operation, if measured.
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
    }

    /// MB/s of key + value bytes.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// CPU time the calling thread has used (user + system), from Linux's
/// `/proc/thread-self/stat` (10 ms ticks); `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, in USER_HZ (100 on Linux) ticks.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The 16-byte key of number `k`.
pub fn key(k: u64) -> [u8; 16] {
    let mut out = [b'0'; 16];
    let digits = format!("{k:016}");
    out.copy_from_slice(&digits.as_bytes()[digits.len() - 16..]);
    out
}

/// Runs `workload` on `engine`, calling `progress(done, total)` now and then.
pub fn run(
    engine: &dyn Engine,
    workload: Workload,
    cfg: &Config,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, String> {
    let mut rng = fastrand::Rng::with_seed(cfg.seed ^ workload as u64);
    let mut value = vec![0u8; cfg.value_size + 64];
    for chunk in value.chunks_mut(8) {
        let r = rng.u64(..).to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    let total = match workload {
        Workload::ReadRandom | Workload::SeekRandom => cfg.reads,
        _ => cfg.num,
    };
    let mut lat_ns = Vec::with_capacity(total as usize);
    let mut bytes = 0u64;
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    if workload == Workload::ReadSeq {
        let t = Instant::now();
        let (n, b) = engine.scan(&[], usize::MAX)?;
        lat_ns.push(t.elapsed().as_nanos() as u64 / n.max(1) as u64);
        bytes += b;
        progress(n as u64, n as u64);
        return Ok(finish(
            workload,
            n as u64,
            started.elapsed(),
            bytes,
            lat_ns,
            engine,
            cpu_before,
        ));
    }
    for i in 0..total {
        let k = match workload {
            Workload::FillSeq => i,
            _ => rng.u64(..) % cfg.num.max(1),
        };
        let key = key(k);
        let t = Instant::now();
        match workload {
            Workload::FillSeq | Workload::FillRandom | Workload::Overwrite => {
                let off = (rng.u64(..) % 64) as usize;
                engine.put(&key, &value[off..off + cfg.value_size])?;
                bytes += (16 + cfg.value_size) as u64;
            }
            Workload::ReadRandom => {
                if let Some(v) = engine.get(&key)? {
                    bytes += 16 + v.len() as u64;
                }
            }
            Workload::SeekRandom => bytes += engine.scan(&key, 1)?.1,
            Workload::ReadSeq => unreachable!("handled above"),
        }
        lat_ns.push(t.elapsed().as_nanos() as u64);
        if i % 8192 == 0 {
            progress(i, total);
        }
    }
    progress(total, total);
    Ok(finish(
        workload,
        total,
        started.elapsed(),
        bytes,
        lat_ns,
        engine,
        cpu_before,
    ))
}

fn finish(
    workload: Workload,
    ops: u64,
    elapsed: Duration,
    bytes: u64,
    mut lat_ns: Vec<u64>,
    engine: &dyn Engine,
    cpu_before: Option<Duration>,
) -> Outcome {
    let cpu = thread_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    lat_ns.sort_unstable();
    let pct = |p: f64| clock::latency::percentile(&lat_ns, p).unwrap_or(0) as f64 / 1000.0;
    Outcome {
        workload: workload.name(),
        ops,
        elapsed,
        bytes,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        write_amplification: engine.write_amplification(),
        cpu,
    }
}

/// This crate's engine, as a bench [`Engine`].
impl Engine for crate::Db {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        crate::Db::put(self, key, value).map_err(|e| e.to_string())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        crate::Db::get(self, key).map_err(|e| e.to_string())
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<(usize, u64), String> {
        let (mut n, mut bytes) = (0, 0);
        for kv in crate::Db::scan(
            self,
            (std::ops::Bound::Included(start), std::ops::Bound::Unbounded),
        )
        .map_err(|e| e.to_string())?
        .take(limit)
        {
            let kv = kv.map_err(|e| e.to_string())?;
            n += 1;
            bytes += (kv.key.len() + kv.value.len()) as u64;
        }
        Ok((n, bytes))
    }

    fn write_amplification(&self) -> Option<f64> {
        Some(self.stats().write_amplification)
    }
}

/// Removes and recreates `dir` (fresh-store workloads).
pub fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)
}
