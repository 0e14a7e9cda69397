//! The vocabulary of one replica node: what goes in (client operations,
//! messages between nodes), what comes out (messages, answers, writes to
//! make durable), and what survives a crash (the [`Disk`]).
//!
//! Kept apart from the state machine in [`super::Node`] so the wire
//! format (`node::wire` in the server) and the simulation can name the
//! same types without reading the logic.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::cluster::NodeId;
use crate::cluster::anti_entropy;
use crate::cluster::crdt::update::{Refused, Update};
use crate::cluster::hinted_handoff::{Hints, Limits};
use crate::cluster::membership;
use crate::cluster::placement::{Placement, QuorumMode};
use crate::cluster::quorum::{Consistency, Quorum};
use crate::cluster::siblings::Siblings;
use crate::cluster::topology::Topology;
use crate::cluster::vector_clock::{Actor, Dot, PrunePolicy, VectorClock};

/// Timing of the background work and the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a quorum round waits for replicas.
    pub request_timeout_ms: u64,
    /// How often hints are offered to their owners.
    pub handoff_interval_ms: u64,
    /// Hints per owner per offer.
    pub handoff_batch: usize,
    /// How often an anti-entropy exchange starts (with one random peer).
    pub ae_interval_ms: u64,
    /// Key states per anti-entropy entries message (the rate limit).
    pub ae_entries_max: usize,
    /// Depth of the Merkle trees (`2^depth` buckets).
    pub tree_depth: u8,
    /// How old a deleted key's tombstone must be before it may be purged
    /// (and then only once every replica holds it: `replica::tombstones`).
    pub tombstone_gc_grace_ms: u64,
}

/// Cassandra's default `gc_grace_seconds`: 10 days.
pub const TOMBSTONE_GC_GRACE_MS_DEFAULT: u64 = 10 * 24 * 3600 * 1000;

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            request_timeout_ms: 1_000,
            // Up to ~2,000 hinted keys a second per owner (one message
            // each; a batch re-sent before its acks arrive is harmless).
            handoff_interval_ms: 250,
            handoff_batch: 512,
            ae_interval_ms: 1_000,
            ae_entries_max: 1024,
            tree_depth: 10,
            tombstone_gc_grace_ms: TOMBSTONE_GC_GRACE_MS_DEFAULT,
        }
    }
}

/// A client operation, as the entry node receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Write `value` (`None`: delete) to `key`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value, or `None` for a delete (a tombstone sibling).
        value: Option<Bytes>,
        /// The causal context the client read (`KV.PUT ... CONTEXT`);
        /// `None` (a plain `SET`/`DEL`) replaces every version the
        /// coordinator holds, so concurrent writes through different
        /// coordinators still become siblings.
        context: Option<VectorClock>,
    },
    /// Read `key` from `R` replicas.
    Get {
        /// The key.
        key: Bytes,
    },
    /// A CRDT step (`INCRBY`, `SADD`, `HSET`, ...) applied at the
    /// coordinator to the join of the key's siblings, then written as a
    /// put that replaces them.
    Update {
        /// The key.
        key: Bytes,
        /// The step.
        update: Update,
    },
}

impl Op {
    /// The key the operation is about.
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Put { key, .. } | Op::Get { key } | Op::Update { key, .. } => key,
        }
    }
}

/// What a client is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The put was acknowledged by `W` replicas; its dot.
    Written(Dot),
    /// The merged state `R` replicas returned.
    Read(Siblings),
    /// Failed, timed out, or no replica reachable (outcome unknown).
    Failed,
    /// Refused: the write would leave the key more siblings than
    /// [`super::SIBLINGS_PER_KEY_MAX`] (nothing was written).
    TooManySiblings(usize),
    /// A CRDT update was acknowledged by `W` replicas: Redis's integer
    /// reply (the counter's new value, members or fields changed).
    Updated(i64),
    /// A CRDT update was refused (nothing was written).
    Refused(Refused),
}

