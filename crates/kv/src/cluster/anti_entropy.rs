//! Anti-entropy: replicas compare Merkle trees and exchange only the
//! buckets that differ, so copies converge even when hints and read repair
//! missed something (a node back with an empty disk, a hint queue that was
//! full, a key nobody reads).
//!
//! Why it exists: the notes' permanent-failure section ("영구 장애 처리")
//! prescribes exactly this, with the hash tree of [`sketch::merkle`].
//!
//! # One tree per peer
//!
//! Two replicas can only compare the keys they *both* hold. Node `A` keeps
//! one tree per peer `B`, over the keys `A` stores whose preference list
//! includes `B`; `B` keeps the mirror tree over the keys it stores whose
//! list includes `A`. Both trees cover the same keys, so in sync they have
//! equal roots, and a difference is a real divergence. Each write updates
//! the trees of the key's other replicas, `O(N · depth)` hashes, no
//! rebuild (an item is the key and the digest of its whole state). Riak
//! keeps a tree per preference list instead; per peer is simpler and
//! costs one tree per peer that shares keys, which with virtual nodes is
//! every peer in a small cluster.
//!
//! # The conversation
//!
//! Stateless request and answer, so a lost message costs one round and
//! needs no timeout bookkeeping:
//!
//! ```text
//!  A ── Labels{level 0, [root]} ─────────────▶ B   compare with B's tree for A
//!  A ◀──────────── Ask{level 1, [0, 1]} ───── B   labels differ: children please
//!  A ── Labels{level 1, [(0,x), (1,y)]} ─────▶ B   ... down to the leaves
//!  A ◀─── entries of the differing buckets ── B   (the caller: its key states)
//!  A ── its entries of those buckets ────────▶ B   both sides join what they get
//! ```
//!
//! This module decides the tree part ([`AntiEntropy::on_message`] returns
//! [`Reply`]); the caller lists and joins key states, because they live in
//! its store, and bounds how many it sends per message. The buckets one
//! descent finds are walked by a [`repair::Repair`] cursor over as many
//! paced messages as they need: one descent per repair round, not one per
//! message.
//!
//! # Listing a bucket
//!
//! A bucket is an arc of the hash ring: the top `depth` bits of the key's
//! ring position (`ring::key_position`). The store is ordered by key, so
//! the bucket of a key is not a key prefix, and making it one would change
//! the on-disk keys and the stream order of every other module. Instead
//! this module keeps an index ordered by (position, key) of exactly the
//! keys the trees hold (it is updated by the same [`AntiEntropy::record`]
//! calls and rebuilt with them), so [`AntiEntropy::keys_in`] lists a
//! bucket with one bounded range scan: its cost is the bucket's own keys,
//! not the store's. It costs a position and a shared `Bytes` handle per
//! key (about 48 bytes), derived data rebuilt on boot like the trees.

pub mod repair;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use sketch::merkle::{MerkleError, MerkleTree, Step};

use super::NodeId;

/// A tree-comparison message between two replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The sender's labels of some nodes at `level`: `(index, label)`.
    Labels {
        /// The level.
        level: u8,
        /// The labels.
        labels: Vec<(u32, u64)>,
    },
    /// Please send your labels of these nodes at `level`.
    Ask {
        /// The level.
        level: u8,
        /// The nodes.
        indices: Vec<u32>,
    },
}

/// What to do with a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send this back to the peer.
    Send(Message),
    /// The trees differ in these buckets: send the peer your key states in
    /// them (keys you share with it) and ask for its own.
    Differ(Vec<u32>),
    /// The trees are equal: nothing to exchange.
    InSync,
}

/// A message that cannot be answered: drop it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeError {
    /// The sender shares no tree with this node.
    #[error("node {0} is not a peer of this node")]
    UnknownPeer(NodeId),
    /// The message names levels or nodes the tree does not have.
    #[error(transparent)]
    Tree(#[from] MerkleError),
}

/// One node's Merkle trees, one per peer.
#[derive(Debug, Clone)]
pub struct AntiEntropy {
    me: NodeId,
    depth: u8,
    trees: BTreeMap<NodeId, MerkleTree>,
    /// Every key the trees hold, by (ring position, key): a bucket is a
    /// range (see the module docs).
    index: BTreeSet<(u64, Bytes)>,
}

impl AntiEntropy {
    /// Empty trees of `depth` for every peer of `me`.
    pub fn new(
        me: NodeId,
        peers: impl IntoIterator<Item = NodeId>,
        depth: u8,
    ) -> Result<AntiEntropy, MerkleError> {
        let mut trees = BTreeMap::new();
        MerkleTree::new(depth)?;
        for peer in peers.into_iter().filter(|&p| p != me) {
            trees.insert(peer, MerkleTree::new(depth)?);
        }
        Ok(AntiEntropy {
            me,
            depth,
            trees,
            index: BTreeSet::new(),
        })
    }

    /// Records a change of `key`'s state here: digest `old` (`None`:
    /// absent) to `new`, for the key's `replicas` (its preference list).
    pub fn record(&mut self, key: &Bytes, old: Option<u64>, new: Option<u64>, replicas: &[NodeId]) {
        match (old, new) {
            (None, Some(_)) => {
                self.index.insert((ring::key_position(key), key.clone()));
            }
            (Some(_), None) => {
                self.index.remove(&(ring::key_position(key), key.clone()));
            }
            _ => {}
        }
        for peer in replicas.iter().filter(|&&p| p != self.me) {
            if let Some(tree) = self.trees.get_mut(peer) {
                tree.replace(key, old, new);
            }
        }
    }

