//! A Redis-compatible key-value server on a memory or LSM engine (chapter 6,
//! and the cache tier of chapter 1).
//!
//! # What the book asks
//! Chapter 6 designs a key-value store starting from one server: "put all
//! pairs in a hash table in memory" is fast but bounded by RAM, so "keep the
//! hot data in memory and the rest on disk". Chapter 1's cache tier adds
//! the operational rules of a cache: expired data must go, a full cache must
//! evict (LRU, LFU, FIFO), one cache server is a single point of failure,
//! and overprovisioning memory keeps the hit rate up. This crate is that
//! single server, speaking Redis's protocol so every Redis client works.
//!
//! # Design
//! ```text
//!  TCP ─▶ connection (parse RESP, pipeline) ─▶ command table ─▶ Keyspace ─▶ Engine
//!             │                                    │            (expiry,     ├─ memory (hash table + eviction)
//!             └── pub/sub inbox ◀── Hub ◀── PUBLISH ┘             WATCH)      └─ lsm (durable, on `lsm`)
//! ```
//!
//! # Layers
//! Modules depend one way, as in tokio's mini-redis: each uses only the
//! layers below it (the unit test in `layers.rs` reads the sources and fails
//! on an upward `crate::` path, so a cycle cannot come back unnoticed).
//! ```text
//!  sentinel      automatic failover (Redis Sentinel's protocol): watches a
//!    │           primary and its replicas, votes, promotes ([`sentinel`])
//!  node          cluster mode: internode TCP (authenticated frames), the node's
//!    │           thread running cluster::replica, its LSM store, RESP for GET/SET/DEL/KV.*
//!    │           ([`ClusterServer`]); uses only the leaves and `cluster`
//!  server        accept loop, maxclients, background tasks, shutdown ([`Server`])
//!    │
//!  connection    one socket: read, parse, run a pipelined batch, write, push messages
//!    │           (a `PSYNC` hands the socket to `replication::primary`)
//!  replication   primary side (snapshot + backlog stream to a replica) and
//!    │           replica side (follow `REPLICAOF`, load the RDB, apply the stream)
//!  command       the table, dispatch (Redis's checks in Redis's order), one module
//!    │           per group; a command = f(State, arguments, ConnState), no socket
//!  state         State (keyspace, hub, config, metrics, clients, start time, port),
//!    │           session::ConnState (one client's protocol, MULTI, WATCH, subscriptions),
//!    │           expiry (the active-expiry loop), blocking (how BLPOP & co. wait)
//!  pubsub, clients   the message hub with per-subscriber budgets; the client registry
//!    │
//!  metrics       Prometheus handles, refreshed from the keyspace
//!    │
//!  keyspace      lazy expiry, WATCH, blocked-key queues, stats, write batches;
//!    │           keyspace::collection: every data type's metadata rules
//!    │           (WRONGTYPE, versions, empty = deleted), subkey access
//!  engine        memory (slab + sampling eviction) | lsm (on the `lsm` crate)
//!    │
//!  cluster       the Dynamo cluster's pure decisions (placement, quorum,
//!    │           versions, CRDTs, gossip, hints, anti-entropy); no I/O
//!  leaves        protocol (RESP frames, parser), value, pattern, config, rdb
//!                (Redis's RDB format: DUMP payloads and snapshot files),
//!                long_double (INCRBYFLOAT's x87 arithmetic); and the
//!                workspace's `clock` crate (one `now_ms`)
//! ```
//! - [`protocol`]: RESP2/RESP3 frames and a resumable, limit-checking parser
//!   (inline commands too, so `nc` and `telnet` work);
//! - `command`: the command table and one module per command group, with
//!   Redis's reply shapes and error texts; it never opens a socket, so its
//!   unit tests run commands through a socket-less client
//!   (`command::local::LocalClient`, public with the `fuzzing` feature for
//!   the fuzz targets);
//! - `keyspace`: lazy expiry, WATCH bookkeeping and statistics on top of
//!   any engine; `state::expiry` runs the active half; `state::notify`
//!   publishes keyspace notifications (`notify-keyspace-events`);
//!
//! # Data types: a key plus subkeys
//! Strings are one engine entry. Every other type (hash, list, set, sorted
//! set, stream) is stored the way Kvrocks stores Redis types on RocksDB: the
//! key holds only metadata (type, *version*, length, a few type fields) and
//! each field, member, element or stream entry is its own *subkey*,
//! addressed by (key, version, subkey bytes):
//! ```text
//!  "board"              → Meta { kind: ZSet, version: 1733140000123456, len: 2 }
//!  ("board", v, m+"ann") → 3.5            member → score
//!  ("board", v, m+"bob") → 1
//!  ("board", v, s+⟨1⟩+"bob")  → ""        score index, in score order
//!  ("board", v, s+⟨3.5⟩+"ann") → ""
//! ```
//! So a write to a million-field hash writes two small entries (the field
//! and the metadata), and `DEL`/expiry of any collection removes one key:
//! its subkeys belong to a version no metadata names any more, and the lsm
//! engine's compaction filter drops them later. Subkeys come back in byte
//! order, so each type chooses subkey bytes whose order is the order it
//! needs (big-endian list indexes, an order-preserving score encoding,
//! stream ids). The memory engine keeps the subkeys in a B-tree next to the
//! key; the lsm engine in the same LSM tree under a separate namespace. One
//! implementation of every command serves both engines. The price: ranks
//! (`ZRANK`) walk subkeys instead of using Redis's skiplist spans, a list
//! keeps its indexes dense (so `LINDEX` is one seek) at the cost of shifting
//! elements on `LINSERT`/`LREM`, and a `RENAME` copies the subkeys.
//! - `engine::memory`: the cache tier (`maxmemory`, six eviction
//!   policies by sampling); `engine::lsm`: the durable store;
//! - `pubsub`, `clients`, `metrics`, `server` (accept loop,
//!   `maxclients`, idle timeout, graceful shutdown).
//!
//! Public surface: [`serve`] / [`Server`] (open, then serve), [`Config`] and
//! [`config`]'s enums, [`new_metrics`] / [`Metrics`], [`info`], and
//! [`protocol`] (used by the tests and the fuzz targets), [`cluster`]
//! (the cluster's pure core) and [`node`] / [`ClusterServer`] (cluster
//! mode).
//! Everything else is crate-private.
//!
//! # Replication (chapter 1's primary and replicas)
//! Redis's own protocol, so that real Redis servers and clients take part:
//! `REPLICAOF host port` makes this server follow a primary (full resync by
//! an RDB snapshot, then the command stream; partial resync from the
//! primary's bounded backlog after a dropped link); a primary keeps a
//! replication id, offset and backlog (`state::repl`), answers `WAIT`,
//! enforces `min-replicas-to-write`, and reports `INFO replication` and
//! `ROLE` in Redis's fields. Replicas are read-only by default. The RDB
//! format ([`rdb`]) is also `DUMP`/`RESTORE`'s. [`sentinel`] promotes a
//! replica when the primary is objectively down. Limits are listed in the
//! `replication` module docs.
//!
//! # Trade-offs and knobs
//! - **One lock, many threads.** The keyspace sits behind one mutex, held
//!   for one command (or one `EXEC`): Redis's atomicity, while parsing and
//!   socket I/O run on every core. Commands are short, so the lock is held
//!   for microseconds; a slow command (`KEYS *`) blocks others, as in Redis.
//! - **Approximate eviction** (`maxmemory-samples`, default 5): sampling with
//!   a 16-entry candidate pool instead of exact LRU lists; more samples cost
//!   CPU and approach exact LRU. Memory is *estimated* (payload plus a fixed
//!   per-key overhead), so leave headroom under the real RAM limit
//!   (the chapter's overprovisioning advice).
//! - **Durability** (`--engine lsm --fsync always|everysec|no`): `always`
//!   survives `kill -9` and power loss with every acknowledged write;
//!   `everysec` may lose about a second; `no` leaves it to the OS. Under
//!   `always` a batch is applied under the lock, and its fsync is awaited
//!   after the lock is released, off the async workers (one fsync thread),
//!   before its replies go out: concurrent clients share one group fsync.
//!   The trade-off: between the apply and the fsync another client can read
//!   the write (and act on it) although a crash could still take it back and
//!   its writer has not been told it succeeded. Redis with `appendfsync
//!   always` has the same window (it writes the AOF before replying, but
//!   other clients' reads in the same event-loop turn see the data). Reads
//!   that must not see undurable data would have to wait for the fsync in
//!   flight as well; we do not make every read pay that.
//! - **Limits**: `proto-max-bulk-len` (512 MB as in Redis on the memory
//!   engine; on the lsm engine it is the engine's 64 MiB value limit, and
//!   `CONFIG SET` refuses more), 1M arguments per command, 64 KiB inline
//!   lines, `client-query-buffer-limit`, `client-output-buffer-limit pubsub`
//!   (hard, soft and soft seconds, Redis's `32mb 8mb 60`), `maxclients`,
//!   `timeout`, `requirepass`; `SCAN` looks at most 10,000 keys per call
//!   whatever `COUNT` says. Every number a client sends is bounded before it
//!   sizes an allocation, and `CONFIG SET` refuses out-of-range values with
//!   Redis's errors instead of clamping them. Bind is 127.0.0.1 by default.
//! - A single server *is* the SPOF the cache-tier notes warn about. Cluster
//!   mode (`hyperscale kv serve --cluster-bind ...`, [`node`]) runs the
//!   Dynamo-style cluster ([`cluster`], tested by a deterministic
//!   simulation) over TCP: `N` replicas per key, `W`/`R` quorums, siblings
//!   for concurrent writes, gossip, hinted handoff, Merkle anti-entropy.
//!   It serves strings only (`GET`, `SET`, `DEL`, `EXISTS`, `KV.GET`,
//!   `KV.PUT`, `KV.DEL`); other commands are refused in cluster mode, and
//!   a cluster node keeps its dataset in memory as well as on disk.
#![warn(missing_docs)]

