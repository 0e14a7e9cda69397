//! The observed-remove set (add-wins): `SADD`, `SREM` and `SMEMBERS` on
//! replicas that accept writes concurrently.
//!
//! A naive replicated set loses one of two concurrent operations: if one
//! replica adds `x` while another removes it, "union" brings a removed
//! member back forever and "last writer wins" drops a fresh add. An
//! observed-remove set tags every add with a unique [`Dot`]; a remove
//! deletes only the tags its replica has *observed*; a member is present
//! while any tag of it survives. A concurrent add's tag was not observed by
//! the remove, so it survives: the add wins, and nothing the remover did
//! not see is ever taken away.
//!
//! This is the *optimized* form (ORSWOT, Bieniusa et al. 2012, the one
//! Riak uses): no tombstone per removed member. The set keeps one causal
//! context ([`VectorClock`]) of every tag it has seen; a tag absent from
//! the entries but covered by the context was removed, so the merge keeps
//! a tag if both sides hold it or the other side has never seen it, the
//! same dotted join as [`crate::cluster::siblings`]. Space is the live
//! members' tags plus one clock entry per actor. Re-adding a member
//! replaces its tags with one new tag (the old ones are in the context and
//! so count as observed).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::cluster::codec::{DecodeError, Reader, put_bytes, put_varint};
use crate::cluster::siblings::StaleDot;
use crate::cluster::vector_clock::{Actor, Dot, VectorClock};

/// A set of byte-string members with add-wins merges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrSet {
    /// Member → the tags of its live adds (sorted, non-empty).
    entries: BTreeMap<Bytes, Vec<Dot>>,
    /// Every tag this replica has seen, removed ones included.
    context: VectorClock,
}

impl OrSet {
    /// An empty set.
    pub fn new() -> OrSet {
        OrSet::default()
    }

    /// Whether `member` is present.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.entries.contains_key(member)
    }

    /// The members, in byte order.
    pub fn members(&self) -> impl Iterator<Item = &Bytes> {
        self.entries.keys()
    }

    /// How many members are present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no member is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every tag this replica has seen.
    pub fn context(&self) -> &VectorClock {
        &self.context
    }

    /// Adds `member` with the new tag `dot`.
    pub fn add(&mut self, member: Bytes, dot: Dot, now_ms: u64) -> Result<(), StaleDot> {
        if self.context.covers(dot) {
            return Err(StaleDot(dot));
        }
        self.context.advance(dot, now_ms);
        self.entries.insert(member, vec![dot]);
        Ok(())
    }

    /// Removes `member` (the tags observed here); whether it was present.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.entries.remove(member).is_some()
    }

    /// Merges another replica's set.
    pub fn join(&mut self, other: &OrSet) {
        let survives = |dot: &Dot, theirs: Option<&Vec<Dot>>, their_context: &VectorClock| {
            theirs.is_some_and(|dots| dots.contains(dot)) || !their_context.covers(*dot)
        };
        let mut merged = BTreeMap::new();
        for (member, ours) in &self.entries {
            let theirs = other.entries.get(member);
            let mut dots: Vec<Dot> = ours
                .iter()
                .filter(|d| survives(d, theirs, &other.context))
                .copied()
                .collect();
            if let Some(theirs) = theirs {
                dots.extend(
                    theirs
                        .iter()
                        .filter(|d| !ours.contains(d) && !self.context.covers(**d)),
                );
            }
            if !dots.is_empty() {
                dots.sort_unstable();
                merged.insert(member.clone(), dots);
            }
        }
        for (member, theirs) in &other.entries {
            if self.entries.contains_key(member) {
                continue;
            }
            let dots: Vec<Dot> = theirs
                .iter()
                .filter(|d| !self.context.covers(**d))
                .copied()
                .collect();
            if !dots.is_empty() {
                merged.insert(member.clone(), dots);
            }
        }
        self.entries = merged;
        self.context.merge(&other.context);
    }
}

