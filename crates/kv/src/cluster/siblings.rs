//! The versions of one key: concurrent writes kept side by side as
//! *siblings*, causally older ones dropped, and the causal context clients
//! hand back to say which versions they saw.
//!
//! Why it exists: the notes' versioning section ("데이터 버저닝") keeps
//! every version immutable and uses vector clocks to tell "replaces" from
//! "conflicts". This module is that rule as one data structure, and the
//! one place where a write can drop a version, so the no-lost-write
//! argument lives here.
//!
//! # Dotted version vectors, not one clock per sibling
//!
//! The textbook scheme gives each sibling a full vector clock and lets a
//! new write drop every sibling its clock dominates. With one actor per
//! node that loses data: if a coordinator already holds its own write
//! `{A:3}` and a client who never saw it writes through it with context
//! `{A:1}`, the new clock `{A:4}` dominates `{A:3}` and the unseen write
//! vanishes (the bug Riak fixed by moving to *dotted version vectors*
//! (Preguiça et al., 2012) in Riak 2.0). So here:
//!
//! - each [`Sibling`] carries only its [`Dot`]: the single event that wrote
//!   it;
//! - the key's state carries one [`VectorClock`], its *causal context*:
//!   every event it has seen, including the dots of siblings it dropped;
//! - a write with context `C` drops exactly the siblings whose dot `C`
//!   covers (the client saw them), keeps the rest, adds its own dot;
//! - two replicas' states join ([`Siblings::join`]) by keeping a sibling
//!   if both have it or the other side has not seen its dot; a dot the
//!   other side has seen but no longer holds was overwritten there.
//!
//! That join is a semilattice join (commutative, associative, idempotent:
//! property-tested), so replicas converge whatever order replication, read
//! repair, hinted handoff and anti-entropy deliver states in, and it never
//! drops a version nobody saw. A dot is `(actor, counter)` where the node
//! draws `counter` from one node-wide sequence that never repeats (not a
//! per-key count): pruning may forget an actor's entry, and a per-key count
//! restarting at 1 would then reuse a dot.
//!
//! # Resolution
//!
//! [`Siblings::resolve`] collapses siblings for clients that want one value
//! (plain `GET`): [`Resolution::LastWriterWins`] by hybrid timestamp (dot
//! breaking ties, so every replica picks the same), or
//! [`Resolution::ErrorOnConflict`]. Clients that resolve themselves read
//! every sibling plus [`encode_context`]'s opaque bytes and write the
//! merged value back with that context (`KV.GET` / `KV.PUT ... CONTEXT`).
//!
//! A context can only retire versions the coordinator holds: the write
//! path caps it at the coordinator's own state ([`VectorClock::meet`]),
//! so a forged context cannot claim future dots and silently drop writes
//! that have not happened yet; a version the client saw on another replica
//! but this coordinator has not received yet stays a sibling (a spurious
//! conflict, never a loss).

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

use super::codec::{DecodeError, Reader, put_bytes, put_varint};
use super::hlc::Hlc;
use super::vector_clock::{Actor, Dot, PrunePolicy, VectorClock};

/// The most siblings a decoded state may hold.
pub const SIBLINGS_MAX: usize = 1024;

/// The first byte of an encoded state or context: the format version.
const FORMAT: u8 = 1;

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// The write that made it.
    pub dot: Dot,
    /// When it was written (for last-writer-wins).
    pub hlc: Hlc,
    /// The value; `None` is a delete (a tombstone, kept so replicas that
    /// missed the delete do not bring the value back).
    pub value: Option<Bytes>,
}

/// How to make one value out of several siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// The sibling with the greatest hybrid timestamp wins (ties: the
    /// greater dot); the others are hidden, not deleted.
    #[default]
    LastWriterWins,
    /// More than one sibling is an error the client must resolve.
    ErrorOnConflict,
}

/// Several siblings where one value was asked for under
/// [`Resolution::ErrorOnConflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the key has {siblings} conflicting versions: read them with KV.GET and write a resolution"
)]
pub struct Conflict {
    /// How many siblings there are.
    pub siblings: usize,
}

