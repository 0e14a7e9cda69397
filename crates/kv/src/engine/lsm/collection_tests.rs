//! The lsm engine's collections: size limits at staging, O(1) deletes whose
//! garbage compaction reclaims, bounded reverse reads, and the migration of
//! a store written before key namespaces.

use std::ops::Bound;

use bytes::Bytes;

use super::{LsmEngine, keys, layout, test_meta as meta};
use crate::config::FsyncPolicy;
use crate::engine::{Engine, EngineError, SubRange};
use crate::value::{Entry, Value};

/// A collection `key` (version 7) of `n` subkeys `m:{i:08}` with `value_len`-byte values.
fn fill(engine: &mut LsmEngine, key: &'static [u8], n: u64, value_len: usize) {
    engine.begin_batch();
    engine.put(Bytes::from_static(key), meta(7, n)).unwrap();
    for i in 0..n {
        let sub = format!("m:{i:08}");
        engine
            .sub_put(key, 7, sub.as_bytes(), &vec![b'v'; value_len])
            .unwrap();
        if i % 1000 == 999 {
            engine.commit_batch().unwrap();
            engine.begin_batch();
        }
    }
    engine.commit_batch().unwrap();
}

fn disk_bytes(engine: &LsmEngine) -> u64 {
    engine.db.stats().levels.iter().map(|l| l.size_bytes).sum()
}

fn subkeys_on_disk(engine: &LsmEngine) -> usize {
    engine.db.scan_prefix(&[keys::SUB]).unwrap().count()
}

