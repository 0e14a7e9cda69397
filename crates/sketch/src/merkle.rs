//! A Merkle (hash) tree over buckets of keys: how two replicas find what
//! differs between them without sending everything.
//!
//! Why it exists: the key-value chapter's permanent-failure handling
//! ("영구 장애 처리") runs an *anti-entropy* protocol: replicas compare
//! their copies and bring each other up to date. Comparing key by key costs
//! as much traffic as the data; comparing one hash of everything says only
//! "something differs". A Merkle tree sits in between, as the notes build
//! it:
//!
//! 1. split the key space into buckets;
//! 2. hash each bucket's contents, giving the leaves;
//! 3. hash pairs of child labels upwards into a binary tree;
//! 4. compare two trees from the root down, descending only where labels
//!    differ, to find the buckets that differ, and exchange only those.
//!
//! With `2^depth` buckets and `d` differing buckets, a comparison looks at
//! `O(d · depth)` labels instead of every key, and equal replicas agree
//! after one root comparison.
//!
//! # Design
//!
//! - **Buckets are arcs of the hash ring.** A key's bucket is the top
//!   `depth` bits of XXH3-64 of the key, the same function the `ring` crate
//!   places keys with (`ring::key_position`), so bucket `b` holds a
//!   contiguous range of ring positions and a store ordered by position can
//!   list a bucket's keys with one range scan.
//! - **A bucket's label is a multiset hash.** Each item is a (key, version
//!   digest) pair, hashed to 64 bits; a bucket keeps the wrapping sum of its
//!   items' hashes and their count, and its label hashes (sum, count). Sums
//!   do not depend on insertion order, and an update is "subtract the old
//!   item, add the new one" followed by re-hashing the `depth` labels on the
//!   path to the root: `O(depth)` per write, no rebuild, no per-key storage
//!   in the tree. The tree never sees the keys again, so the caller must
//!   remove exactly what it inserted (a store does: it knows the old
//!   version when it writes a new one).
//! - **Empty is zero.** An empty bucket's label is 0 and so is the label of
//!   a node whose children are both 0, so a sparse tree's untouched
//!   subtrees compare equal without hashing.
//! - **Labels are 64-bit XXH3**, not a cryptographic hash: anti-entropy
//!   defends against bit rot and lost writes between trusted replicas, not
//!   against a forger; two different bucket contents collide with
//!   probability about `2^-64` per comparison.
//!
//! # Comparing across the network
//!
//! The trees live on different machines, so the descent is a conversation:
//! the side that starts asks for labels, the other answers with
//! [`MerkleTree::hashes`], and the asker feeds them to
//! [`MerkleTree::compare`], which says which labels to ask for next
//! ([`Step::Ask`]) or, at the leaves, which buckets differ
//! ([`Step::Done`]). [`MerkleTree::diff`] runs the same conversation in
//! one process. Every index a remote sends is checked, so a corrupt or
//! hostile message gets an error, never a panic or a large allocation.
//!
//! # Knobs
//!
//! `depth` (at most [`DEPTH_MAX`]): `2^depth` buckets cost 32 bytes each
//! (sum, count, leaf label, and one inner node's label per leaf). Deeper trees find
//! differences more precisely (fewer keys exchanged per differing bucket)
//! at the cost of more round trips and memory; a tree for about `k` keys
//! with `depth ≈ log2(k / 16)` puts some 16 keys in a bucket.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The deepest tree: 2^20 (about a million) buckets, 32 MiB.
pub const DEPTH_MAX: u8 = 20;

/// Why a tree could not be built or a comparison step could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The requested depth is above [`DEPTH_MAX`].
    #[error("a Merkle tree of depth {0} is too deep: the limit is {DEPTH_MAX}")]
    TooDeep(u8),
    /// Two trees of different depths cannot be compared label by label.
    #[error("the trees have different depths ({ours} here, {theirs} there)")]
    DepthMismatch {
        /// This tree's depth.
        ours: u8,
        /// The other tree's depth.
        theirs: u8,
    },
    /// A level below the leaves was named.
    #[error("level {level} does not exist: the tree's leaves are at level {depth}")]
    NoSuchLevel {
        /// The level asked for.
        level: u8,
        /// The tree's depth (the leaves' level).
        depth: u8,
    },
    /// A node index outside its level was named.
    #[error("node {index} does not exist at level {level}, which has {width} nodes")]
    NoSuchNode {
        /// The level.
        level: u8,
        /// The index asked for.
        index: u32,
        /// How many nodes the level has.
        width: u32,
    },
    /// More labels were sent or asked for at once than the level holds.
    #[error("{count} labels at level {level}, which has only {width} nodes")]
    TooMany {
        /// The level.
        level: u8,
        /// How many were sent or asked for.
        count: usize,
        /// How many nodes the level has.
        width: u32,
    },
}

