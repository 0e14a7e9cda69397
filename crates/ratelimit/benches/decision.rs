//! One in-process decision per algorithm: the pure state machine, and the
//! same through the sharded memory store (hash, lock, map lookup).
//!
//! Run: `cargo bench -p ratelimit --bench decision`. Target: p50 < 200 ns.

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use ratelimit::algorithm::{Algorithm, Quota, State};
use ratelimit::store::memory::{MemoryConfig, MemoryStore};

fn decisions(c: &mut Criterion) {
    // 1000 per second: the state sees a realistic mix of admits and rejects.
    let quota = Quota::new(1_000, 1_000_000_000).expect("a valid quota");
    let mut group = c.benchmark_group("decision");
    for algorithm in Algorithm::ALL {
        group.bench_with_input(
            BenchmarkId::new("state", algorithm.name()),
            &algorithm,
            |b, &algorithm| {
                let mut state = State::new(algorithm, &quota, 0);
                let mut now = 0u64;
                b.iter(|| {
                    now += 700; // ~1.4 M req/s offered: both paths exercised
                    black_box(state.check(&quota, black_box(now)))
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("memory_store", algorithm.name()),
            &algorithm,
            |b, &algorithm| {
                let store = MemoryStore::new(&MemoryConfig::default());
                let keys: Vec<String> = (0..1024)
                    .map(|i| format!("rl:bench:remote_address=10.0.{}.{}", i / 256, i % 256))
                    .collect();
                let mut now = 0u64;
                let mut i = 0usize;
                b.iter(|| {
                    now += 700;
                    i = (i + 1) & 1023;
                    black_box(store.check(&keys[i], algorithm, &quota, black_box(now)))
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
