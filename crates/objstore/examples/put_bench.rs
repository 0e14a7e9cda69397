//! Durable puts per second on one data node, for several writer counts.
//!
//! ```text
//! cargo run --release -p objstore --example put_bench -- \
//!     [--writers 1,4,16,64] [--size 4096] [--seconds 5] [--dir DIR] [--json]
//! ```
//!
//! Each writer count runs on a fresh node in a temporary directory (under `--dir` if
//! given: put it on the disk you want to measure; the default is the system's
//! temporary directory). Every put is acknowledged only after its bytes and its
//! mapping are fsynced. Prints one row per writer count, and the load average before
//! and after (the machine is shared: say it next to the numbers).

use std::time::Duration;

use objstore::bench::{PutBench, PutReport, run_puts};
use objstore::{Node, Options};

struct Args {
    writers: Vec<usize>,
    size: usize,
    seconds: f64,
    dir: Option<String>,
    json: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        writers: vec![1, 4, 16, 64],
        size: 4096,
        seconds: 5.0,
        dir: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--writers" => {
                a.writers = value()?
                    .split(',')
                    .map(|w| w.parse().map_err(|_| format!("bad writer count {w:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--size" => a.size = value()?.parse().map_err(|_| "bad --size")?,
            "--seconds" => a.seconds = value()?.parse().map_err(|_| "bad --seconds")?,
            "--dir" => a.dir = Some(value()?),
            "--json" => a.json = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.writers.iter().any(|&w| w == 0 || w > 4096) || !(a.seconds > 0.0 && a.seconds < 3600.0) {
        return Err("writers must be in 1..=4096 and seconds in (0, 3600)".into());
    }
    Ok(a)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn run(args: &Args, writers: usize) -> Result<PutReport, String> {
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| e.to_string())?;
    let opts = Options {
        gc_interval_ms: 0,
        ..Options::default()
    };
    let node = Node::open(tmp.path(), opts).map_err(|e| e.to_string())?;
    let bench = PutBench {
        writers,
        object_size_bytes: args.size,
        duration: Duration::from_secs_f64(args.seconds),
    };
    run_puts(&node, bench).map_err(|e| e.to_string())
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("put_bench: {e}");
            std::process::exit(2);
        }
    };
    let load_before = loadavg();
    if !args.json {
        println!(
            "object size {} B, {} s per row, load before {load_before}",
            args.size, args.seconds
        );
        println!(
            "| writers | puts/s | MiB/s | p50 µs | p99 µs | puts per group commit | objects / data files |"
        );
        println!("|---|---|---|---|---|---|---|");
    }
    let mut rows = Vec::new();
    for &w in &args.writers {
        match run(&args, w) {
            Ok(r) => {
                if args.json {
                    rows.push(format!(
                        "{{\"writers\":{},\"object_size_bytes\":{},\"puts\":{},\"seconds\":{:.3},\"puts_per_sec\":{:.1},\"mib_per_sec\":{:.2},\"p50_us\":{},\"p99_us\":{},\"commits\":{},\"data_fsyncs\":{},\"mapping_fsyncs\":{},\"files\":{}}}",
                        r.writers, r.object_size_bytes, r.puts, r.seconds, r.puts_per_sec,
                        r.mib_per_sec, r.p50_us, r.p99_us, r.commits, r.data_fsyncs, r.mapping_fsyncs, r.files
                    ));
                } else {
                    println!(
                        "| {} | {:.0} | {:.1} | {} | {} | {:.1} | {} / {} |",
                        r.writers,
                        r.puts_per_sec,
                        r.mib_per_sec,
                        r.p50_us,
                        r.p99_us,
                        r.puts_per_commit(),
                        r.puts,
                        r.files
                    );
                }
            }
            Err(e) => {
                eprintln!("put_bench: {e}");
                std::process::exit(1);
            }
        }
    }
    let load_after = loadavg();
    if args.json {
        println!(
            "{{\"load_before\":\"{load_before}\",\"load_after\":\"{load_after}\",\"runs\":[{}]}}",
            rows.join(",")
        );
    } else {
        println!("load after {load_after}");
    }
}
