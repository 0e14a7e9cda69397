//! Torn-tail and bit-flip tests on the commit log and on SSTables: damage is either
//! recovered from cleanly (a log tail) or reported as an error naming the file — never
//! wrong data, never a panic.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use lsm::{Db, Error, Options, SyncPolicy};

const KEYS: u32 = 300;

fn opts() -> Options {
    Options {
        block_size_bytes: 256,
        memtable_size_bytes: 128 << 10,
        sync: SyncPolicy::Always,
        ..Options::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat(i as usize % 50)).into_bytes()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Length of a log segment's written prefix (the rest is preallocated zeros).
fn data_len(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |p| p as u64 + 1)
}

/// A store whose data is only in the commit log (one write per key, no flush).
fn store_in_log() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..KEYS {
        db.put(&key(i), &value(i)).unwrap();
    }
    drop(db);
    dir
}

/// Copies a store directory (without the lock file) to a fresh temp dir.
fn copy(src: &Path) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.path().join(p.file_name().unwrap())).unwrap();
    }
    dst
}

/// After recovery the store holds exactly keys `0..n` for some n: a prefix of the
/// acknowledged writes, each with its exact value.
fn recovered_prefix(dir: &Path) -> u32 {
    let db = Db::open(dir, opts()).unwrap();
    let n = (0..KEYS)
        .take_while(|i| db.get(&key(*i)).unwrap().is_some())
        .count() as u32;
    for i in 0..KEYS {
        let want = (i < n).then(|| value(i));
        assert_eq!(db.get(&key(i)).unwrap(), want, "key {i} (prefix {n})");
    }
    n
}

#[test]
fn wal_torn_tail_recovers_a_prefix() {
    let pristine = store_in_log();
    let log = files(pristine.path(), "log").pop().unwrap();
    // Segments are preallocated: only the written prefix holds records.
    let len = data_len(&std::fs::read(&log).unwrap());
    let mut last = KEYS;
    // Cut the log at many points, from the end backwards: the prefix only shrinks.
    for cut in (0..len).rev().step_by(331) {
        let dir = copy(pristine.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(log.file_name().unwrap()))
            .unwrap();
        f.set_len(cut).unwrap();
        let n = recovered_prefix(dir.path());
        assert!(n <= last && n < KEYS, "cut at {cut}: recovered {n} keys");
        last = n;
    }
}

#[test]
fn wal_bit_flip_stops_recovery_at_the_damaged_record() {
    let pristine = store_in_log();
    let log = files(pristine.path(), "log").pop().unwrap();
    let bytes = std::fs::read(&log).unwrap();
    for pos in (0..data_len(&bytes) as usize).step_by(401) {
        let dir = copy(pristine.path());
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x04;
        std::fs::write(dir.path().join(log.file_name().unwrap()), &damaged).unwrap();
        let n = recovered_prefix(dir.path());
        assert!(n < KEYS, "flip at {pos} went unnoticed");
    }
}

/// A store whose data is in one SSTable.
fn store_in_table() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..KEYS {
        db.put(&key(i), &value(i)).unwrap();
    }
    db.flush().unwrap();
    drop(db);
    let table = files(dir.path(), "sst").pop().unwrap();
    (dir, table)
}

fn names_table(err: &Error, table: &Path) -> bool {
    matches!(err, Error::Corruption { path, .. } if path.file_name() == table.file_name())
}

#[test]
fn sstable_bit_flips_are_errors_naming_the_file_never_wrong_data() {
    let (pristine, table) = store_in_table();
    let bytes = std::fs::read(&table).unwrap();
    let (mut at_open, mut at_read) = (0, 0);
    for pos in (0..bytes.len()).step_by(149) {
        let dir = copy(pristine.path());
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x20;
        std::fs::write(dir.path().join(table.file_name().unwrap()), &damaged).unwrap();
        let db = match Db::open(dir.path(), opts()) {
            Ok(db) => db,
            Err(e) => {
                assert!(names_table(&e, &table), "flip at {pos}: {e}");
                at_open += 1;
                continue;
            }
        };
        let mut errors = 0;
        for i in 0..KEYS {
            match db.get(&key(i)) {
                Ok(v) => assert_eq!(v, Some(value(i)), "flip at {pos}: wrong data for key {i}"),
                Err(e) => {
                    assert!(names_table(&e, &table), "flip at {pos}: {e}");
                    errors += 1;
                }
            }
        }
        let scan: Result<Vec<_>, _> = db.scan(..).unwrap().collect();
        assert!(errors > 0 && scan.is_err(), "flip at {pos} went unnoticed");
        at_read += 1;
    }
    assert!(
        at_open > 0 && at_read > 0,
        "{at_open} detected at open, {at_read} at read"
    );
}

#[test]
fn truncated_sstable_is_an_error_naming_the_file() {
    let (pristine, table) = store_in_table();
    let len = std::fs::metadata(&table).unwrap().len();
    for cut in [0, 10, len / 2, len - 1] {
        let dir = copy(pristine.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(table.file_name().unwrap()))
            .unwrap();
        f.set_len(cut).unwrap();
        let err = Db::open(dir.path(), opts())
            .err()
            .expect("a truncated table must not open");
        assert!(names_table(&err, &table), "cut at {cut}: {err}");
    }
}

#[test]
fn other_format_version_and_garbage_manifest_are_clear_errors() {
    let (pristine, _) = store_in_table();
    let dir = copy(pristine.path());
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let manifest = dir.path().join(current.trim());
    let mut bytes = std::fs::read(&manifest).unwrap();
    // First record: u32 len | u32 crc | tag 1 | u32 version. Rewrite the version and
    // the checksum, as a future release would.
    bytes[9..13].copy_from_slice(&99u32.to_le_bytes());
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c(&bytes[8..8 + len]);
    bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&manifest, &bytes).unwrap();
    let err = Db::open(dir.path(), opts()).err().unwrap();
    assert!(
        matches!(err, Error::FormatVersion { found: 99, .. }),
        "{err}"
    );

    let dir = copy(pristine.path());
    std::fs::write(dir.path().join("CURRENT"), "../../etc/passwd\n").unwrap();
    let err = Db::open(dir.path(), opts()).err().unwrap();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}
