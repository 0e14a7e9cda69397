//! The PN-counter: an integer that any replica can increment or decrement
//! concurrently without losing a step (`INCR`, `DECR`, `INCRBY`, `DECRBY`).
//!
//! Each actor owns two grow-only totals, what it added (`p`) and what it
//! subtracted (`n`); the value is `Σp − Σn`. Only an actor changes its own
//! totals, so a merge takes each actor's larger totals: a replica that saw
//! more of an actor's steps has larger totals, and nothing is counted twice
//! however often states are merged. Two grow-only totals rather than one
//! signed one, because "the larger" of a signed total that went up and
//! then down would pick the stale value.
//!
//! Redis answers `ERR increment or decrement would overflow` when a step
//! would leave `i64`; a replica checks that against its own view
//! ([`PnCounterError::Overflow`]). Concurrent steps on other replicas can
//! still sum past `i64` after a merge, so [`PnCounter::value`] is an
//! `i128` and the command layer reports such a counter as an error rather
//! than a wrapped number.

use std::collections::BTreeMap;

use crate::cluster::codec::{DecodeError, Reader, put_varint};
use crate::cluster::vector_clock::Actor;

/// A step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PnCounterError {
    /// The counter would leave the `i64` range (Redis's error).
    #[error("increment or decrement would overflow")]
    Overflow,
}

/// A counter of increments and decrements per actor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PnCounter {
    /// Actor → (total added, total subtracted).
    totals: BTreeMap<Actor, (u64, u64)>,
}

impl PnCounter {
    /// A counter at 0.
    pub fn new() -> PnCounter {
        PnCounter::default()
    }

    /// The value: everything added minus everything subtracted.
    pub fn value(&self) -> i128 {
        self.totals
            .values()
            .map(|&(p, n)| i128::from(p) - i128::from(n))
            .sum()
    }

    /// How many actors have stepped it.
    pub fn actors(&self) -> usize {
        self.totals.len()
    }

    /// Adds `delta` (negative: subtracts) as `actor`, returning the new
    /// value; refused if it would leave `i64`.
    pub fn add(&mut self, actor: Actor, delta: i64) -> Result<i64, PnCounterError> {
        let next = i64::try_from(self.value() + i128::from(delta))
            .map_err(|_| PnCounterError::Overflow)?;
        let (p, n) = self.totals.get(&actor).copied().unwrap_or_default();
        let step = |total: u64| {
            total
                .checked_add(delta.unsigned_abs())
                .ok_or(PnCounterError::Overflow)
        };
        let totals = if delta >= 0 {
            (step(p)?, n)
        } else {
            (p, step(n)?)
        };
        self.totals.insert(actor, totals);
        Ok(next)
    }

    /// Merges another replica's counter: each actor's larger totals.
    pub fn join(&mut self, other: &PnCounter) {
        for (&actor, &(p, n)) in &other.totals {
            let ours = self.totals.entry(actor).or_default();
            ours.0 = ours.0.max(p);
            ours.1 = ours.1.max(n);
        }
    }
}

impl PnCounter {
    /// Appends the compact form: per actor, its totals.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.totals.len() as u64);
        for (actor, (p, n)) in &self.totals {
            put_varint(out, actor.0);
            put_varint(out, *p);
            put_varint(out, *n);
        }
    }

    /// Reads one counter, refusing unsorted actors and lying counts.
    pub fn decode(r: &mut Reader<'_>) -> Result<PnCounter, DecodeError> {
        let count = r.count("counter actors", r.remaining() / 3)?;
        let mut totals = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let actor = Actor(r.varint()?);
            if last.is_some_and(|l| l >= actor) {
                return Err(DecodeError::Invalid("counter actors not ascending"));
            }
            last = Some(actor);
            totals.insert(actor, (r.varint()?, r.varint()?));
        }
        Ok(PnCounter { totals })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Three replicas after random steps and merges.
    fn replicas() -> impl Strategy<Value = [PnCounter; 3]> {
        prop::collection::vec((0usize..3, -5i64..6, prop::option::of(0usize..3)), 0..30).prop_map(
            |ops| {
                let mut replicas: [PnCounter; 3] = Default::default();
                for (at, delta, merge_from) in ops {
                    replicas[at]
                        .add(Actor(at as u64), delta)
                        .expect("small steps");
                    if let Some(from) = merge_from {
                        let source = replicas[from].clone();
                        replicas[at].join(&source);
                    }
                }
                replicas
            },
        )
    }

    #[test]
    fn concurrent_increments_both_count() {
        let mut a = PnCounter::new();
        a.add(Actor(1), 5).unwrap();
        let mut b = a.clone();
        assert_eq!(a.add(Actor(1), 1), Ok(6));
        assert_eq!(b.add(Actor(2), 1), Ok(6));
        assert_eq!(b.add(Actor(2), -3), Ok(3));
        a.join(&b);
        assert_eq!(a.value(), 4);
        b.join(&a);
        assert_eq!(a, b);
    }

    #[test]
    fn overflow_is_refused_like_redis() {
        let mut c = PnCounter::new();
        assert_eq!(c.add(Actor(1), i64::MAX), Ok(i64::MAX));
        assert_eq!(c.add(Actor(1), 1), Err(PnCounterError::Overflow));
        assert_eq!(c.add(Actor(1), i64::MIN), Ok(-1));
        assert_eq!(c.add(Actor(2), i64::MIN), Err(PnCounterError::Overflow));
        assert_eq!(c.add(Actor(2), i64::MIN + 1), Ok(i64::MIN));
        assert_eq!(c.add(Actor(2), -1), Err(PnCounterError::Overflow));
        assert_eq!(c.value(), i128::from(i64::MIN));
    }

    proptest! {
        #[test]
        fn merge_laws(replicas in replicas()) {
            let [a, b, c] = &replicas;
            crate::cluster::crdt::check_lattice_laws(a, b, c, PnCounter::join)?;
        }

        /// After merging everything, the value is the sum of every step.
        #[test]
        fn no_step_is_lost(steps in prop::collection::vec((0u64..4, -9i64..10), 0..40)) {
            let mut replicas: Vec<PnCounter> = vec![PnCounter::new(); 4];
            for &(actor, delta) in &steps {
                replicas[actor as usize].add(Actor(actor), delta).unwrap();
            }
            let mut all = PnCounter::new();
            for r in replicas.iter().rev() {
                all.join(r);
            }
            let expected: i64 = steps.iter().map(|s| s.1).sum();
            prop_assert_eq!(all.value(), i128::from(expected));
        }
    }
}
