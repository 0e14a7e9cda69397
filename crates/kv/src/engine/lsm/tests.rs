//! The LSM engine's write batches: reads see staged writes, rollback restores
//! the count and the TTL index exactly, SCAN merges the batch, commits persist.

use bytes::Bytes;

use super::LsmEngine;
use crate::config::FsyncPolicy;
use crate::engine::Engine;
use crate::value::Entry;

fn entry(value: &str, expire_at_ms: Option<u64>) -> Entry {
    Entry {
        expire_at_ms,
        ..Entry::string(Bytes::copy_from_slice(value.as_bytes()))
    }
}

fn key(name: &str) -> Bytes {
    Bytes::copy_from_slice(name.as_bytes())
}

fn value_of(engine: &mut dyn Engine, name: &str) -> Option<Entry> {
    engine.get(name.as_bytes()).unwrap()
}

fn scan_all(engine: &mut dyn Engine, count: usize) -> Vec<Bytes> {
    let (mut out, mut cursor) = (Vec::new(), 0);
    loop {
        cursor = engine.scan(cursor, count, &mut out).unwrap();
        if cursor == 0 {
            return out;
        }
    }
}

#[test]
fn a_batch_is_visible_at_once_and_durable_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let far = u64::MAX / 2;
    {
        let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::Always).unwrap();
        engine.put(key("old"), entry("1", None)).unwrap();
        engine.begin_batch();
        engine.put(key("a"), entry("x", None)).unwrap();
        engine.put(key("a"), entry("y", Some(far))).unwrap();
        assert!(engine.remove(b"old").unwrap());
        assert!(!engine.remove(b"never").unwrap());
        assert_eq!(value_of(engine.as_mut(), "a"), Some(entry("y", Some(far))));
        assert_eq!(value_of(engine.as_mut(), "old"), None);
        assert_eq!((engine.len(), engine.volatile_len()), (1, 1));
        assert_eq!(engine.batch_len(), 3);
        engine.commit_batch().unwrap();
        assert_eq!(engine.batch_len(), 0);
    }
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(value_of(engine.as_mut(), "a"), Some(entry("y", Some(far))));
    assert_eq!(value_of(engine.as_mut(), "old"), None);
    assert_eq!((engine.len(), engine.volatile_len()), (1, 1));
}

#[test]
fn rollback_restores_values_count_and_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    engine
        .put(key("kept"), entry("1", Some(u64::MAX / 2)))
        .unwrap();
    engine.begin_batch();
    engine.put(key("first"), entry("1", None)).unwrap();
    let savepoint = engine.batch_len();
    engine.put(key("first"), entry("2", Some(7_000))).unwrap();
    engine.put(key("new"), entry("3", None)).unwrap();
    assert!(engine.set_expiry(b"kept", None).unwrap());
    assert!(engine.remove(b"kept").unwrap());
    assert_eq!((engine.len(), engine.volatile_len()), (2, 1));
    engine.rollback_batch(savepoint);
    assert_eq!(value_of(engine.as_mut(), "first"), Some(entry("1", None)));
    assert_eq!(value_of(engine.as_mut(), "new"), None);
    assert_eq!(
        value_of(engine.as_mut(), "kept"),
        Some(entry("1", Some(u64::MAX / 2)))
    );
    assert_eq!((engine.len(), engine.volatile_len()), (2, 1));
    engine.rollback_batch(0);
    assert_eq!(value_of(engine.as_mut(), "first"), None);
    assert_eq!((engine.len(), engine.volatile_len()), (1, 1));
    engine.commit_batch().unwrap();
    assert_eq!(scan_all(engine.as_mut(), 10), vec![key("kept")]);
}

#[test]
fn scan_merges_the_open_batch_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    for name in ["b", "d", "f"] {
        engine.put(key(name), entry("disk", None)).unwrap();
    }
    engine.begin_batch();
    for name in ["a", "c", "d", "g"] {
        engine.put(key(name), entry("staged", None)).unwrap();
    }
    assert!(engine.remove(b"f").unwrap());
    assert!(engine.remove(b"g").unwrap());
    let expected: Vec<Bytes> = ["a", "b", "c", "d"].into_iter().map(key).collect();
    for count in [1, 2, 3, 10] {
        assert_eq!(scan_all(engine.as_mut(), count), expected, "COUNT {count}");
    }
    assert_eq!(engine.len(), 4);
    engine.commit_batch().unwrap();
    assert_eq!(scan_all(engine.as_mut(), 3), expected);
}

#[test]
fn clear_drops_the_open_batch_and_random_key_finds_staged_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    engine.put(key("disk"), entry("1", None)).unwrap();
    engine.begin_batch();
    engine.put(key("staged"), entry("1", None)).unwrap();
    engine.clear().unwrap();
    assert_eq!((engine.len(), engine.batch_len()), (0, 0));
    assert_eq!(engine.random_key().unwrap(), None);
    engine.put(key("after"), entry("1", None)).unwrap();
    assert_eq!(engine.random_key().unwrap(), Some(key("after")));
    engine.commit_batch().unwrap();
    assert_eq!(scan_all(engine.as_mut(), 10), vec![key("after")]);
}

#[test]
fn an_oversized_key_fails_alone_when_staged() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    engine.begin_batch();
    engine.put(key("ok"), entry("1", None)).unwrap();
    let huge = Bytes::from(vec![b'k'; (64 << 10) + 1]);
    let err = engine.put(huge, entry("1", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key of 65537 bytes exceeds the lsm engine's key limit of 65536 bytes"
    );
    assert_eq!((engine.len(), engine.batch_len()), (1, 1));
    engine.commit_batch().unwrap();
    assert_eq!(value_of(engine.as_mut(), "ok"), Some(entry("1", None)));
}

#[test]
fn an_oversized_value_error_names_its_own_size_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    assert_eq!(engine.value_bytes_max(), Some(64 << 20));
    let value = Bytes::from(vec![b'v'; (64 << 20) + 1]);
    let mut entry = Entry::string(value);
    entry.expire_at_ms = Some(u64::MAX / 2);
    let err = engine.put(key("big"), entry).unwrap_err();
    // Before: "value of 67108875 bytes exceeds value_size_bytes_max
    // (67108864)", the client's size plus our 10-byte header.
    assert_eq!(
        err.to_string(),
        "value of 67108865 bytes exceeds the lsm engine's value limit of 67108864 bytes"
    );
    assert_eq!(engine.len(), 0);
}