impl OrSet {
    /// Appends the compact form: the context, then each member's tags.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.context.encode(out);
        put_varint(out, self.entries.len() as u64);
        for (member, dots) in &self.entries {
            put_bytes(out, member);
            put_varint(out, dots.len() as u64);
            for dot in dots {
                put_varint(out, dot.actor.0);
                put_varint(out, dot.counter);
            }
        }
    }

    /// Reads one set, refusing unsorted members or tags, a member without
    /// tags, a tag its context does not cover, and lying counts.
    pub fn decode(r: &mut Reader<'_>) -> Result<OrSet, DecodeError> {
        let context = VectorClock::decode(r)?;
        let count = r.count("set members", r.remaining() / 3)?;
        let mut entries = BTreeMap::new();
        let mut last: Option<Bytes> = None;
        for _ in 0..count {
            let member = Bytes::copy_from_slice(r.bytes("set member", usize::MAX)?);
            if last.as_ref().is_some_and(|l| *l >= member) {
                return Err(DecodeError::Invalid("set members not ascending"));
            }
            let tags = r.count("member tags", r.remaining() / 2)?;
            if tags == 0 {
                return Err(DecodeError::Invalid("a set member without tags"));
            }
            let mut dots: Vec<Dot> = Vec::with_capacity(tags);
            for _ in 0..tags {
                let dot = Dot {
                    actor: Actor(r.varint()?),
                    counter: r.varint()?,
                };
                if dot.counter == 0 || !context.covers(dot) || dots.last() >= Some(&dot) {
                    return Err(DecodeError::Invalid("a set tag out of order or context"));
                }
                dots.push(dot);
            }
            last = Some(member.clone());
            entries.insert(member, dots);
        }
        Ok(OrSet { entries, context })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cluster::vector_clock::Actor;

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize, u8),
        Remove(usize, u8),
        Merge(usize, usize),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (0usize..3, 0u8..4).prop_map(|(r, m)| Op::Add(r, m)),
                (0usize..3, 0u8..4).prop_map(|(r, m)| Op::Remove(r, m)),
                (0usize..3, 0usize..3).prop_map(|(r, from)| Op::Merge(r, from)),
            ],
            0..40,
        )
    }

    /// Three replicas after `ops`; each replica's actor draws tags from
    /// its own counter.
    fn run(ops: &[Op]) -> [OrSet; 3] {
        let mut replicas: [OrSet; 3] = Default::default();
        let mut counters = [0u64; 3];
        for op in ops {
            match *op {
                Op::Add(r, m) => {
                    counters[r] += 1;
                    let dot = Dot {
                        actor: Actor(r as u64),
                        counter: counters[r],
                    };
                    replicas[r].add(Bytes::from(vec![m]), dot, 0).unwrap();
                }
                Op::Remove(r, m) => {
                    replicas[r].remove(&[m]);
                }
                Op::Merge(r, from) => {
                    let source = replicas[from].clone();
                    replicas[r].join(&source);
                }
            }
        }
        replicas
    }

    #[test]
    fn a_concurrent_add_wins_over_a_remove() {
        let dot = |actor, counter| Dot {
            actor: Actor(actor),
            counter,
        };
        let mut a = OrSet::new();
        a.add(Bytes::from_static(b"x"), dot(1, 1), 0).unwrap();
        let mut b = a.clone();
        assert!(b.remove(b"x"));
        a.add(Bytes::from_static(b"x"), dot(1, 2), 0).unwrap(); // re-added, unseen by b
        let mut merged = b.clone();
        merged.join(&a);
        assert!(merged.contains(b"x"));
        // A remove that observed every add does remove it everywhere.
        assert!(merged.remove(b"x"));
        a.join(&merged);
        assert!(!a.contains(b"x"));
        assert_eq!(
            a.add(Bytes::from_static(b"y"), dot(1, 2), 0),
            Err(StaleDot(dot(1, 2)))
        );
    }

    proptest! {
        #[test]
        fn merge_laws(ops in ops()) {
            let [a, b, c] = run(&ops);
            crate::cluster::crdt::check_lattice_laws(&a, &b, &c, OrSet::join)?;
        }

        /// A member added at one replica and never removed anywhere is in
        /// every replica that merged that add.
        #[test]
        fn an_add_nobody_removed_is_never_lost(ops in ops()) {
            let [a, b, c] = run(&ops);
            let mut all = a.clone();
            all.join(&b);
            all.join(&c);
            for m in 0u8..4 {
                let added = ops.iter().any(|op| matches!(op, Op::Add(_, x) if *x == m));
                let removed = ops.iter().any(|op| matches!(op, Op::Remove(_, x) if *x == m));
                if added && !removed {
                    prop_assert!(all.contains(&[m]));
                }
                if !added {
                    prop_assert!(!all.contains(&[m]));
                }
            }
        }
    }
}
