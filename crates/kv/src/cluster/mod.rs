//! The Dynamo-style cluster (issue 12): the chapter's leaderless design,
//! as pure decisions kept apart from any I/O.
//!
//! # What the chapter asks
//!
//! The key-value chapter ends with a system in which every node is equal
//! (no leader, no single point of failure), any node coordinates a
//! client's request, and each technique answers one need:
//!
//! | need | technique | module |
//! |---|---|---|
//! | store a lot of data | consistent hashing, virtual nodes | [`placement`] (on `ring`) |
//! | availability of reads | `N` replicas, across datacenters | [`placement`] |
//! | tunable consistency | quorum `N`, `W`, `R` | [`quorum`] |
//! | availability of writes | versioning, vector clocks, siblings | [`vector_clock`], [`siblings`], [`hlc`] |
//! | concurrent counters, sets, hashes | CRDTs (Riak's data types) | [`crdt`] |
//! | failure detection | gossip, plus SWIM's indirect probe | [`membership`] |
//! | temporary failures | sloppy quorum, hinted handoff | [`placement`], [`hinted_handoff`] |
//! | permanent failures | anti-entropy with Merkle trees | [`anti_entropy`] (on `sketch::merkle`) |
//!
//! # How a request flows
//!
//! ```text
//!  client ─▶ any node ─▶ coordinator = first up replica of the key ([`placement::Placement::coordinator`])
//!   put:  local state ── write(value, client context, fresh dot) ──▶ new state (siblings)
//!         targets = preference list, down replicas replaced by substitutes with hints
//!         send the whole new state to every target; each joins it into its own
//!         WriteRound: W acks ─▶ OK   (a substitute keeps it in its hint queue)
//!   get:  ReadRound: R states ─▶ join ─▶ siblings + causal context to the client
//!         late answers still merged; replicas that were behind get the merge (read repair)
//!  background: gossip + probes (who is up) · hints delivered when their replica is up
//!              · Merkle-tree exchange with a random up peer (anti-entropy)
//! ```
//!
//! Every transfer between replicas carries a key's *whole* state and the
//! receiver joins it (a semilattice join), so replication, read repair,
//! handoff and anti-entropy can arrive in any order, twice, or late, and
//! replicas still converge without losing a write nobody saw (the argument
//! is in [`siblings`]).
//!
//! # Shape
//!
//! Each module is a pure function or state machine of (state, time,
//! incoming message) → (new state, outgoing messages): no sockets, no
//! clocks, no threads, randomness from a seeded `fastrand::Rng`. That is
//! what lets a deterministic simulation (`sim`, test-only) run
//! membership, placement, quorum rounds, hinted handoff and anti-entropy
//! together over hundreds of seeds with message loss, delay, partitions
//! and crashes, and check the chapter's promises: no acknowledged write is
//! lost after heal and anti-entropy, replicas converge (equal Merkle
//! roots) within a bounded time, concurrent writes become siblings, a
//! stopped node is marked down everywhere within the detector's timeout
//! and up after restart. `KV_SIM_SEEDS=10000 cargo test -p kv --lib
//! cluster::sim` runs more seeds than the default.
//!
//! In the crate's layers this module sits just above the leaves: it uses
//! nothing of the server, the engines or the connection layer, and the
//! server will use it.
//!
//! # What comes next
//!
//! - **Internode protocol**: framed, versioned, CRC-checked messages over
//!   TCP between `--cluster-bind` addresses, authenticated with a shared
//!   cluster secret (HMAC of each frame), with timeouts and bounded
//!   queues; messages from a wrong secret, version or skewed clock
//!   ([`hlc::ClockSkew`]) refused and logged.
//! - **Server wiring**: a node that owns an engine (states stored through
//!   the `value`/`engine` layers, hints and the dot counter durable), a
//!   cluster mode of `hyperscale kv serve` (`--node-id`, `--seeds`,
//!   `--datacenter`, `--vnodes`, `N/W/R`, strict or sloppy), `KV.GET` /
//!   `KV.PUT ... CONTEXT` / `KV.CONSISTENCY`, the CRDT types behind
//!   `INCR`/`SADD`/`HSET`, and `-ERR ... not supported in cluster mode`
//!   for the rest.
//! - **`hyperscale kv cluster status|join|leave`**: ring ownership, member
//!   states, hint backlog and anti-entropy progress, `--json`; joining and
//!   leaving stream the ranges that move.
//! - **`examples/kv-cluster`** with three ready configs, and `hyperscale up
//!   --kv-nodes 3`.
//! - **A kill -9 test with real processes**: three nodes on 127.0.0.1, W=2,
//!   one node killed during a write load and restarted; hints drain,
//!   replicas agree, every acknowledged key is readable with R=2; a
//!   linearizability check of strict-quorum histories without failures.
//! - **Benchmarks**: one coordinator of three nodes at W/R 1/1, 2/2, 3/3
//!   against a single node and a 3-master Redis Cluster; handoff drain
//!   rate; Merkle sync of a node that lost 1M keys against sending all.
//! - Garbage collection of tombstones (sibling deletes, LWW-map markers)
//!   once every replica has them.

pub mod anti_entropy;
pub mod codec;
pub mod crdt;
pub mod hinted_handoff;
pub mod hlc;
pub mod membership;
pub mod placement;
pub mod quorum;
pub mod siblings;
pub mod vector_clock;

#[cfg(test)]
mod sim;

use std::fmt;

/// A node of the cluster (`--node-id`). Its decimal text is what the ring
/// hashes, so ids must stay stable for as long as the data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
