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
//! - [`protocol`]: RESP2/RESP3 frames and a resumable, limit-checking parser
//!   (inline commands too, so `nc` and `telnet` work);
//! - [`command`]: the command table and one module per command group, with
//!   Redis's reply shapes and error texts; it never sees an engine;
//! - [`keyspace`]: lazy expiry, WATCH bookkeeping and statistics on top of
//!   any [`engine::Engine`]; [`expiry`] runs the active half;
//! - [`engine::memory`]: the cache tier (`maxmemory`, six eviction
//!   policies by sampling); [`engine::lsm`]: the durable store;
//! - [`pubsub`], [`clients`], [`metrics`], [`server`] (accept loop,
//!   `maxclients`, idle timeout, graceful shutdown).
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
//!   survives `kill -9` with every acknowledged write; `everysec` may lose
//!   about a second; `no` leaves it to the OS.
//! - **Limits**: `proto-max-bulk-len`, 1M arguments per command, 64 KiB
//!   inline lines, `client-query-buffer-limit`, the pub/sub output budget,
//!   `maxclients`, `timeout`, `requirepass`. Bind is 127.0.0.1 by default.
//! - The server is a single node: it *is* the SPOF the cache-tier notes warn
//!   about; replication and the Dynamo-style cluster come in later issues.
#![warn(missing_docs)]

pub mod clients;
pub mod command;
pub mod config;
pub mod connection;
pub mod engine;
pub mod expiry;
pub mod keyspace;
pub mod metrics;
pub mod pattern;
pub mod protocol;
pub mod pubsub;
pub mod server;
pub mod value;

pub use config::Config;
pub use server::{Error, new_metrics, serve};

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