// Leaves.
pub mod config;
mod long_double;
mod pattern;
pub mod protocol;
pub mod rdb;
mod value;
// The Dynamo cluster's decisions: pure, above the leaves only.
pub mod cluster;
// Storage, then the rules every engine shares.
mod engine;
mod keyspace;
mod metrics;
// Shared state: what a command needs, and nothing of the network.
mod clients;
mod pubsub;
mod state;
// Commands, then the network.
mod command;
mod connection;
mod embedded;
mod replication;
mod server;
// Cluster mode: the cluster's decisions over TCP, on a disk, for RESP clients.
pub mod node;
// Automatic failover for primary–replica replication (Sentinel's protocol).
pub mod sentinel;

#[cfg(test)]
mod layers;

#[cfg(feature = "fuzzing")]
pub use command::local::LocalClient;
pub use command::new_metrics;
pub use config::Config;
pub use embedded::EmbeddedServer;
pub use metrics::Metrics;
pub use node::{ClusterConfig, ClusterServer};
pub use server::{Error, Server, serve};

/// How `hyperscale up` lists this system.
pub fn info(endpoint: &str) -> service::SystemInfo {
    service::SystemInfo {
        name: "kv".into(),
        title: "Key-value store (Redis protocol)".into(),
        chapter: "ch. 6 key-value store, ch. 1 cache tier".into(),
        protocol: "RESP".into(),
        endpoint: endpoint.into(),
        link: None,
    }
}
