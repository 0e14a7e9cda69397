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
//! | tunable consistency | quorum `N`, `W`, `R` (`KV.CONSISTENCY` per connection) | [`quorum`] |
//! | availability of writes | versioning, vector clocks, siblings | [`vector_clock`], [`siblings`], [`hlc`] |
//! | concurrent counters, sets, hashes | CRDTs (Riak's data types) | [`crdt`] |
//! | failure detection | gossip, plus SWIM's indirect probe | [`membership`] |
//! | temporary failures | sloppy quorum, hinted handoff | [`placement`], [`hinted_handoff`] |
//! | permanent failures | anti-entropy with Merkle trees | [`anti_entropy`] (on `sketch::merkle`) |
//! | adding and removing nodes | versioned ring, joint quorums, range streaming | [`topology`] |
//! | deletes that end | tombstones purged after a grace, once every replica has them | `replica::tombstones` |
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
//! and up after restart; and, under a strict quorum with `W + R > N` and
//! no failures, every key's history is linearizable (a Wing & Gong
//! checker over the siblings as a multi-value register). `KV_SIM_SEEDS=10000 cargo test -p kv --lib
//! cluster::sim` runs more seeds than the default.
//!
//! In the crate's layers this module sits just above the leaves: it uses
//! nothing of the server, the engines or the connection layer; cluster
//! mode (`crate::node`) uses it.
//!
//! # Where it runs
//!
//! [`replica::Node`] composes the modules into one node's state machine;
//! the simulation runs it, and so does the server's cluster mode
//! (`crate::node`: the internode protocol over TCP with [`wire`]'s
//! messages, a thread per node, an LSM store, RESP clients). The
//! simulation therefore tests the code that serves clients.
//!
//! # Known anomaly: `DEL` of a counter concurrent with increments
//!
//! A `DEL` is a tombstone that replaces the versions its coordinator has
//! seen. An `INCR` coordinated on another node that the deleter had not
//! seen is a concurrent sibling, and it carries that node's *whole*
//! PN-counter state ([`crdt::counter`]), so after the join the counter
//! reads as that node's total: the delete removed only what it observed
//! (observed-remove semantics; Riak's counters behave the same way).
//! What to do: to reset a counter, read it and `DECRBY` the value read
//! (increments concurrent with the reset then survive as themselves, and
//! only they), or start a new key; `DEL` a counter only once its writers
//! have stopped. Sets (add-wins) and hashes (per-field last writer) have
//! the same rule for a whole-key `DEL`: what the deleter did not see
//! comes back.
//!
//! # What comes next
//!
//! - Garbage collection of the markers inside CRDT values (OR-set
//!   tombstones, LWW-map deletes); whole-key tombstones are collected.
//! - More than one membership change at a time.

pub mod anti_entropy;
pub mod codec;
pub mod crdt;
pub mod hinted_handoff;
pub mod hlc;
pub mod membership;
pub mod placement;
pub mod quorum;
pub mod replica;
pub mod siblings;
pub mod topology;
pub mod vector_clock;
pub mod wire;

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