/// A message between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Failure detection.
    Member(membership::Message),
    /// A client operation for the key's coordinator, from the entry node.
    Forward {
        /// The entry node's request number, echoed in the reply.
        client: u64,
        /// The operation.
        op: Op,
        /// The client's `KV.CONSISTENCY` override.
        consistency: Consistency,
    },
    /// The coordinator's answer to a forwarded operation.
    ForwardReply {
        /// The entry node's request number.
        client: u64,
        /// The answer.
        answer: Answer,
    },
    /// Store this state of `key` (as a replica, or as a hint for `hint_for`).
    Replicate {
        /// The coordinator's round number.
        req: u64,
        /// The key.
        key: Bytes,
        /// The key's whole state (joined by the receiver).
        state: Siblings,
        /// The down replica the receiver stands in for.
        hint_for: Option<NodeId>,
    },
    /// A replica's answer to [`Msg::Replicate`].
    ReplicateAck {
        /// The round number.
        req: u64,
        /// Stored (false: refused, e.g. a full hint queue).
        ok: bool,
    },
    /// Send your state of `key`.
    Read {
        /// The coordinator's round number.
        req: u64,
        /// The key.
        key: Bytes,
    },
    /// A replica's state of a key.
    ReadReply {
        /// The round number.
        req: u64,
        /// The state (empty if absent).
        state: Siblings,
    },
    /// Read repair: join this state.
    Repair {
        /// The key.
        key: Bytes,
        /// The merged state.
        state: Siblings,
    },
    /// A hint delivered to its owner.
    Handoff {
        /// The key.
        key: Bytes,
        /// The hinted state.
        state: Siblings,
        /// The hint's sequence number, echoed in the ack.
        seq: u64,
    },
    /// The owner stored a handed-off hint.
    HandoffAck {
        /// The key.
        key: Bytes,
        /// The hint's sequence number.
        seq: u64,
    },
    /// A Merkle-tree comparison step.
    Ae(anti_entropy::Message),
    /// Key states of buckets found to differ.
    AeEntries {
        /// (key, state) pairs, at most `ae_entries_max`.
        entries: Vec<(Bytes, Siblings)>,
        /// The buckets they cover whole (a chunk of a repair round; in an
        /// answer, the prefix of the chunk the answer covers).
        buckets: Vec<u32>,
        /// Whether the receiver should answer with its own entries (a
        /// chunk); `false`: an answer, which moves the round's cursor.
        reply: bool,
    },
    /// What the sender knows of the ring and the change in flight.
    Topology(Topology),
    /// The receiver's last Merkle comparison found the trees shared with
    /// the sender equal; the sender's root (tombstone GC's evidence).
    AeInSync {
        /// The root of the sender's tree for the receiver.
        root: u64,
    },
    /// A gaining node asks for the keys it gains, after `after`.
    StreamReq {
        /// The topology version the stream belongs to.
        version: u64,
        /// The last key already received (`None`: from the start).
        after: Option<Bytes>,
    },
    /// Key states the requester gains, in key order.
    StreamBatch {
        /// The topology version.
        version: u64,
        /// The request's `after`, echoed (stale batches are ignored).
        after: Option<Bytes>,
        /// (key, state) pairs.
        entries: Vec<(Bytes, Siblings)>,
        /// Where the next request starts; `None`: the source is done.
        next: Option<Bytes>,
    },
}

/// A change to make durable before the messages that follow it go out.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    /// The stored state of a key changed.
    State(Bytes, Siblings),
    /// The hint for (owner, key) is now this state.
    Hint(NodeId, Bytes, Siblings),
    /// The hint for (owner, key) was delivered.
    HintDone(NodeId, Bytes),
    /// The dot counter reached this value (never reuse a dot).
    Counter(u64),
    /// The ring changed.
    Topology(Topology),
    /// The key is no longer stored here (moved away, or its tombstones
    /// were collected).
    Delete(Bytes),
}

/// An output of one step, in order: a [`Persist`] must be durable before
/// any later [`Out::Send`] or [`Out::Answer`] leaves.
#[derive(Debug)]
pub enum Out {
    /// Send a message to a node.
    Send(NodeId, Msg),
    /// Answer the client request this node numbered so.
    Answer(u64, Answer),
    /// Make a change durable.
    Persist(Persist),
}

/// What survives a crash: the disk.
#[derive(Debug)]
pub struct Disk {
    /// The actor whose dots this node's writes carry.
    pub actor: Actor,
    /// The last dot counter used.
    pub next_counter: u64,
    /// Every key state this node stores as a replica.
    pub store: BTreeMap<Bytes, Siblings>,
    /// Hints held for down replicas.
    pub hints: Hints<Siblings>,
    /// The ring as last adopted (`None`: the configured one).
    pub topology: Option<Topology>,
}

impl Disk {
    /// An empty disk for `actor`.
    pub fn empty(actor: Actor, hint_limits: Limits) -> Disk {
        Disk {
            actor,
            next_counter: 0,
            store: BTreeMap::new(),
            hints: Hints::new(hint_limits, Siblings::size_bytes),
            topology: None,
        }
    }
}

/// The cluster-wide settings every node shares.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The ring and replication factor.
    pub placement: Arc<Placement>,
    /// `N`, `W`, `R`.
    pub quorum: Quorum,
    /// Sloppy or strict.
    pub mode: QuorumMode,
    /// Background timing.
    pub timing: Timing,
    /// The failure detector's knobs.
    pub membership: membership::Config,
    /// When vector clocks are pruned.
    pub prune: PrunePolicy,
}

/// Anti-entropy progress, for `cluster status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AeProgress {
    /// Exchanges this node started.
    pub rounds_started: u64,
    /// Exchanges that ended with equal trees.
    pub rounds_in_sync: u64,
    /// Exchanges that found differing buckets.
    pub rounds_differ: u64,
    /// Key states received that changed this node's store.
    pub keys_repaired: u64,
    /// Keys visited to list buckets for entries messages (the index scan
    /// touches only the listed buckets' keys).
    pub keys_listed: u64,
    /// Entries messages this node sent as the driver of a repair round.
    pub chunks_sent: u64,
    /// Tombstones purged after their grace period.
    pub tombstones_purged: u64,
}

/// A gaining node's range streaming, for `cluster status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamProgress {
    /// Members it pulls from.
    pub sources: usize,
    /// Members that sent everything.
    pub sources_done: usize,
    /// Key states received by streaming since boot (all changes).
    pub keys: u64,
}

/// An operator's membership change (`hyperscale kv cluster join|leave`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add this node to the ring.
    Join(crate::cluster::placement::NodeSpec),
    /// Take this node off the ring.
    Leave(NodeId),
}
