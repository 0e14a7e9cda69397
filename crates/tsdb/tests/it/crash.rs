//! Crash test with real processes: a child appends from two threads (five
//! series each, one sample per series per append, timestamps from a shared
//! clock advancing a minute per append) with 1-hour blocks, so the
//! maintenance thread cuts blocks, checkpoints the WAL and compacts while it
//! writes; it prints `ack <thread> <t>` after each append's ticket resolved.
//! The parent SIGKILLs it at a random moment, reopens the database and checks
//! that every acknowledged sample is there with its value, that every stored
//! sample has the value its writer gave it (nothing torn or invented), and
//! that every block verifies.
//!
//! The child is this test binary re-executed (`testkit::crash`). Default 10
//! kills; `TSDB_CRASH_ROUNDS=100` soaks longer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use testkit::crash::run_child_until_killed;
use tsdb::{Db, Error, MINUTE_MS, Options};

use crate::support::{dump, ls, small_opts};

const CHILD_DIR_ENV: &str = "TSDB_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "TSDB_CRASH_CHILD_ROUND";
const THREADS: u64 = 2;
const SERIES: u64 = 5;

fn opts(maintenance_interval_ms: u64) -> Options {
    Options {
        maintenance_interval_ms,
        wal_segment_bytes_max: 16 << 10,
        raw_retention_ms: i64::MAX / 4, // retention is not what this test checks
        ..small_opts()
    }
}

/// The value thread `th` writes for series `s` at `t`.
fn value(th: u64, s: u64, t: i64) -> f64 {
    (t / 1000) as f64 * 0.25 + (th * 100 + s) as f64
}

fn labels(th: u64, s: u64) -> tsdb::Labels {
    ls(
        "crash",
        &[("thread", &th.to_string()), ("s", &s.to_string())],
    )
}

/// The child: appends forever from two threads.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: i64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let db = Db::open(&dir, opts(5)).unwrap();
    let clock = AtomicI64::new(round * 1_000 * MINUTE_MS);
    println!("ready");
    std::thread::scope(|sc| {
        for th in 0..THREADS {
            let (db, clock) = (&db, &clock);
            sc.spawn(move || {
                loop {
                    let t = clock.fetch_add(MINUTE_MS, Ordering::SeqCst);
                    let batch = (0..SERIES)
                        .map(|s| (labels(th, s), vec![(t, value(th, s, t))]))
                        .collect();
                    match db.append(batch) {
                        Ok(ticket) => {
                            ticket.wait().unwrap();
                            println!("ack {th} {t}");
                        }
                        // The other thread ran past the out-of-order window.
                        Err(Error::OutOfBounds { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    let rounds: i64 = std::env::var("TSDB_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x75DB);
    let mut acked: Vec<(u64, i64)> = Vec::new();
    let (mut cuts_seen, mut compactions_seen) = (false, false);
    for round in 0..rounds {
        let envs = [
            (CHILD_DIR_ENV, dir.path().as_os_str().to_owned()),
            (CHILD_ROUND_ENV, round.to_string().into()),
        ];
        let lines = run_child_until_killed(
            "crash::crash_child",
            envs,
            Duration::from_millis(rng.u64(50..600)),
        );
        for line in &lines {
            let mut f = line.split(' ');
            let th: u64 = f.next().unwrap().parse().unwrap();
            let t: i64 = f.next().unwrap().parse().unwrap();
            acked.push((th, t));
        }
        let db = Db::open(dir.path(), opts(0)).expect("the database reopens after SIGKILL");
        db.verify().unwrap();
        cuts_seen |= !db.blocks().is_empty();
        compactions_seen |= db.blocks().iter().any(|m| m.level >= 2);
        let all = dump(&db);
        let stored: HashMap<(u64, u64), HashMap<i64, f64>> = (0..THREADS)
            .flat_map(|th| (0..SERIES).map(move |s| (th, s)))
            .map(|(th, s)| {
                (
                    (th, s),
                    all.get(&labels(th, s))
                        .map(|v| v.iter().copied().collect())
                        .unwrap_or_default(),
                )
            })
            .collect();
        for &(th, t) in &acked {
            for s in 0..SERIES {
                let got = stored[&(th, s)].get(&t);
                assert_eq!(
                    got,
                    Some(&value(th, s, t)),
                    "round {round}: acknowledged sample {th}/{s} at {t}"
                );
            }
        }
        for ((th, s), samples) in &stored {
            for (&t, &v) in samples {
                assert_eq!(
                    v,
                    value(*th, *s, t),
                    "round {round}: stored sample {th}/{s} at {t} is not what was written"
                );
            }
        }
    }
    assert!(
        acked.len() as i64 > rounds,
        "the child acknowledged too few appends: {}",
        acked.len()
    );
    assert!(
        compactions_seen,
        "the child never compacted blocks: the test did not cover compaction"
    );
    assert!(
        cuts_seen,
        "the child never cut a block: the test did not cover blocks and checkpoints"
    );
}
