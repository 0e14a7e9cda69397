//! Basic behaviour of the public API: put/get/delete/TTL/scan/snapshot/flush/compact/reopen.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lsm::{Db, Error, Options, SyncPolicy, Ttl, WriteBatch};

fn small_opts() -> Options {
    Options {
        memtable_size_bytes: 4096,
        block_size_bytes: 256,
        table_size_bytes: 4096,
        level1_size_bytes: 16 << 10,
        level_size_multiplier: 4,
        l0_compaction_trigger: 2,
        sync: SyncPolicy::No,
        ..Options::default()
    }
}

fn keys(db: &Db) -> Vec<Vec<u8>> {
    db.scan(..).unwrap().map(|kv| kv.unwrap().key).collect()
}

#[test]
fn put_get_delete_scan_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        for i in 0..2000u32 {
            db.put(
                format!("key{i:05}").as_bytes(),
                format!("value{i}").as_bytes(),
            )
            .unwrap();
        }
        for i in (0..2000u32).step_by(3) {
            db.delete(format!("key{i:05}").as_bytes()).unwrap();
        }
        assert_eq!(db.get(b"key00001").unwrap(), Some(b"value1".to_vec()));
        assert_eq!(db.get(b"key00003").unwrap(), None);
        assert_eq!(keys(&db).len(), 2000 - 667);
        db.flush().unwrap();
        db.compact().unwrap();
        assert_eq!(keys(&db).len(), 2000 - 667);
        let stats = db.stats();
        assert!(stats.flushes > 0 && stats.compactions > 0, "{stats:?}");
    }
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(db.get(b"key01999").unwrap(), Some(b"value1999".to_vec()));
    assert_eq!(db.get(b"key01998").unwrap(), None);
    assert_eq!(keys(&db).len(), 2000 - 667);
    let range: Vec<_> = db
        .scan(&b"key00010"[..]..&b"key00015"[..])
        .unwrap()
        .map(|kv| kv.unwrap().key)
        .collect();
    assert_eq!(
        range,
        vec![
            b"key00010".to_vec(),
            b"key00011".to_vec(),
            b"key00013".to_vec(),
            b"key00014".to_vec()
        ]
    );
}

#[test]
fn ttl_expired_keys_are_invisible_and_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    db.put(b"old", b"v0").unwrap();
    db.put_with_expiry(b"old", b"v1", 1).unwrap(); // expired long ago: shadows v0
    db.put_with_ttl(b"live", b"v", Duration::from_secs(3600))
        .unwrap();
    assert_eq!(db.get(b"old").unwrap(), None);
    assert!(matches!(db.ttl(b"live").unwrap(), Ttl::Expires(d) if d > Duration::from_secs(3500)));
    assert_eq!(db.ttl(b"old").unwrap(), Ttl::Missing);
    db.put(b"p", b"x").unwrap();
    assert_eq!(db.ttl(b"p").unwrap(), Ttl::Persistent);
    db.compact().unwrap();
    assert_eq!(db.get(b"old").unwrap(), None);
    assert_eq!(keys(&db), vec![b"live".to_vec(), b"p".to_vec()]);
}

#[test]
fn snapshot_sees_one_point_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    db.put(b"a", b"1").unwrap();
    let snap = db.snapshot();
    db.put(b"a", b"2").unwrap();
    db.put(b"b", b"2").unwrap();
    db.compact().unwrap();
    assert_eq!(snap.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(snap.get(b"b").unwrap(), None);
    assert_eq!(snap.scan(..).unwrap().count(), 1);
    assert_eq!(db.get(b"a").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn batches_are_atomic_and_limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            key_size_bytes_max: 8,
            ..small_opts()
        },
    )
    .unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"x", b"1").put(b"y", b"2").delete(b"x");
    db.write(&batch).unwrap();
    assert_eq!(keys(&db), vec![b"y".to_vec()]);
    assert!(matches!(
        db.put(b"much-too-long", b""),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn opening_without_a_store_or_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing");
    let err = Db::open(
        &path,
        Options {
            create_if_missing: false,
            ..Options::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let _db = Db::open(dir.path(), Options::default()).unwrap();
    let err = Db::open(dir.path(), Options::default()).err().unwrap();
    assert!(matches!(err, Error::Locked(_)), "{err}");
}
