//! Keyspace tests that need a real engine: active expiry without an
//! fsync, collection versions across a restart.

use super::*;
use crate::config::FsyncPolicy;
use crate::engine::lsm::LsmEngine;

/// Active expiry never waits for an fsync (it would hold the keyspace
/// lock through it): with the disk's fsync failing, the probe still
/// deletes the expired key and returns.
#[test]
fn active_expiry_does_not_wait_for_the_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = LsmEngine::open(dir.path(), FsyncPolicy::Always).expect("open");
    let mut ks = Keyspace::new(engine);
    let entry = Entry {
        expire_at_ms: Some(1),
        ..Entry::string(Bytes::from_static(b"v"))
    };
    ks.put(Bytes::from_static(b"gone"), entry).expect("put");
    ks.engine().fail_log_syncs(true);
    assert_eq!(
        ks.expire_sample(20, 1_000).expect("no fsync awaited"),
        (1, 1)
    );
    assert_eq!(ks.len(), 0);
    ks.engine().fail_log_syncs(false);
}

/// Collection versions never repeat across a restart, also when the
/// clock went back: a store written while the clock was ten hours ahead
/// (the same as ours set back ten hours since) keeps its reserve, and
/// new versions start above it.
#[test]
fn versions_stay_above_the_reserve_after_the_clock_went_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let future = clock::now_us() + 10 * 3600 * 1_000_000;
    {
        let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).expect("open");
        engine.begin_batch();
        engine.reserve_version(future).expect("reserve");
        engine.commit_batch().expect("commit");
    }
    let engine = LsmEngine::open(dir.path(), FsyncPolicy::No).expect("reopen");
    assert!(engine.version_floor() >= future);
    let mut ks = Keyspace::new(engine);
    let created = ks
        .create_collection(Bytes::from_static(b"h"), crate::value::Kind::Hash, None)
        .expect("create");
    assert!(
        created.meta.version > future,
        "version {} is in the old store's range",
        created.meta.version
    );
}
