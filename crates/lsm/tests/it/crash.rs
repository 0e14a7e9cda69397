//! Crash test with real processes: a child process writes with `SyncPolicy::Always` and
//! prints every acknowledged key; the parent SIGKILLs it at a random moment, reopens the
//! store and checks that every acknowledged key is there with its value.
//!
//! The child is this same test binary, re-executed (by `testkit::crash`) to run
//! `crash_child` with the store directory in `LSM_CRASH_CHILD_DIR` (without it,
//! `crash_child` does nothing). Keys never contain spaces or newlines. The
//! default is 20 kills; set `LSM_CRASH_ROUNDS=500` for a longer soak.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lsm::{Db, Options, SyncPolicy};
use testkit::crash::run_child_until_killed;

const CHILD_DIR_ENV: &str = "LSM_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "LSM_CRASH_CHILD_ROUND";
const WRITERS: usize = 3;

fn opts() -> Options {
    // Small sizes so flushes, compactions and log rotations happen during the kills.
    Options {
        memtable_size_bytes: 32 << 10,
        block_size_bytes: 512,
        table_size_bytes: 64 << 10,
        level1_size_bytes: 128 << 10,
        level_size_multiplier: 4,
        l0_compaction_trigger: 2,
        sync: SyncPolicy::Always,
        ..Options::default()
    }
}

fn value_for(key: &str) -> Vec<u8> {
    format!("{key}:").repeat(1 + key.len() % 5).into_bytes()
}

/// The child: writes forever from several threads, printing each acknowledged key.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let db = std::sync::Arc::new(Db::open(&dir, opts()).unwrap());
    println!("ready");
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let key = format!("r{round:03}-t{t}-{i:07}");
                    db.put(key.as_bytes(), &value_for(&key)).unwrap();
                    // Also overwrite and delete, acknowledging the final state only.
                    if i % 10 == 0 {
                        db.delete(format!("gone-{round}-{t}-{i}").as_bytes())
                            .unwrap();
                    }
                    println!("ack {key}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// One round: runs the child until SIGKILL, returning the keys it acknowledged.
fn run_round(dir: &std::path::Path, round: u64, kill_after: Duration) -> Vec<String> {
    let envs = [
        (CHILD_DIR_ENV, dir.as_os_str().to_owned()),
        (CHILD_ROUND_ENV, round.to_string().into()),
    ];
    run_child_until_killed("crash::crash_child", envs, kill_after)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds: u64 = std::env::var("LSM_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut acked_total = Vec::new();
    // A deterministic spread of kill moments (10-300 ms).
    let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    for round in 0..rounds {
        let kill_after = Duration::from_millis(rng.u64(10..300));
        let acked = run_round(dir.path(), round, kill_after);
        acked_total.extend(acked);
        let db = Db::open(dir.path(), opts()).expect("store must reopen after SIGKILL");
        for key in &acked_total {
            let got = db
                .get(key.as_bytes())
                .unwrap_or_else(|e| panic!("round {round}: reading {key}: {e}"));
            assert_eq!(
                got.as_deref(),
                Some(&value_for(key)[..]),
                "round {round}: acknowledged key {key} lost"
            );
        }
        // Every live key is one the child wrote, with the right value: nothing corrupt.
        for kv in db.scan(..).unwrap() {
            let kv = kv.unwrap();
            let key = String::from_utf8(kv.key).unwrap();
            assert_eq!(
                kv.value,
                value_for(&key),
                "round {round}: wrong value for {key}"
            );
        }
    }
    assert!(
        acked_total.len() > rounds as usize,
        "the child acknowledged too few writes: {}",
        acked_total.len()
    );
}
