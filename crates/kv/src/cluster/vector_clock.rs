//! Vector clocks: the notes' `[server, version]` pairs attached to data,
//! which say whether one version came before another or whether the two
//! conflict.
//!
//! Why it exists: with leaderless replication two clients can write the
//! same key through different coordinators, or through the two sides of a
//! partition, and no replica sees both writes in order. A wall-clock
//! timestamp would pick one and silently drop the other. A vector clock
//! records, per writer, how many of its writes a version has seen, so:
//!
//! - `a` **before** `b` (every counter of `a` ≤ the one in `b`, one
//!   strictly): `b` was written by someone who had seen `a`; `b` replaces
//!   it.
//! - **concurrent** (each has a counter the other lacks): neither writer
//!   saw the other's version; both are kept as *siblings* until a client
//!   resolves them (see [`crate::cluster::siblings`]).
//!
//! # Design
//!
//! - A clock is a list of [`Entry`] `(actor, counter, updated_ms)` sorted by
//!   actor; an absent actor means counter 0. An [`Actor`] is a node's
//!   identity *as a writer*: it changes when a node restarts with an empty
//!   disk, so a node that forgot its counters can never hand out a
//!   `(actor, counter)` pair it handed out before (Riak's vnode epochs).
//! - [`VectorClock::merge`] is the pointwise maximum: the least clock that
//!   descends from both. It is commutative, associative and idempotent, the
//!   laws that make replicas converge whatever order merges happen in
//!   (property-tested below).
//! - A [`Dot`] is one event: a single `(actor, counter)`. A clock *covers* a
//!   dot when its counter for the actor reaches it. Siblings carry dots and
//!   a state carries one clock (dotted version vectors, see `siblings`).
//! - **Pruning** ([`VectorClock::prune`]), the notes' remedy for clocks
//!   that grow with every writer ("임계치 이상으로 길이가 길어지면 오래된
//!   순서쌍을 제거"): each entry remembers when it last changed, and past a
//!   size threshold the least recently updated entries go. The rule is
//!   Riak's (`small_vclock`, `big_vclock`, `young_vclock`, `old_vclock`),
//!   and so are the defaults. Pruning forgets history, so a pruned clock can
//!   make an old version look concurrent (a spurious sibling), which is why
//!   the caller names actors that must not be pruned (those of live
//!   siblings: see `Siblings::prune`).
//! - **Encoding** ([`VectorClock::encode`]): a varint count, then per entry
//!   the actor, counter and `updated_ms` as varints, actors ascending. The
//!   decoder refuses more than [`ENTRIES_MAX`] entries, unsorted or
//!   repeated actors, zero counters and trailing bytes, so every clock has
//!   exactly one encoding.

use std::cmp::Ordering;

use super::codec::{DecodeError, Reader, put_varint};

/// The most entries a decoded clock may have. Pruning keeps clocks near
/// [`PrunePolicy::big`] (50 by default); anything far past it is corrupt.
pub const ENTRIES_MAX: usize = 1024;

/// A writer's identity in clocks: a node, in one life of its disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Actor(pub u64);

/// One write event: the `counter`-th event of `actor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    /// Who wrote.
    pub actor: Actor,
    /// Its event number, from 1.
    pub counter: u64,
}

/// One `(actor, counter)` pair, with the time it last advanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The writer.
    pub actor: Actor,
    /// How many of its events this clock has seen (≥ 1).
    pub counter: u64,
    /// When the counter last advanced (wall clock, ms): what pruning ages.
    pub updated_ms: u64,
}

/// How two clocks relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causality {
    /// The same counters.
    Equal,
    /// `self` happened before `other`: `other` descends from it.
    Before,
    /// `self` descends from `other`.
    After,
    /// Neither saw the other.
    Concurrent,
}

/// When to prune, as Riak decides it (its bucket properties of the same
/// names, and the same defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Clocks with at most this many entries are never pruned.
    pub small: usize,
    /// Above this many entries, the oldest go even if recent-ish.
    pub big: usize,
    /// Entries updated within this many ms are never pruned.
    pub young_ms: u64,
    /// Entries older than this go whenever the clock is above `small`.
    pub old_ms: u64,
}

impl Default for PrunePolicy {
    fn default() -> Self {
        PrunePolicy {
            small: 50,
            big: 50,
            young_ms: 20_000,
            old_ms: 86_400_000,
        }
    }
}

/// A vector clock: entries sorted by actor, every counter ≥ 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorClock {
    entries: Vec<Entry>,
}

impl VectorClock {
    /// The empty clock (has seen nothing).
    pub fn new() -> VectorClock {
        VectorClock::default()
    }

