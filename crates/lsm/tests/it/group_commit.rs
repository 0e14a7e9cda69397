//! Group commit through the split write API: `Db::write_nosync` then `Db::sync_to`.
//!
//! A server that holds its own lock commits with `write_nosync`, releases the lock and
//! then waits in `sync_to`; these tests prove that concurrent waiters share fsyncs
//! (counted by `Stats::wal_syncs`, not timed) and that each returns only once its write
//! is durable (`Stats::durable_sequence`).
// Test code: a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Barrier;

use lsm::{Db, Error, Options, SyncPolicy, WriteBatch};

const THREADS: usize = 8;

fn put(db: &Db, key: &str) -> u64 {
    db.write_nosync(WriteBatch::new().put(key.as_bytes(), b"v"))
        .unwrap()
}

/// Writes appended before anyone waits are all covered by the first waiter's fsync:
/// eight threads waiting for 400 writes cost exactly one fsync.
#[test]
fn waiters_for_appended_writes_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let seqs: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let db = &db;
                s.spawn(move || (0..50).map(|i| put(db, &format!("t{t}-{i}"))).collect())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let before = db.stats();
    assert_eq!(before.wal_syncs, 0, "write_nosync never fsyncs");
    let max = seqs.iter().flatten().copied().max().unwrap();
    assert!(before.durable_sequence < max);
    std::thread::scope(|s| {
        for mine in &seqs {
            let db = &db;
            s.spawn(move || {
                for &seq in mine {
                    db.sync_to(seq).unwrap();
                    assert!(
                        db.stats().durable_sequence >= seq,
                        "returned before durable"
                    );
                }
            });
        }
    });
    let after = db.stats();
    assert_eq!(after.wal_syncs, 1, "one fsync covered every waiter");
    assert!(after.durable_sequence >= max);
}

/// Concurrent writers that each write, then wait: rounds of eight writes cost one
/// fsync each (the round's first waiter leads, the others find their write covered),
/// so fsyncs stay far below writes. The barrier makes the count exact, not a timing.
#[test]
fn concurrent_writers_ride_one_fsync_per_round() {
    const ROUNDS: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let appended = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, appended) = (&db, &appended);
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let seq = put(db, &format!("t{t}-{round}"));
                    // Readers see the write before it is durable (the documented price).
                    assert!(
                        db.get(format!("t{t}-{round}").as_bytes())
                            .unwrap()
                            .is_some()
                    );
                    appended.wait();
                    db.sync_to(seq).unwrap();
                    assert!(
                        db.stats().durable_sequence >= seq,
                        "returned before durable"
                    );
                }
            });
        }
    });
    let writes = ROUNDS * THREADS as u64;
    let stats = db.stats();
    assert_eq!(stats.last_sequence, writes);
    assert_eq!(stats.wal_syncs, ROUNDS, "one group fsync per round");
    assert!(stats.wal_syncs < writes);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.scan(..).unwrap().count() as u64, writes);
}

/// `Db::write` under `Always` goes through the same group commit; a number no write
/// has is refused, and `No` never fsyncs.
#[test]
fn write_counts_its_fsync_and_bad_numbers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"a", b"1").unwrap();
    let stats = db.stats();
    assert_eq!((stats.wal_syncs, stats.durable_sequence), (1, 1));
    assert_eq!(
        db.write_nosync(&WriteBatch::new()).unwrap(),
        0,
        "empty batch"
    );
    db.sync_to(0).unwrap();
    let err = db.sync_to(99).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        sync: SyncPolicy::No,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let seq = put(&db, "k");
    db.sync_to(seq).unwrap();
    assert_eq!(db.stats().wal_syncs, 0);
}