#[test]
fn oversized_subkeys_and_values_fail_when_staged_and_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open_engine(dir.path(), FsyncPolicy::No).unwrap();
    engine.begin_batch();
    engine.put(Bytes::from_static(b"h"), meta(1, 1)).unwrap();
    engine.sub_put(b"h", 1, b"ok", b"1").unwrap();
    let staged = engine.batch_len();
    let long = vec![b'f'; super::subkeys::SUBKEY_BYTES_MAX + 1];
    let err = engine.sub_put(b"h", 1, &long, b"1").unwrap_err();
    assert!(matches!(err, EngineError::TooLarge(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "field or member of 65537 bytes exceeds the lsm engine's limit of 65536 bytes"
    );
    let big = vec![b'v'; (64 << 20) + 1];
    let err = engine.sub_put(b"h", 1, b"f", &big).unwrap_err();
    assert_eq!(
        err.to_string(),
        "value of 67108865 bytes exceeds the lsm engine's value limit of 67108864 bytes"
    );
    // The longest key with the longest subkey fits the LSM's key limit.
    let key = vec![b'k'; super::KEY_BYTES_MAX];
    let sub = vec![b's'; super::subkeys::SUBKEY_BYTES_MAX];
    engine.put(Bytes::from(key.clone()), meta(2, 1)).unwrap();
    engine.sub_put(&key, 2, &sub, b"v").unwrap();
    assert_eq!(engine.batch_len(), staged + 2);
    engine.commit_batch().unwrap();
    assert_eq!(
        engine.sub_get(b"h", 1, b"ok").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        engine.sub_get(&key, 2, &sub).unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// `DEL` and expiry write one entry however big the collection is; the
/// subkeys are reclaimed by compaction (the filter), not by the caller.
#[test]
fn deleting_or_expiring_a_collection_is_one_write_and_compaction_reclaims_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open_engine(dir.path(), FsyncPolicy::No).unwrap();
    fill(&mut engine, b"big", 20_000, 100);
    fill(&mut engine, b"kept", 10, 100);
    engine.db.compact().unwrap();
    let full = disk_bytes(&engine);
    assert!(full > 2_000_000, "{full}");
    assert_eq!(subkeys_on_disk(&engine), 20_010);

    let before = engine.db.stats().last_sequence;
    assert!(engine.remove(b"big").unwrap());
    assert_eq!(engine.db.stats().last_sequence - before, 1, "one LSM write");
    engine.db.compact().unwrap();
    let after = disk_bytes(&engine);
    assert!(after < 10_000, "{full} -> {after} bytes");
    assert_eq!(subkeys_on_disk(&engine), 10);
    let mut kept = Vec::new();
    engine
        .sub_range(b"kept", 7, &SubRange::all(100), &mut kept)
        .unwrap();
    assert_eq!(kept.len(), 10);

    // Expiry: the LSM hides the metadata at its deadline; the subkeys go
    // with the next compaction, before anyone deletes the key.
    assert!(engine.set_expiry(b"kept", Some(1)).unwrap());
    engine.db.compact().unwrap();
    assert_eq!(subkeys_on_disk(&engine), 0);
}

/// `ZREVRANGE key 0 9` reads the ten highest members, not the set.
#[test]
fn a_reverse_range_reads_only_its_end_of_a_big_collection() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = LsmEngine::open_engine(dir.path(), FsyncPolicy::No).unwrap();
    fill(&mut engine, b"z", 100_000, 16);
    engine.db.compact().unwrap();
    // A staged change at the top, merged in.
    engine.begin_batch();
    engine.sub_remove(b"z", 7, b"m:00099999").unwrap();
    let blocks = |e: &LsmEngine| {
        let s = e.db.stats();
        s.block_cache_hits + s.block_cache_misses
    };
    let before = blocks(&engine);
    let mut top = Vec::new();
    let range = SubRange {
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        reverse: true,
        limit: 10,
    };
    engine.sub_range(b"z", 7, &range, &mut top).unwrap();
    let read = blocks(&engine) - before;
    let subs: Vec<_> = top.iter().map(|(s, _)| s.clone()).collect();
    let want: Vec<_> = (99_989..99_999)
        .rev()
        .map(|i| Bytes::from(format!("m:{i:08}")))
        .collect();
    assert_eq!(subs, want);
    assert!(read <= 4, "{read} blocks read for 10 members of 100000");
    engine.commit_batch().unwrap();
}

/// A data directory written by the engine before namespaces (raw keys in
/// `<dir>` itself) opens with its keys, TTLs and count, once migrated.
#[test]
fn a_store_of_the_old_layout_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let far = u64::MAX / 2;
    {
        let old = lsm::Db::open(dir.path(), lsm::Options::default()).unwrap();
        let string = |v: &str| Entry::string(Bytes::copy_from_slice(v.as_bytes())).encode();
        old.put(b"plain", &string("1")).unwrap();
        // A raw key that looks namespaced: must stay the key "kfoo".
        old.put(b"kfoo", &string("2")).unwrap();
        old.put(b"foo", &string("3")).unwrap();
        let mut ttl = Entry::string(Bytes::from_static(b"4"));
        ttl.expire_at_ms = Some(far);
        old.put_with_expiry(b"volatile", &ttl.encode(), far)
            .unwrap();
        old.put_with_expiry(b"gone", &string("5"), 1).unwrap();
    }
    // The second open finds the migrated store (and the key written after
    // the migration).
    for round in 0..2 {
        let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
        assert_eq!(
            (engine.len(), engine.volatile_len()),
            (4 + round, 1),
            "round {round}"
        );
        for (key, value) in [
            ("plain", "1"),
            ("kfoo", "2"),
            ("foo", "3"),
            ("volatile", "4"),
        ] {
            let got = engine.get(key.as_bytes()).unwrap().unwrap();
            assert_eq!(got.value, Value::String(Bytes::from(value)), "{key}");
        }
        assert_eq!(
            engine.get(b"volatile").unwrap().unwrap().expire_at_ms,
            Some(far)
        );
        assert_eq!(engine.get(b"gone").unwrap(), None);
        let (mut keys, mut cursor) = (Vec::new(), 0);
        loop {
            cursor = engine.scan(cursor, 2, &mut keys).unwrap();
            if cursor == 0 {
                break;
            }
        }
        keys.retain(|k| !k.starts_with(b"new"));
        assert_eq!(keys, ["foo", "kfoo", "plain", "volatile"]);
        engine
            .put(
                Bytes::from(format!("new{round}")),
                Entry::string(Bytes::new()),
            )
            .unwrap();
        drop(engine);
        // The old store's files are gone; the new store is in its directory.
        assert!(!dir.path().join("CURRENT").exists());
        assert!(dir.path().join(layout::STORE_DIR).join("CURRENT").exists());
    }
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    assert_eq!(engine.len(), 6);
    assert!(engine.get(b"new0").unwrap().is_some());
}

/// A migration interrupted before its rename leaves the old store, and the
/// next open redoes it from the start.
#[test]
fn an_interrupted_migration_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let old = lsm::Db::open(dir.path(), lsm::Options::default()).unwrap();
        old.put(b"a", &Entry::string(Bytes::from_static(b"1")).encode())
            .unwrap();
    }
    // What a crash mid-copy leaves: a half-built store beside the old one.
    {
        let tmp = lsm::Db::open(dir.path().join("v2.tmp"), lsm::Options::default()).unwrap();
        tmp.put(&keys::top(b"half"), &Entry::string(Bytes::new()).encode())
            .unwrap();
    }
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
    assert_eq!(engine.len(), 1);
    assert!(engine.get(b"a").unwrap().is_some());
    assert!(engine.get(b"half").unwrap().is_none());
}