    /// The entries, actors ascending.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many actors the clock names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the clock has seen nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, actor: Actor) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.actor.cmp(&actor))
    }

    /// The counter of `actor` (0 if absent).
    pub fn get(&self, actor: Actor) -> u64 {
        self.find(actor).map_or(0, |i| self.entries[i].counter)
    }

    /// Whether this clock has seen event `dot`.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.actor) >= dot.counter
    }

    /// Whether `self` has seen everything `other` has (`≥` pointwise).
    pub fn descends(&self, other: &VectorClock) -> bool {
        other.entries.iter().all(|e| self.get(e.actor) >= e.counter)
    }

    /// How `self` relates to `other` (counters only; timestamps never
    /// decide causality).
    pub fn compare(&self, other: &VectorClock) -> Causality {
        match (self.descends(other), other.descends(self)) {
            (true, true) => Causality::Equal,
            (true, false) => Causality::After,
            (false, true) => Causality::Before,
            (false, false) => Causality::Concurrent,
        }
    }

    /// Raises `dot.actor`'s counter to at least `dot.counter`, stamping the
    /// entry with `now_ms` if it moved.
    pub fn advance(&mut self, dot: Dot, now_ms: u64) {
        if dot.counter == 0 {
            return;
        }
        match self.find(dot.actor) {
            Ok(i) => {
                let entry = &mut self.entries[i];
                if dot.counter > entry.counter {
                    entry.counter = dot.counter;
                    entry.updated_ms = entry.updated_ms.max(now_ms);
                }
            }
            Err(i) => self.entries.insert(
                i,
                Entry {
                    actor: dot.actor,
                    counter: dot.counter,
                    updated_ms: now_ms,
                },
            ),
        }
    }

    /// Counts one more event of `actor` and returns it. `None` if the
    /// counter is at `u64::MAX` (never in practice: a billion events a
    /// second for 584 years).
    pub fn increment(&mut self, actor: Actor, now_ms: u64) -> Option<Dot> {
        let counter = self.get(actor).checked_add(1)?;
        let dot = Dot { actor, counter };
        self.advance(dot, now_ms);
        Some(dot)
    }

    /// Makes `self` the least clock descending from both: the pointwise
    /// maximum. For one actor the timestamp goes with the larger counter
    /// (the larger timestamp on a tie), so merging is order-independent in
    /// timestamps too.
    pub fn merge(&mut self, other: &VectorClock) {
        let mut merged = Vec::with_capacity(self.entries.len().max(other.entries.len()));
        let (mut a, mut b) = (
            self.entries.iter().peekable(),
            other.entries.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (Some(x), Some(y)) => match x.actor.cmp(&y.actor) {
                    Ordering::Less => a.next(),
                    Ordering::Greater => b.next(),
                    Ordering::Equal => {
                        let (x, y) = (a.next(), b.next());
                        x.zip(y).map(|(x, y)| {
                            if (x.counter, x.updated_ms) >= (y.counter, y.updated_ms) {
                                x
                            } else {
                                y
                            }
                        })
                    }
                },
            };
            merged.extend(next.copied());
        }
        self.entries = merged;
    }

    /// Makes `self` the greatest clock both descend from: the pointwise
    /// minimum (an actor absent from either goes). A coordinator uses it to
    /// cap a client's context at what it has seen itself.
    pub fn meet(&mut self, other: &VectorClock) {
        self.entries.retain_mut(|entry| {
            entry.counter = entry.counter.min(other.get(entry.actor));
            entry.counter > 0
        });
    }

    /// Removes the least recently updated entries by `policy` (Riak's
    /// rule: nothing while at most `small` entries; never an entry younger
    /// than `young_ms`; otherwise the oldest goes while the clock is above
    /// `big` or the entry is older than `old_ms`). Actors for which `keep`
    /// says true are never removed. Returns how many entries went.
    pub fn prune(
        &mut self,
        policy: &PrunePolicy,
        now_ms: u64,
        keep: impl Fn(Actor) -> bool,
    ) -> usize {
        if self.entries.len() <= policy.small {
            return 0;
        }
        let mut by_age: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| !keep(e.actor))
            .copied()
            .collect();
        by_age.sort_by_key(|e| (e.updated_ms, e.actor));
        let mut removed = Vec::new();
        for entry in by_age {
            let len = self.entries.len() - removed.len();
            if len <= policy.small {
                break;
            }
            let age_ms = now_ms.saturating_sub(entry.updated_ms);
            if age_ms < policy.young_ms {
                break;
            }
            if len > policy.big || age_ms > policy.old_ms {
                removed.push(entry.actor);
            } else {
                break;
            }
        }
        self.entries.retain(|e| !removed.contains(&e.actor));
        removed.len()
    }

    /// Appends the compact form (see the module docs).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.entries.len() as u64);
        for entry in &self.entries {
            put_varint(out, entry.actor.0);
            put_varint(out, entry.counter);
            put_varint(out, entry.updated_ms);
        }
    }

    /// The compact form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 10 * self.entries.len());
        self.encode(&mut out);
        out
    }

    /// Reads one clock from `reader`, refusing non-canonical or oversized
    /// input.
    pub fn decode(reader: &mut Reader<'_>) -> Result<VectorClock, DecodeError> {
        let count = reader.count("clock entries", ENTRIES_MAX)?;
        // Each entry is at least 3 bytes: a lying count cannot allocate.
        if count > reader.remaining() / 3 {
            return Err(DecodeError::Truncated);
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for _ in 0..count {
            let actor = Actor(reader.varint()?);
            let counter = reader.varint()?;
            let updated_ms = reader.varint()?;
            if counter == 0 {
                return Err(DecodeError::Invalid("a clock entry with counter 0"));
            }
            if entries.last().is_some_and(|last| last.actor >= actor) {
                return Err(DecodeError::Invalid("clock actors not strictly ascending"));
            }
            entries.push(Entry {
                actor,
                counter,
                updated_ms,
            });
        }
        Ok(VectorClock { entries })
    }

    /// Decodes a whole buffer holding exactly one clock.
    pub fn from_bytes(bytes: &[u8]) -> Result<VectorClock, DecodeError> {
        let mut reader = Reader::new(bytes);
        let clock = VectorClock::decode(&mut reader)?;
        reader.finish()?;
        Ok(clock)
    }
}

#[cfg(test)]
mod tests;
