//! S3-like object storage, the chapter "Design S3-like object storage" (S3와 유사한
//! 객체 저장소, *System Design Interview* vol. 2): the **data store of a data node**,
//! the part of the design the chapter works out by hand and that this crate therefore
//! hand-writes, and the **S3 API node** in front of it ([`s3`]: metadata service,
//! IAM, and the S3 protocol through the `s3s` crate), served by `hyperscale s3 serve`.
//!
//! The chapter's notes open with the three kinds of storage: *block* storage (raw
//! volumes a server formats or a database drives directly), *file* storage (a
//! hierarchy of directories on top of blocks), and *object* storage: objects in a flat
//! namespace, immutable once written, reached by a REST API with one URI per object,
//! traded for durability, scale and low cost. The chapter then splits an object store
//! into an API service, IAM, a metadata service (buckets and object names → object
//! ids) and a data store (object id → bytes). The data store is a routing service, a
//! placement service, and **data nodes**; this crate is a data node's storage.
//!
//! # Why objects are packed into big files
//!
//! The naive data node stores each object as a file. With many small objects (the
//! common case: thumbnails, documents, a crawler's pages) that fails twice: each file
//! wastes the unused part of its last disk block (a 1 KiB object in a 4 KiB block
//! wastes 3 KiB), and each file costs an inode, whose count is fixed when the file
//! system is formatted, and a directory entry; file systems slow down with millions of
//! tiny files, and reading one costs an open. So, as the chapter designs it, a data
//! node appends objects to one large **read-write file**, like a write-ahead log, until
//! it reaches a size cap (`file_size_bytes_max`, 1 GiB by default); the file is then
//! **sealed** (read-only) and a new one started. A million 4 KiB objects take four
//! 1 GiB files here, against a million files and inodes (`tests/it/gc.rs` checks the
//! count at a small scale; the benchmark reports objects per data file).
//!
//! ```text
//!   put(bytes) ─┐         ┌───────────────── data node directory ─────────────────┐
//!   put(bytes) ─┼─append─▶│ data/0000000000000003.dat  read-write  [H][r][r][r]…◀─┼─ appends
//!   delete(id) ─┘    │    │ data/0000000000000002.dat  sealed      [H][r]…[r][F]  │
//!                    │    │ data/0000000000000001.dat  sealed      [H][r]…[r][F]  │
//!                 queue   │ mapping/ (lsm::Db)  id → (file, offset, size, crc)    │
//!                    │    └───────────────────────────────────────────────────────┘
//!                    ▼                    ▲ 1. data stage: fsync data file(s), seal
//!           group commit ─────────────────┘ 2. mapping stage: one fsynced lsm batch
//!                    │                      3. wake every writer of the round
//!                    ▼
//!        put returns the id / delete returns ──▶ get(id, range): mapping → file,
//!                                                offset → pread → check crc → bytes
//! ```
//!
//! # Record format ([`datafile::format`])
//!
//! Each object is one record: a 36-byte header (magic, flags, object id, length, and a
//! CRC-32C of the header itself), the object bytes, and a CRC-32C over header and
//! bytes *after* the object. Every read checks the whole record against that checksum
//! and against the mapping's copy of it; a record that fails is [`Error::Corrupt`],
//! never served (the layer above reads another copy). A file starts with a 16-byte
//! header (magic, file number); sealing appends a footer with a CRC-32C of the whole
//! file, so a sealed file can be verified end to end ([`datafile::verify_sealed`]).
//!
//! # The object-mapping table ([`mapping`])
//!
//! With many objects in a file, the only way back to one is a table: object id →
//! (file, offset, size, checksum). The chapter keeps it in a database on the data
//! node; here it is the workspace's own LSM store (`lsm::Db`), fsynced before any write
//! is acknowledged. Object ids are UUIDv7-shaped ([`ObjectId`]): unique without
//! coordination, and time-ordered so new entries land together in the LSM.
//!
//! # Durability and crash recovery ([`node`])
//!
//! Writers append and wait; the node's **group commit** takes every op queued since
//! its last round, fsyncs the data files, seals the full ones, writes all the round's
//! mapping changes as one fsynced `lsm` batch, and only then wakes the round's writers
//! (as `lsm` does for its commit log: one fsync pair for many writers, and no fsync of
//! a put ever on a caller's thread). It runs on two threads of its own, a data stage
//! and a mapping stage, pipelined: round *n + 1*'s data fsync overlaps round *n*'s
//! mapping fsync. A mapping entry is therefore durable only after
//! its record, and readers find objects only through the mapping: after `kill -9` an
//! object is visible iff its record is complete and its mapping entry committed. On
//! open, the mapping is the truth: the read-write file is cut after its last mapped
//! record (a torn or unacknowledged tail goes), an interrupted seal is finished, and
//! files without a live object are removed.
//!
//! # Garbage collection by compaction ([`gc`])
//!
//! Deletes and overwrites only change the mapping: the old record stays where it is, as
//! garbage. A pure planner ([`gc::plan::choose`]) picks sealed files whose live ratio is
//! under `gc_live_ratio_max`; the runner copies their live records into the current
//! read-write file (so survivors pack together instead of forming new small files),
//! swaps each mapping with a compare-and-swap *move* through the group commit, and
//! deletes the emptied file, paced to `gc_bytes_per_sec` and safe to interrupt at any
//! step.
//!
//! # Knobs and limits ([`Options`])
//!
//! | knob | default | trade-off |
//! |---|---|---|
//! | `file_size_bytes_max` | 1 GiB | fewer files and inodes vs. cost of compacting one file |
//! | `object_size_bytes_max` | 64 MiB | a read checks the whole record, so this bounds a read's memory; bigger S3 objects are stored as several parts |
//! | `open_files_max` | 256 | descriptors held vs. opens on reads of cold files |
//! | `capacity_bytes_max` | unlimited | disk budget: a put past it is [`Error::Full`] |
//! | `gc_live_ratio_max` | 0.5 | space amplification (up to 2x) vs. bytes copied |
//! | `gc_files_per_run_max`, `gc_copy_bytes_per_run_max` | 16, 4 GiB | work per run |
//! | `gc_bytes_per_sec` | 64 MiB/s | background I/O vs. foreground latency |
//! | `gc_interval_ms` | 60 s (0: off) | how soon garbage comes back |
//! | `mapping_memtable_bytes` | 8 MiB | the mapping store's memory |
//!
//! # Using it
//!
//! ```
//! # fn main() -> objstore::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let node = objstore::Node::open(dir.path(), objstore::Options::default())?;
//! let id = node.put(b"hello, object")?; // durable when it returns
//! assert_eq!(node.get(id, ..)?.as_deref(), Some(&b"hello, object"[..]));
//! assert_eq!(node.get(id, 7..13)?.as_deref(), Some(&b"object"[..]));
//! assert!(node.delete(id)?);
//! assert_eq!(node.get(id, ..)?, None);
//! # Ok(()) }
//! ```
//!
//! [`Node`] is `Send + Sync`; its methods block (disk I/O, the group commit), so async
//! callers use `tokio::task::spawn_blocking`. A benchmark of durable 4 KiB puts lives
//! in [`mod@bench`] (`cargo run --release -p objstore --example put_bench`).
//!
//! # The S3 API node ([`s3`])
//!
//! The chapter's API service, IAM and metadata service, in one process with an embedded
//! data node (`hyperscale s3 serve`, port 9000): [`s3s`](https://crates.io/crates/s3s)
//! 0.14 (the newest release that builds with Rust 1.95) parses S3 requests, verifies
//! SigV4 (headers, presigned URLs, chunked `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
//! bodies) and writes S3's XML; [`s3::meta`] keeps the bucket table and the object,
//! upload and part tables, sharded by a hash of (bucket, key) over `shards` `lsm`
//! stores, with listings merged across shards ([`s3::meta::list`]); [`s3::blob`]
//! stores an object's bytes as 8 MiB chunks in the data node; [`s3::iam`] keeps the
//! access keys. Buckets (create, delete, list, head, location), objects (PUT, GET with
//! Range and preconditions, HEAD, DELETE, DeleteObjects, CopyObject), ListObjectsV2 and
//! V1, multipart upload (S3's `-N` ETag), content headers and user metadata, and
//! versioning (enable/suspend, version ids, delete markers, GET/HEAD/DELETE by version,
//! ListObjectVersions; [`s3::meta::versions`]) work with aws-cli and boto3 (`crates/hyperscale/tests/it/s3_clients.rs`). A PUT is
//! acknowledged after its chunks and then its row are fsynced; overwritten objects'
//! chunks become garbage for compaction. S3's limits are exact ([`s3::limits`]: keys
//! ≤ 1024 bytes, parts 1..=10000 and ≥ 5 MiB but the last, max-keys ≤ 1000, metadata
//! ≤ 2 KB, objects ≤ `object_size_bytes_max`, 5 GiB by default).
//!
//! | knob ([`s3::Config`]) | default | trade-off |
//! |---|---|---|
//! | `shards` | 8 | write spread over commit logs vs. shards a listing merges (fixed at creation) |
//! | `object_size_bytes_max` | 5 GiB | largest PUT or part |
//! | `chunk_bytes` ([`s3::S3Options`]) | 8 MiB | memory per upload and read vs. records per object |
//!
//! # The data store as a cluster ([`cluster`])
//!
//! `hyperscale s3 datanode` runs a [`Node`] as a process of its own behind a small
//! authenticated binary protocol ([`cluster::wire`]: a shared cluster secret, frames
//! bounded by [`cluster::wire::FRAME_BYTES_MAX`], read and write timeouts on every
//! socket); `hyperscale s3 serve --datanodes host:port@zone,...` then stores chunks on
//! them. The API node's placement service ([`cluster::placement`]) keeps the virtual
//! cluster map (members, failure domains, up / suspect / down from heartbeats every
//! 500 ms) and places a chunk as a pure function of its id and the members: rendezvous
//! hashing, interleaved across zones. Durability ([`cluster::layout`]): 3-way
//! replication acknowledged once 2 copies are fsynced, or 4+2 erasure coding
//! (`reed-solomon-simd`) acknowledged once 5 of 6 shards are. Every stored copy or
//! shard carries a 16-byte layout header. Reads try the nearest healthy copy (up
//! before suspect, down skipped) or gather the shards and decode; a copy or shard that
//! is missing or fails its checksum is rewritten from the good bytes (repair on read).
//! A repair pass over every chunk the metadata names ([`s3::repair`]) runs when a node
//! comes back or has been down for `repair_after_ms` (30 s): a dead node's copies or
//! shards are rebuilt on **spares** (the next nodes of the chunk's placement order;
//! writes use them too while a place is down), and dropped from the spares once the
//! places hold them again ([`cluster::Cluster::repair_chunk`]). Tests: `tests/it/cluster.rs`
//! (every pair of 6 lost nodes, bit flips, quorum, rebuild on spares) and `crates/hyperscale/tests/it/s3_datanodes.rs`
//! (`kill -9` of a data node process during boto3 PUTs).
//!
//! | knob | default | trade-off |
//! |---|---|---|
//! | `durability` ([`s3::Config`]) | `replicate3` | 3x bytes and one-node reads vs. 1.5x bytes and reads from 4 nodes (`ec4+2`) |
//! | heartbeat `interval_ms` / `suspect_after_ms` / `down_after_ms` | 500 / 1,500 / 5,000 | failure detection speed vs. false alarms |
//! | `datanode_timeout_ms` | 10 s | a stalled node's cost to a request vs. slow disks counted as failures |
//! | `repair_after_ms` | 30 s | time at reduced redundancy vs. copying a node's data for a restart |
//!
//! # What comes next
//!
//! The rest of the chapter, in the order it builds on this crate:
//! * Policy conditions (`Condition`, `NotAction`, ...) and ACLs; CRC/SHA checksums
//!   beyond Content-MD5; chunks leaked by a crash between
//!   an overwrite's row and its old chunks' delete are not yet swept (a scan of the
//!   data node's ids against the rows would find them).
//! * Durability per bucket (today one setting per API node; the layout header already
//!   lets a read tell the schemes apart).
//! * `hyperscale s3 status` through the API node (degraded chunks, repair progress);
//!   today it heartbeats the data nodes itself, and repair passes print a line.
//! * A lost disk behind a live node is found by reads and repair passes only (no
//!   background scrubber runs [`datafile::verify_sealed`] yet).
//! * Deletes while a copy's node is down leave that copy as garbage on it; a repair
//!   racing a delete can rewrite a copy nothing names (garbage, never visible).
//! * A ranged GET fetches whole chunks (at most 8 MiB) from a data node and cuts the
//!   range in the API node; the data node checks a whole record per read anyway.
//! * Heartbeats are pulled by the API node; with several API nodes a placement service
//!   of its own would collect pushed heartbeats.
#![warn(missing_docs)]

pub mod bench;
pub mod cluster;
pub mod datafile;
mod error;
pub mod gc;
mod id;
pub mod mapping;
pub mod node;
mod options;
pub mod s3;

pub use error::{Error, Result};
pub use gc::GcReport;
pub use id::{ObjectId, ParseIdError};
pub use node::{Node, ObjectInfo, Stats};
pub use options::Options;
