//! A log-structured merge-tree (LSM) storage engine: the single-server storage of the
//! *System Design Interview* chapter "Design a key-value store" (키-값 저장소 설계, ch. 6).
//!
//! The chapter's node stores data along two paths, which this crate builds for real:
//!
//! **Write path** (commit log → memory cache → SSTable):
//! 1. Every write is appended to the *commit log* ([`wal`]) as one checksummed record
//!    per [`WriteBatch`]. With [`SyncPolicy::Always`] it is fsynced before the write is
//!    acknowledged; concurrent writers share one fsync (group commit, counted by
//!    `Stats::wal_syncs`). A caller that serialises writes under a lock of its own
//!    (the key-value server's keyspace lock) splits the two steps:
//!    [`Db::write_nosync`] appends and applies under its lock and returns the batch's
//!    sequence number, and [`Db::sync_to`] waits, after the lock is released, until the
//!    log is durable up to it, so many callers' commits ride one fsync. Such a write is
//!    visible to readers *before* it is durable (a crash may still take it back); the
//!    caller must not acknowledge it before `sync_to` returns `Ok`. [`Db::write`] keeps
//!    the stricter rule: readers see it only once durable.
//! 2. The write goes into the *memtable* ([`memtable`]), a sorted concurrent skip list.
//! 3. When the memtable reaches `memtable_size_bytes` it becomes immutable, a new one
//!    (and a new log segment) takes over, and a background thread writes it out as a
//!    sorted, immutable *SSTable* ([`sstable`]) at level 0. The manifest records the new
//!    table and the log segment is deleted. If flushes fall behind, writers are slowed,
//!    then stalled: memory stays bounded.
//!
//! **Read path** (memory → bloom filter → SSTable): a `get` looks in the memtable, then
//! the immutable memtables (each skipped when its whole-key filter says the key is
//! absent), then the SSTables newest first. Before touching a table on
//! disk it asks the table's bloom filter (`sketch::bloom`, ~1% false positives by default)
//! whether the key may be there; data blocks come through a bounded CLOCK block cache.
//! Data blocks store keys prefix-compressed with a restart point every 16 keys (table
//! format 2; format-1 tables of older stores are still read), so a seek binary-searches
//! a block's restart keys and walks at most 16 entries.
//! Range scans merge all sources in key order ([`DbIter`]), comparing entries in place in
//! the blocks (no copy per entry), and position table sources lazily: a seek whose key
//! exists reads only the newest table holding it. [`Db::scan_rev`] reads a range from the high end
//! down ([`DbIterRev`]), a block or a memtable chunk per source at a time, so the last
//! ten keys of a big range cost a few block reads. Snapshots ([`Snapshot`]) read at a
//! fixed sequence number so a scan sees one point in time.
//!
//! **Deletes and TTL**: a delete writes a tombstone; a put may carry an absolute expiry
//! (unix ms). Expired keys are invisible at once and dropped by compaction.
//!
//! **Compaction** ([`compaction`]): *leveled* (L0 → L1 → ... L6, size ratio 10) — chosen
//! over size-tiered because the key-value server is read-heavy and latency-sensitive:
//! a point read probes at most one table per level ≥ 1 and space amplification stays near
//! 1.1x; the cost is higher write amplification. It runs on a background thread with a
//! configurable I/O cap. As in fjall, the decisions are plain functions unit-tested apart
//! from the I/O: *which* tables merge (`compaction::choose`, over options, version and
//! round-robin pointers) and *which versions* survive (`compaction::keep`, per entry:
//! sequence number, kind, expiry, clock, oldest snapshot, bottom level or not).
//!
//! **Manifest** ([`manifest`]): the set of live tables changes only by atomic, fsynced
//! edits, so recovery restores exactly the last committed set; recovery then replays the
//! commit log, stopping cleanly at a torn or corrupt tail.
//!
//! # Knobs ([`Options`])
//! | knob | default | trade-off |
//! |---|---|---|
//! | `sync` | `Always` | durability vs. write latency (`EverySec`, `No`) |
//! | `memtable_size_bytes` | 32 MiB | memory and recovery time vs. fewer, larger flushes |
//! | `immutable_memtables_max` | 2 | burst absorption vs. memory bound |
//! | `block_size_bytes` | 4 KiB | read granularity vs. index size |
//! | `bloom_fp_rate` | 1% | memory (~9.6 bits/key) vs. wasted disk reads |
//! | `compression` | none | CPU vs. disk space (LZ4 per block) |
//! | `block_cache_size_bytes` | 64 MiB | memory vs. read I/O |
//! | `l0_compaction_trigger` / `l0_slowdown_trigger` / `l0_stop_trigger` | 4 / 12 / 20 | write bursts vs. read cost |
//! | `level1_size_bytes`, `level_size_multiplier` | 128 MiB, 10 | space vs. write amplification |
//! | `table_size_bytes` | 32 MiB | compaction granularity |
//! | `compaction_bytes_per_sec` | unlimited | background I/O vs. foreground latency |
//! | `key_size_bytes_max`, `value_size_bytes_max` | 64 KiB, 64 MiB | input limits |
//! | `compaction_filter` | none | lets the user drop entries it knows are dead ([`CompactionFilter`]) |
//!
//! # Using it
//! ```
//! # fn main() -> lsm::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = lsm::Db::open(dir.path(), lsm::Options::default())?;
//! db.put(b"user:1", b"alice")?;
//! db.put_with_ttl(b"session:9", b"token", std::time::Duration::from_secs(60))?;
//! assert_eq!(db.get(b"user:1")?, Some(b"alice".to_vec()));
//! let keys: Vec<_> = db.scan(..)?.map(|kv| kv.map(|kv| kv.key)).collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"session:9".to_vec(), b"user:1".to_vec()]);
//! # Ok(()) }
//! ```
//!
//! `Db` is `Send + Sync` (share it as `Arc<Db>`). A [`Snapshot`] keeps the store open
//! (and its directory locked) until it is dropped, even after the `Db` is dropped. Its methods do blocking disk I/O: from
//! async code call them inside `tokio::task::spawn_blocking`. Background flushes and
//! compactions run on the engine's own threads.
//!
//! # Faults
//! A corrupt block, table or manifest gives [`Error::Corruption`] naming the file, never
//! wrong data or a panic. Opening a directory without a store (and without
//! `create_if_missing`) or with another format version is an error.
//!
//! Checksums only prove the bytes are the ones written, so what lookups rely on is
//! re-checked on both sides of the disk (as TigerBeetle does): the table builder asserts
//! key order as it writes; a data block coming off the disk must hold strictly
//! increasing keys that end where the table's index says; a table's index must be
//! ordered and agree with the manifest's summary; the manifest's levels ≥ 1 must not
//! overlap. Each is an [`Error::Corruption`] naming the file (and the tables). A
//! compaction whose result would make a level overlap (a bug) is refused before it is
//! committed and reported like a failing compaction.
//!
//! A full disk (or a file-size limit, or no inodes left) fails the write with
//! [`Error::Io`] naming the file and saying what to do, and leaves the store readable
//! and consistent (`tests/it/full_disk.rs` proves it with real processes):
//! * a failed log append is truncated away: the write leaves no trace, later writes
//!   that fit go on;
//! * a failed flush or compaction removes its outputs and retries every second; writers
//!   that need it (memory is bounded) get [`Error::Background`] meanwhile, and writes
//!   resume by themselves once there is space again;
//! * a log segment that cannot be created is retried by the next write, which fails
//!   while it does (the memtable never grows past its size);
//! * a failed open removes what it wrote, and every open first deletes the files no
//!   committed manifest references (leftovers of interrupted work), freeing space.
//!
//! A failed **fsync** is different: the kernel may have dropped the dirty pages, so the
//! engine no longer knows what the log holds. Writes (and `flush`) then fail with
//! [`Error::WritesDisabled`] while reads go on. To recover, fix the disk, drop the `Db`
//! and [`Db::open`] the store again: recovery replays what the log really holds. A
//! write whose fsync failed has an unknown outcome; it may or may not be there. Every
//! caller waiting on that group fsync (and every later [`Db::sync_to`]) gets the error:
//! no write is reported durable unless an fsync that covered it succeeded.
#![warn(missing_docs)]

mod batch;
pub mod bench;
mod cache;
mod codec;
pub mod compaction;
mod db;
mod error;
mod iter;
mod iter_rev;
mod key_filter;
pub mod manifest;
pub mod memtable;
mod options;
pub mod sstable;
mod stats;
mod version;
pub mod wal;

pub use batch::WriteBatch;
pub use compaction::filter::{CompactionFilter, FilterRun, Looked, Lookup};
pub use db::{Db, Snapshot, Ttl};
pub use error::{Error, Result};
pub use iter::{DbIter, KeyValue, KeyValueRef};
pub use iter_rev::DbIterRev;
pub use manifest::FORMAT_VERSION;
pub use options::{Compression, Options, SyncPolicy};
pub use stats::{LevelStats, Stats};
