//! Tests of the generator: uniqueness under threads, exhaustion, backward clocks.

use super::*;
use crate::clock::ManualClock;
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

/// 1,000 s after the default epoch: any "now" for a manual clock.
const T0: u64 = EPOCH_MS_DEFAULT + 1_000_000;

fn manual(config: &GeneratorConfig) -> Generator<Arc<ManualClock>> {
    Generator::with_clock(config, Arc::new(ManualClock::new(T0))).unwrap()
}

fn parts<C: Clock>(g: &Generator<C>, id: u64) -> Parts {
    g.layout().decode(id).unwrap()
}

/// Runs `threads` threads each taking `per_thread` IDs from `g`; checks each
/// thread saw strictly increasing IDs and no ID was issued twice overall.
fn assert_unique_and_increasing<C: Clock>(g: &Generator<C>, threads: usize, per_thread: usize) {
    let batches: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| (0..per_thread).filter_map(|_| g.next_id().ok()).collect()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = HashSet::new();
    for batch in &batches {
        assert!(
            batch.windows(2).all(|w| w[0] < w[1]),
            "not increasing in a thread"
        );
        for &id in batch {
            assert!(all.insert(id), "duplicate id {id}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn unique_and_increasing_across_threads_on_the_real_clock(
        threads in 2usize..5, per_thread in 1usize..3000,
    ) {
        let g = Generator::new(&GeneratorConfig::default()).unwrap();
        assert_unique_and_increasing(&g, threads, per_thread);
    }

    #[test]
    fn unique_and_increasing_with_a_tiny_sequence(threads in 2usize..5, per_thread in 1usize..500) {
        // 2 sequence bits: exhaustion every 4 IDs, the wait path is hot.
        let config = GeneratorConfig { layout: Layout::new(51, 5, 5, 2).unwrap(), ..Default::default() };
        assert_unique_and_increasing(&manual(&config), threads, per_thread);
    }

    /// A script of clock moves (forwards and backwards) between IDs: every ID
    /// issued is greater than the last, and the only refusal is a backward
    /// step beyond the bound.
    #[test]
    fn backward_clock_never_yields_a_duplicate(
        moves in proptest::collection::vec((-30i64..30, 1usize..6), 1..60),
        max_ms in 0u64..10,
    ) {
        let config = GeneratorConfig { backward_wait_ms_max: max_ms, ..Default::default() };
        let g = manual(&config);
        let mut last = 0u64;
        for (delta_ms, ids) in moves {
            if delta_ms >= 0 { g.clock().advance_ms(delta_ms as u64) } else { g.clock().rewind_ms(delta_ms.unsigned_abs()) }
            for _ in 0..ids {
                match g.next_id() {
                    Ok(id) => { prop_assert!(id > last, "{id} after {last}"); last = id; }
                    Err(GenerateError::ClockMovedBackwards { behind_ms, max_ms: m }) => {
                        prop_assert!(behind_ms > m);
                        prop_assert_eq!(m, max_ms);
                        prop_assert!(g.clock().now_ms() - EPOCH_MS_DEFAULT < parts(&g, last).elapsed_ms);
                    }
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
            }
        }
    }
}

#[test]
fn threads_racing_a_clock_that_jumps_back_never_duplicate() {
    let config = GeneratorConfig {
        backward_wait_ms_max: 3,
        ..Default::default()
    };
    let g = manual(&config);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut step = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                step += 1;
                match step % 3 {
                    0 => g.clock().rewind_ms(step % 7),
                    _ => g.clock().advance_ms(step % 5),
                }
                std::thread::yield_now();
            }
        });
        assert_unique_and_increasing(&g, 3, 5000);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

#[test]
fn sequence_exhaustion_waits_for_the_next_millisecond() {
    let g = manual(&GeneratorConfig::default());
    let ids: Vec<u64> = (0..4097).map(|_| g.next_id().unwrap()).collect();
    let first = parts(&g, ids[0]);
    assert_eq!(first.sequence, 0);
    assert!(
        ids[..4096].iter().enumerate().all(|(i, &id)| parts(&g, id)
            == Parts {
                sequence: i as u64,
                ..first
            }),
        "the first 4,096 IDs share one millisecond"
    );
    let next = parts(&g, ids[4096]);
    assert_eq!((next.elapsed_ms, next.sequence), (first.elapsed_ms + 1, 0));
    assert_eq!(g.clock().waited_ms(), 1, "waited exactly one ms");
}

#[test]
fn small_backward_step_is_waited_out() {
    let g = manual(&GeneratorConfig::default());
    let before = g.next_id().unwrap();
    g.clock().rewind_ms(4);
    let after = g.next_id().unwrap();
    assert!(after > before);
    assert_eq!(g.clock().waited_ms(), 4);
    assert_eq!(parts(&g, after).elapsed_ms, parts(&g, before).elapsed_ms);
}

#[test]
fn large_backward_step_is_refused_then_recovers() {
    let g = manual(&GeneratorConfig::default());
    let before = g.next_id().unwrap();
    g.clock().rewind_ms(1000);
    let err = g.next_id().unwrap_err();
    assert_eq!(
        err,
        GenerateError::ClockMovedBackwards {
            behind_ms: 1000,
            max_ms: 5
        }
    );
    assert!(err.to_string().contains("fix the host clock"));
    g.clock().advance_ms(1000);
    assert!(g.next_id().unwrap() > before);
}

#[test]
fn batches_are_increasing_and_span_milliseconds() {
    let g = manual(&GeneratorConfig::default());
    let mut ids = vec![g.next_id().unwrap()];
    g.next_ids(10_000, &mut ids).unwrap();
    assert_eq!(ids.len(), 10_001);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let span = parts(&g, ids[10_000]).elapsed_ms - parts(&g, ids[0]).elapsed_ms;
    assert_eq!(span, 2, "10,001 IDs need three milliseconds of 4,096");
}

#[test]
fn ids_carry_node_and_time() {
    let config = GeneratorConfig {
        datacenter: 17,
        machine: 31,
        ..Default::default()
    };
    let g = manual(&config);
    let d = crate::decode(g.next_id().unwrap(), g.layout(), g.epoch_ms()).unwrap();
    assert_eq!((d.datacenter, d.machine, d.unix_ms), (17, 31, T0));
}

#[test]
fn bad_configs_and_clocks_are_refused() {
    let config = GeneratorConfig {
        machine: 32,
        ..Default::default()
    };
    let err = Generator::new(&config).unwrap_err();
    assert!(
        err.to_string()
            .contains("machine 32 does not fit in 5 bits"),
        "{err}"
    );

    let early = Generator::with_clock(&GeneratorConfig::default(), ManualClock::new(1000)).unwrap();
    assert!(matches!(
        early.next_id(),
        Err(GenerateError::ClockBeforeEpoch { .. })
    ));

    let short = GeneratorConfig {
        layout: Layout::new(30, 10, 11, 12).unwrap(),
        epoch_ms: T0 - (1 << 30),
        ..Default::default()
    };
    let g = Generator::with_clock(&short, ManualClock::new(T0)).unwrap();
    assert!(matches!(
        g.next_id(),
        Err(GenerateError::TimestampExhausted { bits: 30, .. })
    ));
}

#[test]
fn config_reads_from_json_with_defaults() {
    let config: GeneratorConfig = serde_json::from_str(r#"{"machine": 3}"#).unwrap();
    assert_eq!(config.machine, 3);
    assert_eq!(config.layout, Layout::TWITTER);
    assert!(serde_json::from_str::<GeneratorConfig>(r#"{"machin": 3}"#).is_err());
}