/// What to do after comparing one level's labels with a remote tree's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask the remote for these nodes' labels at `level` next.
    Ask {
        /// The level to ask about (one below the level just compared).
        level: u8,
        /// The nodes to ask for, ascending.
        indices: Vec<u32>,
    },
    /// The comparison is over: these buckets differ (ascending; empty when
    /// the trees are equal).
    Done(Vec<u32>),
}

/// The result of comparing two trees in one process ([`MerkleTree::diff`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The buckets whose contents differ, ascending.
    pub buckets: Vec<u32>,
    /// How many labels the descent compared: what a network comparison
    /// would send (8 bytes each, plus its indices).
    pub labels_compared: usize,
    /// Round trips a network comparison would take (one per level visited).
    pub rounds: usize,
}

/// A Merkle tree over `2^depth` buckets of (key, version digest) items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    depth: u8,
    /// Labels in heap order: `labels[1]` is the root, node `i`'s children
    /// are `2i` and `2i + 1`, level `l` occupies `2^l .. 2^(l+1)`, so the
    /// leaves are `2^depth ..`. `labels[0]` is unused.
    labels: Vec<u64>,
    /// Per bucket: the wrapping sum of its items' hashes.
    sums: Vec<u64>,
    /// Per bucket: how many items it holds.
    counts: Vec<u64>,
}

/// The hash of one item: the key and its version digest together.
pub fn item_hash(key: &[u8], digest: u64) -> u64 {
    xxh3_64_with_seed(key, digest)
}

fn pair_label(left: u64, right: u64) -> u64 {
    if left == 0 && right == 0 {
        return 0;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&left.to_le_bytes());
    bytes[8..].copy_from_slice(&right.to_le_bytes());
    xxh3_64(&bytes)
}

fn leaf_label(sum: u64, count: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    pair_label(sum, count)
}

impl MerkleTree {
    /// An empty tree with `2^depth` buckets.
    pub fn new(depth: u8) -> Result<MerkleTree, MerkleError> {
        if depth > DEPTH_MAX {
            return Err(MerkleError::TooDeep(depth));
        }
        let buckets = 1usize << depth;
        Ok(MerkleTree {
            depth,
            labels: vec![0; 2 * buckets],
            sums: vec![0; buckets],
            counts: vec![0; buckets],
        })
    }

    /// The tree's depth: the leaves' level (the root is level 0).
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// How many buckets (leaves) the tree has: `2^depth`.
    pub fn bucket_count(&self) -> u32 {
        1 << self.depth
    }

    /// The bucket of a ring position: its top `depth` bits.
    pub fn bucket_of_position(&self, position: u64) -> u32 {
        // depth ≤ 20, so the shift is 44..=64 and the result fits u32.
        position
            .checked_shr(64 - u32::from(self.depth))
            .unwrap_or(0) as u32
    }

    /// The bucket of a key: [`MerkleTree::bucket_of_position`] of its XXH3-64
    /// hash (the `ring` crate's key position).
    pub fn bucket_of(&self, key: &[u8]) -> u32 {
        self.bucket_of_position(xxh3_64(key))
    }

    /// Adds an item: `key` at the version whose digest is `digest`.
    pub fn insert(&mut self, key: &[u8], digest: u64) {
        let bucket = self.bucket_of(key);
        let i = bucket as usize;
        self.sums[i] = self.sums[i].wrapping_add(item_hash(key, digest));
        self.counts[i] += 1;
        self.relabel(bucket);
    }

    /// Removes an item that was inserted with the same key and digest.
    /// Removing something never inserted leaves a tree that matches no
    /// real contents (the counts saturate at zero rather than wrap).
    pub fn remove(&mut self, key: &[u8], digest: u64) {
        let bucket = self.bucket_of(key);
        let i = bucket as usize;
        self.sums[i] = self.sums[i].wrapping_sub(item_hash(key, digest));
        self.counts[i] = self.counts[i].saturating_sub(1);
        self.relabel(bucket);
    }

