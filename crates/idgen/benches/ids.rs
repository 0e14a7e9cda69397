//! IDs per second: snowflake on one thread and on all cores, against UUIDv7
//! and ULID, plus base-62 encoding. `cargo bench -p idgen --bench ids`.
//! Single-thread figures are per second of on-CPU time (see `on_cpu`).
//!
//! The snowflake ceiling is 4,096 IDs per ms per generator (4.096 M/s); the
//! target is >= 3.5 M/s per generator, i.e. the generator itself must cost
//! well under 244 ns per ID so the limit is the sequence width, not the code.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark is a test harness: a failed unwrap aborts it with a backtrace"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idgen::{Generator, GeneratorConfig, Layout, base62};

/// Nanoseconds this thread has spent on a CPU, from the kernel's scheduler
/// statistics (`/proc/thread-self/schedstat`, first field); `None` where
/// that file does not exist.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `f` `iters` times and returns the on-CPU time it took (wall time if
/// the kernel does not tell). Why: on a shared 2-core machine our thread is
/// descheduled for whole milliseconds, and a millisecond we do not run in is
/// 4,096 snowflake IDs lost for good, so wall time measures the scheduler.
/// On-CPU time measures what a generator does on a core it has to itself.
fn on_cpu<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    for _ in 0..iters {
        black_box(f());
    }
    match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a).max(1)),
        _ => wall0.elapsed(),
    }
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("one thread, on-CPU time");
    group.throughput(Throughput::Elements(1));
    let g = Generator::new(&GeneratorConfig::default()).unwrap();
    group.bench_function("snowflake next_id", |b| {
        b.iter_custom(|n| on_cpu(n, || g.next_id().unwrap()))
    });
    // 22 sequence bits: the 4,096/ms cap is out of the way, so this shows
    // what the lock-free path itself costs.
    let wide = GeneratorConfig {
        layout: Layout::new(41, 0, 0, 22).unwrap(),
        ..Default::default()
    };
    let g_wide = Generator::new(&wide).unwrap();
    group.bench_function("snowflake next_id (22 sequence bits, no cap)", |b| {
        b.iter_custom(|n| on_cpu(n, || g_wide.next_id().unwrap()))
    });
    let g_batch = Generator::new(&GeneratorConfig::default()).unwrap();
    let mut out = Vec::with_capacity(1000);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("snowflake next_ids(1000)", |b| {
        b.iter_custom(|n| {
            on_cpu(n, || {
                out.clear();
                g_batch.next_ids(1000, &mut out).unwrap();
            })
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("uuid v7", |b| {
        b.iter_custom(|n| on_cpu(n, uuid::Uuid::now_v7))
    });
    group.bench_function("uuid v4", |b| {
        b.iter_custom(|n| on_cpu(n, uuid::Uuid::new_v4))
    });
    group.bench_function("ulid", |b| b.iter_custom(|n| on_cpu(n, ulid::Ulid::new)));
    group.bench_function("base62 encode u64", |b| {
        b.iter_custom(|n| on_cpu(n, || base62::encode(black_box(7_318_316_418_170_000_000))))
    });
    group.finish();
}

/// Wall time, as a caller sees it: reaches the 4.096 M/s cap only when the
/// thread has a core to itself (run it under `nice -n -19` on a busy box).
fn single_thread_wall(c: &mut Criterion) {
    let mut group = c.benchmark_group("one thread, wall time");
    group.throughput(Throughput::Elements(1));
    let g = Generator::new(&GeneratorConfig::default()).unwrap();
    group.bench_function("snowflake next_id", |b| b.iter(|| g.next_id().unwrap()));
    group.bench_function("uuid v7", |b| b.iter(uuid::Uuid::now_v7));
    group.bench_function("ulid", |b| b.iter(ulid::Ulid::new));
    group.finish();
}

/// `threads` threads share one generator for `iters` IDs in total.
fn shared_generator(g: &Generator, threads: u64, iters: u64) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    black_box(g.next_id().unwrap());
                }
            });
        }
    });
    start.elapsed()
}

/// `threads` threads, each with its own generator (its own machine id).
fn own_generators(threads: u64, iters: u64) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for machine in 0..threads {
            s.spawn(move || {
                let config = GeneratorConfig {
                    machine,
                    ..Default::default()
                };
                let g = Generator::new(&config).unwrap();
                for _ in 0..per_thread {
                    black_box(g.next_id().unwrap());
                }
            });
        }
    });
    start.elapsed()
}

fn all_cores(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    // Wall time here: the threads share the machine with everything else.
    let mut group = c.benchmark_group(format!("all cores ({threads} threads), wall time"));
    group.throughput(Throughput::Elements(1));
    let g = Generator::new(&GeneratorConfig::default()).unwrap();
    group.bench_function("snowflake, one shared generator", |b| {
        b.iter_custom(|iters| shared_generator(&g, threads, iters))
    });
    group.bench_function("snowflake, a generator per thread", |b| {
        b.iter_custom(|iters| own_generators(threads, iters))
    });
    group.bench_function("uuid v7", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(threads);
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        (0..per_thread).for_each(|_| {
                            black_box(uuid::Uuid::now_v7());
                        })
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = single_thread, single_thread_wall, all_cores
}
criterion_main!(benches);
