//! `hyperscale bench hotel`: bookings per second, latency, retries and
//! failures of each concurrency mode at low and high contention, in process
//! on SQLite (a temporary file) or on a PostgreSQL database by URL. The
//! workload lives in `hotel::bench`. With `--plot FILE.png` it sweeps
//! contention instead (same-night bookings spread over 1, 2, 4, ... hotels)
//! and draws throughput and failures against it, one line per mode.
//! With `--runs N` every point runs N times and reports the median of each
//! figure (BENCHMARKS.md's "medians of 3").

mod plot;

use anyhow::Context;
use hotel::Mode;
use hotel::bench::{Contention, Outcome, Workload};

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale bench hotel`.
#[derive(clap::Args)]
pub struct Args {
    /// `sqlite` (a fresh temporary file per run) or a postgres:// URL (runs
    /// use disjoint hotel ids in that database).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Comma-separated modes: pessimistic,optimistic,constraint.
    #[arg(long, default_value = "pessimistic,optimistic,constraint")]
    modes: String,
    /// Bookings per run.
    #[arg(long, default_value_t = 2_000)]
    bookings: u64,
    /// Guests booking at once.
    #[arg(long, default_value_t = 32)]
    workers: u64,
    /// Hotels at low contention.
    #[arg(long, default_value_t = 1_000)]
    hotels: i64,
    /// Retries before a booking gives up.
    #[arg(long, default_value_t = 8)]
    retries: u32,
    /// Pause between the availability check and the write, in ms (the work
    /// a real booking does there; widens the window for conflicts).
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Database connections.
    #[arg(long, default_value_t = 8)]
    connections: u32,
    /// Runs per point; each figure reported is the median over them.
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// Sweep contention instead and draw the results into this PNG.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// The sweep's points: how many hotels the same-night bookings spread
    /// over (1 = every booking races for one room type's night).
    #[arg(long, default_value = "1,2,4,8,16,64,256")]
    sweep: String,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// The runs to make: `(mode, contention, hotels)`.
fn runs(args: &Args, modes: &[Mode]) -> anyhow::Result<Vec<(Mode, Contention, i64)>> {
    if args.plot.is_none() {
        return Ok(modes
            .iter()
            .flat_map(|&mode| {
                [
                    (mode, Contention::Low, args.hotels),
                    (mode, Contention::High, 1),
                ]
            })
            .collect());
    }
    let points = args
        .sweep
        .split(',')
        .map(|point| match point.trim().parse::<i64>() {
            Ok(hotels) if (1..=100_000).contains(&hotels) => Ok(hotels),
            _ => Err(anyhow::anyhow!(
                "--sweep takes hotel counts 1..=100000 separated by commas, not `{point}`"
            )),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if points.is_empty() || points.len() > 32 {
        anyhow::bail!("--sweep takes 1 to 32 points");
    }
    Ok(modes
        .iter()
        .flat_map(|&mode| {
            points
                .iter()
                .map(move |&hotels| (mode, Contention::Spread, hotels))
        })
        .collect())
}

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let modes = args
        .modes
        .split(',')
        .map(|mode| mode.trim().parse::<Mode>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(1..=10_000_000).contains(&args.bookings) || !(1..=10_000).contains(&args.workers) {
        anyhow::bail!("--bookings must be 1..=10000000 and --workers 1..=10000");
    }
    if !(1..=100_000).contains(&args.hotels) {
        anyhow::bail!("--hotels must be 1..=100000");
    }
    if !(1..=15).contains(&args.runs) {
        anyhow::bail!("--runs must be 1..=15");
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let run_base = clock::now_ms() as i64 % 1_000_000 * 1_000_000;
    let mut outcomes = Vec::new();
    let mut index = 0i64;
    for (mode, contention, hotels) in runs(&args, &modes)? {
        let mut repeats = Vec::new();
        for repeat in 1..=args.runs {
            let dir = tempfile_dir()?;
            let url = if args.database == "sqlite" {
                format!("sqlite://{}", dir.join("bench.db").display())
            } else {
                args.database.clone()
            };
            let workload = Workload {
                mode,
                contention,
                bookings: args.bookings,
                workers: args.workers,
                hotels,
                hotel_base: run_base + index * 200_000 + 1,
                retries_max: args.retries,
                hold_ms: args.hold_ms.min(1_000),
            };
            index += 1;
            let label = format!(
                "{} {contention:?} {hotels} #{repeat}/{}",
                mode.as_str(),
                args.runs
            );
            let total = args.bookings;
            let outcome = runtime.block_on(async {
                let store = hotel::Store::open(&hotel::StoreOptions {
                    url: url.clone(),
                    connections_max: args.connections,
                    timeout_ms: 30_000,
                })
                .await
                .with_context(|| format!("cannot open {}", hotel::redact(&url)))?;
                let progress_label = label.clone();
                hotel::bench::run(store, workload, move |done| {
                    note(&format!("\r{progress_label:<28} {done:>9}/{total}"));
                })
                .await
                .context("benchmark run failed")
            });
            let _ = std::fs::remove_dir_all(&dir);
            note(&format!("\r{label:<28} {total:>9}/{total}\n"));
            repeats.push(outcome?);
        }
        outcomes.push(median(&repeats));
    }
    if let Some(path) = &args.plot {
        let database = if args.database == "sqlite" {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        let title = format!(
            "hotel: {} same-night bookings, {} guests at once, {} retries max ({database})",
            args.bookings, args.workers, args.retries
        );
        plot::draw(path, &title, &outcomes, &modes)?;
        note(&format!("plot written to {}\n", path.display()));
    }
    if args.json {
        emit_json(&serde_json::json!({
            "database": if args.database == "sqlite" { "sqlite".to_string() } else { hotel::redact(&args.database) },
            "bookings": args.bookings, "workers": args.workers, "hotels": args.hotels, "hold_ms": args.hold_ms,
            "runs": args.runs,
            "results": outcomes,
        }))
    } else {
        emit(&render(&outcomes))
    }
}

/// One point's repeated runs as one outcome: each count, rate and latency
/// is the median of its own runs (`clock::latency::percentile` at 0.5, so
/// with an even count the upper middle), taken field by field.
fn median(repeats: &[Outcome]) -> Outcome {
    assert!(!repeats.is_empty(), "a point runs at least once");
    fn mid<T: Copy + PartialOrd>(repeats: &[Outcome], field: impl Fn(&Outcome) -> T) -> T {
        let mut values: Vec<T> = repeats.iter().map(field).collect();
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        clock::latency::percentile(&values, 0.5).expect("at least one run")
    }
    Outcome {
        booked: mid(repeats, |o| o.booked),
        sold_out: mid(repeats, |o| o.sold_out),
        failed: mid(repeats, |o| o.failed),
        retries: mid(repeats, |o| o.retries),
        seconds: mid(repeats, |o| o.seconds),
        bookings_per_sec: mid(repeats, |o| o.bookings_per_sec),
        p50_ms: mid(repeats, |o| o.p50_ms),
        p99_ms: mid(repeats, |o| o.p99_ms),
        ..repeats[0].clone()
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "hyperscale-bench-hotel-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn render(outcomes: &[Outcome]) -> String {
    let mut rows = vec![
        [
            "mode",
            "contention",
            "hotels",
            "booked",
            "failed",
            "retries",
            "bookings/s",
            "p50 ms",
            "p99 ms",
        ]
        .map(str::to_owned),
    ];
    for o in outcomes {
        rows.push([
            o.mode.as_str().to_string(),
            format!("{:?}", o.contention).to_lowercase(),
            o.hotels.to_string(),
            o.booked.to_string(),
            (o.failed + o.sold_out).to_string(),
            o.retries.to_string(),
            format!("{:.0}", o.bookings_per_sec),
            format!("{:.2}", o.p50_ms),
            format!("{:.2}", o.p99_ms),
        ]);
    }
    table::render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(booked: u64, failed: u64, retries: u64, per_sec: f64, p99_ms: f64) -> Outcome {
        Outcome {
            mode: Mode::Optimistic,
            contention: Contention::Spread,
            hotels: 4,
            attempted: 500,
            booked,
            sold_out: 0,
            failed,
            retries,
            seconds: 500.0 / per_sec,
            bookings_per_sec: per_sec,
            p50_ms: p99_ms / 10.0,
            p99_ms,
        }
    }

    #[test]
    fn median_takes_each_figure_from_its_own_middle_run() {
        let runs = [
            outcome(480, 20, 900, 700.0, 90.0),
            outcome(500, 0, 300, 400.0, 30.0),
            outcome(490, 10, 1_500, 500.0, 60.0),
        ];
        let m = median(&runs);
        assert_eq!((m.booked, m.failed, m.retries), (490, 10, 900));
        assert_eq!((m.bookings_per_sec, m.p99_ms, m.p50_ms), (500.0, 60.0, 6.0));
        assert_eq!(m.seconds, 1.0);
        assert_eq!(
            (m.mode, m.contention, m.hotels, m.attempted),
            (Mode::Optimistic, Contention::Spread, 4, 500)
        );
        let one = median(&runs[1..2]);
        assert_eq!(
            (one.booked, one.retries, one.bookings_per_sec),
            (500, 300, 400.0)
        );
    }
}