    /// The tree of keys shared with `peer`.
    pub fn tree(&self, peer: NodeId) -> Option<&MerkleTree> {
        self.trees.get(&peer)
    }

    /// The bucket `key` falls in (the same in every tree).
    pub fn bucket_of(&self, key: &[u8]) -> Option<u32> {
        self.trees.values().next().map(|t| t.bucket_of(key))
    }

    /// The keys recorded here whose bucket is `bucket`, by ring position:
    /// one range scan of the index, touching only that bucket's keys.
    pub fn keys_in(&self, bucket: u32) -> impl Iterator<Item = &Bytes> {
        let shift = 64 - u32::from(self.depth);
        let lo = u64::from(bucket).checked_shl(shift).unwrap_or(0);
        let hi = lo | (u64::MAX >> self.depth);
        self.index
            .range((lo, Bytes::new())..)
            .take_while(move |(position, _)| *position <= hi)
            .map(|(_, key)| key)
    }

    /// How many keys the trees hold (each once, whatever its peers).
    pub fn keys_len(&self) -> usize {
        self.index.len()
    }

    /// The first message of an exchange with `peer`: this side's root.
    pub fn start(&self, peer: NodeId) -> Option<Message> {
        let tree = self.trees.get(&peer)?;
        Some(Message::Labels {
            level: 0,
            labels: vec![(0, tree.root())],
        })
    }

    /// Handles a message from `peer`. An error (an unknown peer, indices
    /// outside the tree) means "drop the message".
    pub fn on_message(&self, peer: NodeId, message: &Message) -> Result<Reply, AeError> {
        let tree = self.trees.get(&peer).ok_or(AeError::UnknownPeer(peer))?;
        match message {
            Message::Labels { level, labels } => match tree.compare(*level, labels)? {
                Step::Ask { level, indices } => Ok(Reply::Send(Message::Ask { level, indices })),
                Step::Done(buckets) if buckets.is_empty() => Ok(Reply::InSync),
                Step::Done(buckets) => Ok(Reply::Differ(buckets)),
            },
            Message::Ask { level, indices } => {
                let hashes = tree.hashes(*level, indices)?;
                let labels = indices.iter().copied().zip(hashes).collect();
                Ok(Reply::Send(Message::Labels {
                    level: *level,
                    labels,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a conversation between two nodes' trees to its end.
    fn converse(a: &AntiEntropy, b: &AntiEntropy) -> (Reply, usize) {
        let mut message = a.start(b.me).unwrap();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let (from, at) = if rounds % 2 == 1 { (a, b) } else { (b, a) };
            match at.on_message(from.me, &message).unwrap() {
                Reply::Send(next) => message = next,
                done => return (done, rounds),
            }
        }
    }

    #[test]
    fn replicas_find_the_buckets_they_disagree_on() {
        let (na, nb, nc) = (NodeId(1), NodeId(2), NodeId(3));
        let mut a = AntiEntropy::new(na, [na, nb, nc], 5).unwrap();
        let mut b = AntiEntropy::new(nb, [na, nb, nc], 5).unwrap();
        let shared = [na, nb];
        for i in 0..100u64 {
            let key = Bytes::from(format!("k{i}"));
            a.record(&key, None, Some(i), &shared);
            b.record(&key, None, Some(i), &shared);
        }
        // A key only A and C share never enters the A-B trees.
        a.record(&Bytes::from_static(b"elsewhere"), None, Some(1), &[na, nc]);
        assert_eq!(converse(&a, &b), (Reply::InSync, 1));
        b.record(&Bytes::from_static(b"k7"), Some(7), Some(70), &shared);
        let (reply, rounds) = converse(&a, &b);
        assert_eq!(reply, Reply::Differ(vec![a.bucket_of(b"k7").unwrap()]));
        assert_eq!(rounds, 11, "root, then an ask and an answer per level");
        // A stranger's or a malformed message is refused, not a panic.
        assert!(a.on_message(NodeId(9), &a.start(nb).unwrap()).is_err());
        let bad = Message::Ask {
            level: 9,
            indices: vec![0],
        };
        assert!(a.on_message(nb, &bad).is_err());
    }

    #[test]
    fn a_bucket_lists_exactly_its_own_keys() {
        let (na, nb) = (NodeId(1), NodeId(2));
        for depth in [0, 1, 6, 20] {
            let mut a = AntiEntropy::new(na, [na, nb], depth).unwrap();
            let keys: Vec<Bytes> = (0..500).map(|i| Bytes::from(format!("k{i}"))).collect();
            for (i, key) in keys.iter().enumerate() {
                a.record(key, None, Some(i as u64), &[na, nb]);
            }
            // A changed state keeps its place; a removed key leaves.
            a.record(&keys[0], Some(0), Some(99), &[na, nb]);
            a.record(&keys[1], Some(1), None, &[na, nb]);
            assert_eq!(a.keys_len(), 499);
            let tree = a.tree(nb).unwrap();
            let mut listed = 0;
            for bucket in 0..tree.bucket_count().min(1 << 12) {
                let in_bucket: Vec<&Bytes> = a.keys_in(bucket).collect();
                assert_eq!(
                    in_bucket.len() as u64,
                    tree.bucket_len(bucket),
                    "depth {depth}"
                );
                assert!(in_bucket.iter().all(|k| tree.bucket_of(k) == bucket));
                listed += in_bucket.len();
            }
            if depth <= 12 {
                assert_eq!(listed, 499, "every key in exactly one bucket");
            }
            let last = tree.bucket_count() - 1;
            assert_eq!(a.keys_in(last).count() as u64, tree.bucket_len(last));
        }
    }
}
