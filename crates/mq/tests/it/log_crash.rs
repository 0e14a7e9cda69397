//! Crash test with real processes: a child process appends with `FlushPolicy::Always` and
//! prints every acknowledged batch; the parent SIGKILLs it at a random moment, reopens the
//! log and checks that every acknowledged batch is there, byte for byte, at its offset.
//!
//! The child is this same test binary, re-executed (by `testkit::crash`) to run
//! `crash_child` with the log directory in `MQ_CRASH_CHILD_DIR` (without it,
//! `crash_child` does nothing). The default
//! is 8 kills (a few seconds); set `MQ_CRASH_ROUNDS=200` for a longer soak.
#![allow(clippy::unwrap_used)]

use crate::log_support;

use std::time::Duration;

use mq::log::{BatchHeader, FlushPolicy, LogConfig, PartitionLog};
use testkit::crash::run_child_until_killed;

const CHILD_DIR_ENV: &str = "MQ_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "MQ_CRASH_CHILD_ROUND";

fn config() -> LogConfig {
    // Small segments so rolls (and their fsyncs) happen during the kills.
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        flush: FlushPolicy::Always,
        ..LogConfig::default()
    }
}

/// The batch the child writes as its `i`-th of round `round`: its content is derived from
/// (round, i), so the parent can rebuild the expected bytes from an acknowledgement.
fn batch_for(round: u64, i: u64) -> Vec<u8> {
    let records = 1 + (i % 7) as usize;
    log_support::batch(
        records,
        &format!("r{round}-i{i}-{}", "x".repeat((i % 13) as usize)),
        (round * 1_000_000 + i) as i64,
    )
}

/// The child: appends forever, printing `ack <round> <i> <base offset>` after each append.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let mut log = PartitionLog::open(dir.as_ref(), config()).unwrap();
    println!("ready");
    for i in 0u64.. {
        let a = log.append(&batch_for(round, i), 0).unwrap();
        println!("ack {round} {i} {}", a.base_offset);
    }
}

/// One round: runs the child until SIGKILL, returning its acknowledgements as
/// (round, i, base offset).
fn run_round(dir: &std::path::Path, round: u64, kill_after: Duration) -> Vec<(u64, u64, i64)> {
    let envs = [
        (CHILD_DIR_ENV, dir.as_os_str().to_owned()),
        (CHILD_ROUND_ENV, round.to_string().into()),
    ];
    run_child_until_killed("log_crash::crash_child", envs, kill_after)
        .iter()
        .filter_map(|ack| {
            let mut f = ack.split(' ').map(|s| s.parse::<i64>().ok());
            Some((f.next()?? as u64, f.next()?? as u64, f.next()??))
        })
        .collect()
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    let rounds: u64 = std::env::var("MQ_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    // A deterministic spread of kill moments (20-300 ms) without a random-number crate.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let kill_after = Duration::from_millis(20 + x % 280);
        acked.extend(run_round(dir.path(), round, kill_after));
        let log =
            PartitionLog::open(dir.path(), config()).expect("the log must reopen after SIGKILL");
        for &(r, i, base) in &acked {
            let got = log
                .read(base, 1)
                .unwrap_or_else(|e| panic!("round {round}: reading offset {base}: {e}"));
            let want = log_support::with_base(batch_for(r, i), base);
            assert_eq!(
                got[0][..],
                want[..],
                "round {round}: acknowledged batch {r}/{i} at {base} differs"
            );
        }
        // Whatever survived beyond the acknowledgements is whole, valid and contiguous.
        let all = log.read(0, usize::MAX).unwrap();
        let mut next = 0;
        for b in &all {
            let h = BatchHeader::parse(b).unwrap();
            assert_eq!(h.base_offset, next, "round {round}: offsets are contiguous");
            next = h.last_offset() + 1;
        }
        assert_eq!(next, log.end_offset());
    }
    assert!(
        acked.len() as u64 > rounds,
        "the child acknowledged too few batches: {}",
        acked.len()
    );
}