/// A write refused because its dot is not new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dot {actor}:{counter} was already seen by this key", actor = .0.actor.0, counter = .0.counter)]
pub struct StaleDot(pub Dot);

/// The state of one key on one replica: its siblings (sorted by dot) and
/// its causal context, which covers every sibling's dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Siblings {
    siblings: Vec<Sibling>,
    context: VectorClock,
}

impl Siblings {
    /// A key nobody has written.
    pub fn new() -> Siblings {
        Siblings::default()
    }

    /// The siblings, sorted by dot.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// Every event this state has seen.
    pub fn context(&self) -> &VectorClock {
        &self.context
    }

    /// Whether the key was never written here.
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty() && self.context.is_empty()
    }

    fn position(&self, dot: Dot) -> Result<usize, usize> {
        self.siblings.binary_search_by(|s| s.dot.cmp(&dot))
    }

    /// Whether a sibling with this dot is present.
    pub fn contains(&self, dot: Dot) -> bool {
        self.position(dot).is_ok()
    }

    /// A client write through this replica (the coordinator): `value`
    /// (`None`: delete) made by event `dot`, from a client that had seen
    /// `context`. Siblings the context covers are replaced; the others stay
    /// as siblings of the new version. The context is first capped at this
    /// state's own (see the module docs). `dot` must be new to this key.
    pub fn write(
        &mut self,
        value: Option<Bytes>,
        context: &VectorClock,
        dot: Dot,
        hlc: Hlc,
        now_ms: u64,
    ) -> Result<(), StaleDot> {
        if self.context.covers(dot) {
            return Err(StaleDot(dot));
        }
        let mut seen = context.clone();
        seen.meet(&self.context);
        // Not a join with a one-sibling state: that state's context would
        // have to be `seen + dot` as a clock, and a clock entry `A:4` claims
        // A:3 too, which this client may not have seen (the coordinator's
        // own earlier write): exactly the lost update dots exist to avoid.
        self.siblings.retain(|s| !seen.covers(s.dot));
        let at = self.position(dot).unwrap_or_else(|at| at);
        self.siblings.insert(at, Sibling { dot, hlc, value });
        self.context.advance(dot, now_ms);
        Ok(())
    }

    /// Merges another replica's state of the same key into this one (the
    /// dotted-version-vector join; see the module docs).
    pub fn join(&mut self, other: &Siblings) {
        let mut kept: Vec<Sibling> = Vec::with_capacity(self.siblings.len() + other.siblings.len());
        for ours in &self.siblings {
            match other.position(ours.dot) {
                // Both have it: identical unless a replica is broken; pick
                // the same one on every replica anyway.
                Ok(i) => {
                    let theirs = &other.siblings[i];
                    let winner = if (theirs.hlc, &theirs.value) > (ours.hlc, &ours.value) {
                        theirs
                    } else {
                        ours
                    };
                    kept.push(winner.clone());
                }
                Err(_) if !other.context.covers(ours.dot) => kept.push(ours.clone()),
                Err(_) => {} // the other side saw it and replaced it
            }
        }
        for theirs in &other.siblings {
            if !self.contains(theirs.dot) && !self.context.covers(theirs.dot) {
                kept.push(theirs.clone());
            }
        }
        kept.sort_by_key(|s| s.dot);
        self.siblings = kept;
        self.context.merge(&other.context);
    }

    /// One value by `policy`: `Ok(None)` when the key is absent or its
    /// winning version is a delete.
    pub fn resolve(&self, policy: Resolution) -> Result<Option<&Sibling>, Conflict> {
        if policy == Resolution::ErrorOnConflict && self.siblings.len() > 1 {
            return Err(Conflict {
                siblings: self.siblings.len(),
            });
        }
        let winner = self.siblings.iter().max_by_key(|s| (s.hlc, s.dot));
        Ok(winner.filter(|s| s.value.is_some()))
    }

    /// Forgets old context entries by `policy`, never those of live
    /// siblings (whose dots the context must keep covering). Returns how
    /// many entries went. A forgotten entry can bring an overwritten
    /// version back from a replica that still holds it: a spurious
    /// sibling, never a lost write.
    pub fn prune(&mut self, policy: &PrunePolicy, now_ms: u64) -> usize {
        let live: Vec<Actor> = self.siblings.iter().map(|s| s.dot.actor).collect();
        self.context
            .prune(policy, now_ms, |actor| live.contains(&actor))
    }

    /// About how many bytes the state takes (values plus a fixed cost per
    /// sibling and per context entry): what hint queues are bounded by.
    pub fn size_bytes(&self) -> usize {
        let values: usize = self
            .siblings
            .iter()
            .map(|s| 24 + s.value.as_ref().map_or(0, Bytes::len))
            .sum();
        8 + values + 24 * self.context.len()
    }

    /// A 64-bit digest of the whole state: equal states, equal digests
    /// (the encoding is canonical). What the Merkle trees hash.
    pub fn digest(&self) -> u64 {
        xxh3_64(&self.to_bytes())
    }

    /// The state in its compact, canonical form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        self.context.encode(&mut out);
        put_varint(&mut out, self.siblings.len() as u64);
        for s in &self.siblings {
            put_varint(&mut out, s.dot.actor.0);
            put_varint(&mut out, s.dot.counter);
            put_varint(&mut out, s.hlc.0);
            match &s.value {
                None => out.push(0),
                Some(value) => {
                    out.push(1);
                    put_bytes(&mut out, value);
                }
            }
        }
        out
    }

    /// Decodes a state, refusing values longer than `value_len_max`, more
    /// than [`SIBLINGS_MAX`] siblings, and anything non-canonical (unsorted
    /// or repeated dots, a dot its context does not cover).
    pub fn from_bytes(bytes: &[u8], value_len_max: usize) -> Result<Siblings, DecodeError> {
        let mut reader = Reader::new(bytes);
        if reader.byte()? != FORMAT {
            return Err(DecodeError::Invalid("unknown sibling format"));
        }
        let context = VectorClock::decode(&mut reader)?;
        let count = reader.count("siblings", SIBLINGS_MAX)?;
        // A sibling is at least 4 bytes: a lying count cannot allocate.
        if count > reader.remaining() / 4 {
            return Err(DecodeError::Truncated);
        }
        let mut siblings: Vec<Sibling> = Vec::with_capacity(count);
        for _ in 0..count {
            let dot = Dot {
                actor: Actor(reader.varint()?),
                counter: reader.varint()?,
            };
            let hlc = Hlc(reader.varint()?);
            let value = match reader.byte()? {
                0 => None,
                1 => Some(Bytes::copy_from_slice(
                    reader.bytes("value", value_len_max)?,
                )),
                _ => return Err(DecodeError::Invalid("unknown sibling tag")),
            };
            if dot.counter == 0 || !context.covers(dot) {
                return Err(DecodeError::Invalid(
                    "a sibling's dot is outside its context",
                ));
            }
            if siblings.last().is_some_and(|last| last.dot >= dot) {
                return Err(DecodeError::Invalid("sibling dots not strictly ascending"));
            }
            siblings.push(Sibling { dot, hlc, value });
        }
        reader.finish()?;
        Ok(Siblings { siblings, context })
    }
}

/// The opaque causal context handed to clients (`KV.GET`) and taken back
/// with their writes (`KV.PUT ... CONTEXT`): a format byte and the clock.
pub fn encode_context(context: &VectorClock) -> Vec<u8> {
    let mut out = vec![FORMAT];
    context.encode(&mut out);
    out
}

/// Reads a context a client sent back; empty bytes mean "saw nothing".
pub fn decode_context(bytes: &[u8]) -> Result<VectorClock, DecodeError> {
    let Some((&format, rest)) = bytes.split_first() else {
        return Ok(VectorClock::new());
    };
    if format != FORMAT {
        return Err(DecodeError::Invalid("unknown causal context format"));
    }
    VectorClock::from_bytes(rest)
}

#[cfg(test)]
mod tests;
