//! Conflict-free replicated data types for the Redis commands whose
//! concurrent use must not lose updates: counters, sets and hashes.
//!
//! Why it exists: siblings ([`crate::cluster::siblings`]) keep concurrent
//! writes of a whole value and leave the merge to the client. For `INCR`
//! that would be wrong twice over: two concurrent `INCR`s of 5 both write
//! 6, and no client can tell from two 6s that the answer is 7. A CRDT's
//! state records *operations' effects* in a form whose merge is a
//! semilattice join (commutative, associative, idempotent), so replicas
//! that saw the same operations in any order and any number of times agree,
//! and the server merges without asking anyone. This is what Riak's data
//! types (counters, sets, maps) do on the same Dynamo design; the cluster
//! uses them for `INCR`/`DECR` ([`counter`]), `SADD`/`SREM` ([`orset`]) and
//! `HSET`/`HDEL` ([`lww_map`]).
//!
//! | type | commands | concurrent conflict | rule |
//! |---|---|---|---|
//! | [`PnCounter`] | `INCR`, `DECR`, `INCRBY` | two increments | both count |
//! | [`OrSet`] | `SADD`, `SREM`, `SMEMBERS` | add ∥ remove of one member | the add wins |
//! | [`LwwMap`] | `HSET`, `HDEL`, `HGET` | two writes of one field | the later hybrid timestamp wins |
//!
//! Each type is [`Mergeable`](super::quorum::Mergeable), so quorum reads,
//! hint queues and anti-entropy carry it like a sibling set.
//!
//! A whole-key `DEL` is not a CRDT operation: it is a tombstone sibling
//! that replaces what its coordinator saw, so an update it did not see
//! brings back that replica's whole state (for a counter, its total). The
//! cluster docs ([`crate::cluster`], "Known anomaly") say what to do
//! instead: `DECRBY` the value read, or a new key.
//!
//! Every type's merge laws are property-tested on states reached by random
//! operations at random replicas ([`check_lattice_laws`] in the tests).

pub mod counter;
pub mod lww_map;
pub mod orset;
pub mod update;
pub mod value;

pub use counter::PnCounter;
pub use lww_map::LwwMap;
pub use orset::OrSet;
pub use update::Update;
pub use value::Crdt;

use super::quorum::Mergeable;

impl Mergeable for PnCounter {
    fn join(&mut self, other: &Self) {
        PnCounter::join(self, other);
    }
}

impl Mergeable for OrSet {
    fn join(&mut self, other: &Self) {
        OrSet::join(self, other);
    }
}

impl Mergeable for LwwMap {
    fn join(&mut self, other: &Self) {
        LwwMap::join(self, other);
    }
}

/// Checks that `join` is a semilattice join on `a`, `b`, `c`: commutative,
/// associative and idempotent. Shared by every mergeable type's tests.
#[cfg(test)]
pub(crate) fn check_lattice_laws<T: Clone + PartialEq + std::fmt::Debug>(
    a: &T,
    b: &T,
    c: &T,
    join: impl Fn(&mut T, &T),
) -> Result<(), proptest::test_runner::TestCaseError> {
    let joined = |x: &T, y: &T| {
        let mut out = x.clone();
        join(&mut out, y);
        out
    };
    proptest::prop_assert_eq!(joined(a, b), joined(b, a), "commutative");
    proptest::prop_assert_eq!(
        joined(&joined(a, b), c),
        joined(a, &joined(b, c)),
        "associative"
    );
    proptest::prop_assert_eq!(&joined(a, a), a, "idempotent");
    proptest::prop_assert_eq!(
        joined(&joined(a, b), b),
        joined(a, b),
        "absorbs re-delivery"
    );
    Ok(())
}