    /// Records a store change: `old` is the digest the key had (`None`: it
    /// was absent), `new` the one it has now (`None`: it is gone).
    pub fn replace(&mut self, key: &[u8], old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.remove(key, old);
        }
        if let Some(new) = new {
            self.insert(key, new);
        }
    }

    /// The root label: equal roots mean (up to hash collisions) equal
    /// contents. 0 for an empty tree.
    pub fn root(&self) -> u64 {
        self.labels[1]
    }

    /// How many items the tree holds.
    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether the tree holds no item.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// How many items bucket `bucket` holds (0 for a bucket out of range).
    pub fn bucket_len(&self, bucket: u32) -> u64 {
        self.counts.get(bucket as usize).copied().unwrap_or(0)
    }

    /// Re-hashes the labels from `bucket`'s leaf up to the root.
    fn relabel(&mut self, bucket: u32) {
        let i = bucket as usize;
        let mut node = (1usize << self.depth) + i;
        self.labels[node] = leaf_label(self.sums[i], self.counts[i]);
        while node > 1 {
            node /= 2;
            self.labels[node] = pair_label(self.labels[2 * node], self.labels[2 * node + 1]);
        }
    }

    fn width(&self, level: u8) -> Result<u32, MerkleError> {
        if level > self.depth {
            return Err(MerkleError::NoSuchLevel {
                level,
                depth: self.depth,
            });
        }
        Ok(1 << level)
    }

    fn label(&self, level: u8, index: u32) -> Result<u64, MerkleError> {
        let width = self.width(level)?;
        if index >= width {
            return Err(MerkleError::NoSuchNode {
                level,
                index,
                width,
            });
        }
        Ok(self.labels[width as usize + index as usize])
    }

    /// The labels of nodes `indices` at `level`: the answer to a remote's
    /// [`Step::Ask`]. Refuses unknown levels and nodes, and more indices
    /// than the level has.
    pub fn hashes(&self, level: u8, indices: &[u32]) -> Result<Vec<u64>, MerkleError> {
        let width = self.width(level)?;
        if indices.len() > width as usize {
            return Err(MerkleError::TooMany {
                level,
                count: indices.len(),
                width,
            });
        }
        indices.iter().map(|&i| self.label(level, i)).collect()
    }

    /// One step of a comparison: `remote` holds the other tree's labels of
    /// some nodes at `level` (as `(index, label)`); the nodes whose labels
    /// differ from ours are where the trees differ. Above the leaves the
    /// answer is to ask for those nodes' children; at the leaves it is the
    /// differing buckets. Start with `compare(0, &[(0, their_root)])`.
    pub fn compare(&self, level: u8, remote: &[(u32, u64)]) -> Result<Step, MerkleError> {
        let width = self.width(level)?;
        if remote.len() > width as usize {
            return Err(MerkleError::TooMany {
                level,
                count: remote.len(),
                width,
            });
        }
        let mut differing = Vec::new();
        for &(index, theirs) in remote {
            if self.label(level, index)? != theirs {
                differing.push(index);
            }
        }
        differing.sort_unstable();
        differing.dedup();
        if level == self.depth || differing.is_empty() {
            return Ok(Step::Done(differing));
        }
        let indices = differing.iter().flat_map(|&i| [2 * i, 2 * i + 1]).collect();
        Ok(Step::Ask {
            level: level + 1,
            indices,
        })
    }

    /// Compares with another tree in this process, the way
    /// [`MerkleTree::compare`] would across a network, and counts what that
    /// would send.
    pub fn diff(&self, other: &MerkleTree) -> Result<Diff, MerkleError> {
        if self.depth != other.depth {
            return Err(MerkleError::DepthMismatch {
                ours: self.depth,
                theirs: other.depth,
            });
        }
        let mut level = 0u8;
        let mut indices = vec![0u32];
        let mut labels_compared = 0;
        let mut rounds = 0;
        loop {
            let theirs = other.hashes(level, &indices)?;
            labels_compared += theirs.len();
            rounds += 1;
            let remote: Vec<(u32, u64)> = indices.iter().copied().zip(theirs).collect();
            match self.compare(level, &remote)? {
                Step::Ask {
                    level: next,
                    indices: ask,
                } => {
                    level = next;
                    indices = ask;
                }
                Step::Done(buckets) => {
                    return Ok(Diff {
                        buckets,
                        labels_compared,
                        rounds,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
