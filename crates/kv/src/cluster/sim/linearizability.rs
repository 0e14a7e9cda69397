//! A linearizability checker for one key's history, the way Wing & Gong
//! (1993) search for a witness order, with Lowe's memoization (2017, as in
//! Porcupine): depth-first over "which operation takes effect next",
//! skipping any (operations done, model state) pair already explored, and
//! giving up after a step budget instead of running for ever.
//!
//! Why it exists: the issue's promise "under strict quorum with no
//! failures, histories are linearizable" is about the order clients see,
//! which none of the per-node checks (no lost write, convergence) speaks
//! to: a cluster can keep every write and still let a read return an
//! older state than a read that finished before it started.
//!
//! # The model: the key's siblings, not one value
//!
//! A key is a *multi-value register*: its state is the set of values of
//! its siblings. The sequential specification of the three kinds of call
//! the simulated clients make:
//!
//! - a read returns the current set;
//! - a `KV.PUT` with the context of an earlier read (a read-modify-write)
//!   removes the values that read returned and adds its own (the context
//!   covers exactly the versions the read saw; versions written since are
//!   not covered and stay as siblings); with an empty context (a blind
//!   write) it removes nothing;
//! - a plain `SET` (no context: the coordinator's own) replaces every value.
//!
//! Linearizability is local (Herlihy & Wing): a history is linearizable
//! if and only if each key's sub-history is, so keys are checked apart.
//! An operation whose answer never came (a timeout) may have taken effect
//! or not: a write is then optional and open-ended, a read is dropped.
//! Operations are ordered by the simulated clock; a return and a call in
//! the same millisecond count as concurrent.

use std::collections::{BTreeSet, HashSet};

/// A value as the checker knows it (the simulation interns values, which
/// are unique per write).
pub(super) type Value = u32;

/// What a client asked, and for a read, what it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    /// A read that returned these values (one per sibling).
    Read(BTreeSet<Value>),
    /// A write of `value`.
    Write {
        /// The value written.
        value: Value,
        /// Which current values it retires.
        replaces: Replaces,
    },
}

/// The values a write retires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Replaces {
    /// Every current value (a plain `SET`).
    All,
    /// The values of the read whose context the write carries (empty: a
    /// blind write, which only adds a sibling).
    Seen(BTreeSet<Value>),
}

/// One call with its invocation and response times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Operation {
    /// When the client sent it.
    pub call_ms: u64,
    /// When the answer arrived; `None`: never (unknown outcome).
    pub return_ms: Option<u64>,
    /// The call.
    pub call: Call,
}

/// The checker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A witness order exists.
    Linearizable,
    /// None exists: the most operations any order could place, and the
    /// first operation (by call time) none of those orders placed.
    Violation {
        /// Operations placed by the longest consistent prefix.
        placed: usize,
        /// The first operation left out of it, for the failure message.
        stuck_at: Option<Operation>,
    },
    /// The search exceeded its step budget (neither proved nor refuted).
    GaveUp,
}

/// The model's transition: the state after `call`, or `None` if a read's
/// answer does not match.
fn step(state: &BTreeSet<Value>, call: &Call) -> Option<BTreeSet<Value>> {
    match call {
        Call::Read(values) => (values == state).then(|| state.clone()),
        Call::Write {
            value,
            replaces: Replaces::All,
        } => Some(BTreeSet::from([*value])),
        Call::Write {
            value,
            replaces: Replaces::Seen(seen),
        } => {
            let mut next: BTreeSet<Value> = state.difference(seen).copied().collect();
            next.insert(*value);
            Some(next)
        }
    }
}

struct Search<'a> {
    ops: &'a [Operation],
    /// (done set, state) pairs already explored without success.
    explored: HashSet<(Vec<u64>, Vec<Value>)>,
    steps: u64,
    budget: u64,
    /// The deepest consistent prefix found, as its done set.
    best: (usize, Vec<u64>),
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn flip(done: &mut [u64], i: usize) {
    done[i / 64] ^= 1 << (i % 64);
}

impl Search<'_> {
    /// Whether the remaining operations can be placed after `done` from
    /// `state`; `Err` when the budget ran out.
    fn extend(
        &mut self,
        done: &mut Vec<u64>,
        placed: usize,
        required_left: usize,
        state: &BTreeSet<Value>,
    ) -> Result<bool, ()> {
        if required_left == 0 {
            return Ok(true);
        }
        self.steps += 1;
        if self.steps > self.budget {
            return Err(());
        }
        if !self
            .explored
            .insert((done.clone(), state.iter().copied().collect()))
        {
            return Ok(false);
        }
        if placed > self.best.0 {
            self.best = (placed, done.clone());
        }
        // Whatever goes next must have been called before every pending
        // operation returned.
        let frontier = (0..self.ops.len())
            .filter(|&i| !is_done(done, i))
            .filter_map(|i| self.ops[i].return_ms)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if is_done(done, i) || op.call_ms > frontier {
                continue;
            }
            let Some(next) = step(state, &op.call) else {
                continue;
            };
            let left = required_left - usize::from(op.return_ms.is_some());
            flip(done, i);
            let found = self.extend(done, placed + 1, left, &next);
            flip(done, i);
            if found? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Whether `ops` (one key's history, starting from an absent key) is
/// linearizable, exploring at most `budget` search steps.
pub(super) fn check(ops: &[Operation], budget: u64) -> Verdict {
    let required = ops.iter().filter(|o| o.return_ms.is_some()).count();
    let mut search = Search {
        ops,
        explored: HashSet::new(),
        steps: 0,
        budget,
        best: (0, vec![0; ops.len().div_ceil(64)]),
    };
    let mut done = vec![0; ops.len().div_ceil(64)];
    match search.extend(&mut done, 0, required, &BTreeSet::new()) {
        Ok(true) => Verdict::Linearizable,
        Ok(false) => {
            let (placed, best) = search.best;
            let stuck_at = (0..ops.len())
                .filter(|&i| !is_done(&best, i) && ops[i].return_ms.is_some())
                .min_by_key(|&i| ops[i].call_ms)
                .map(|i| ops[i].clone());
            Verdict::Violation { placed, stuck_at }
        }
        Err(()) => Verdict::GaveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call_ms: u64, return_ms: Option<u64>, call: Call) -> Operation {
        Operation {
            call_ms,
            return_ms,
            call,
        }
    }

    fn read(call_ms: u64, return_ms: u64, values: &[Value]) -> Operation {
        let values = values.iter().copied().collect();
        op(call_ms, Some(return_ms), Call::Read(values))
    }

    fn set(call_ms: u64, return_ms: Option<u64>, value: Value) -> Operation {
        let replaces = Replaces::All;
        op(call_ms, return_ms, Call::Write { value, replaces })
    }

    fn put(call_ms: u64, return_ms: u64, value: Value, seen: &[Value]) -> Operation {
        let replaces = Replaces::Seen(seen.iter().copied().collect());
        op(call_ms, Some(return_ms), Call::Write { value, replaces })
    }

    const BUDGET: u64 = 100_000;

    #[test]
    fn a_stale_read_after_a_finished_write_is_refused() {
        // set 1, set 2 (done), then a read still sees 1.
        let h = [set(0, Some(5), 1), set(10, Some(15), 2), read(20, 25, &[1])];
        assert!(matches!(
            check(&h, BUDGET),
            Verdict::Violation { placed: 2, stuck_at: Some(o) } if o.call_ms == 20
        ));
        let ok = [set(0, Some(5), 1), set(10, Some(15), 2), read(20, 25, &[2])];
        assert_eq!(check(&ok, BUDGET), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_calls_may_take_effect_in_either_order() {
        // The read overlaps the write: old or new value are both fine,
        // but two reads may not see new then old (the new-old inversion).
        let old = [set(0, Some(1), 1), set(10, Some(30), 2), read(12, 20, &[1])];
        assert_eq!(check(&old, BUDGET), Verdict::Linearizable);
        let new = [set(0, Some(1), 1), set(10, Some(30), 2), read(12, 20, &[2])];
        assert_eq!(check(&new, BUDGET), Verdict::Linearizable);
        let inversion = [
            set(0, Some(1), 1),
            set(10, Some(30), 2),
            read(12, 15, &[2]),
            read(16, 20, &[1]),
        ];
        assert!(matches!(
            check(&inversion, BUDGET),
            Verdict::Violation { .. }
        ));
    }

    #[test]
    fn siblings_follow_the_contexts_writes_carry() {
        // Two blind writes become siblings; a write with the context of a
        // read of both replaces both; one that saw only 1 keeps 2.
        let resolved = [
            put(0, 5, 1, &[]),
            put(1, 6, 2, &[]),
            read(10, 12, &[1, 2]),
            put(13, 15, 3, &[1, 2]),
            read(16, 18, &[3]),
        ];
        assert_eq!(check(&resolved, BUDGET), Verdict::Linearizable);
        let partial = [
            put(0, 5, 1, &[]),
            read(6, 7, &[1]),
            put(8, 9, 2, &[]),
            put(10, 12, 3, &[1]),
            read(16, 18, &[2, 3]),
        ];
        assert_eq!(check(&partial, BUDGET), Verdict::Linearizable);
        // Losing the sibling nobody saw is not linearizable.
        let mut lost = partial.clone();
        lost[4] = read(16, 18, &[3]);
        assert!(matches!(check(&lost, BUDGET), Verdict::Violation { .. }));
    }

    #[test]
    fn a_write_without_an_answer_may_or_may_not_have_happened() {
        let seen = [set(0, Some(1), 1), set(5, None, 2), read(10, 11, &[2])];
        assert_eq!(check(&seen, BUDGET), Verdict::Linearizable);
        let unseen = [set(0, Some(1), 1), set(5, None, 2), read(10, 11, &[1])];
        assert_eq!(check(&unseen, BUDGET), Verdict::Linearizable);
        // But once seen, it stays.
        let flicker = [
            set(0, Some(1), 1),
            set(5, None, 2),
            read(10, 11, &[2]),
            read(12, 13, &[1]),
        ];
        assert!(matches!(check(&flicker, BUDGET), Verdict::Violation { .. }));
    }

    #[test]
    fn the_budget_bounds_the_search() {
        // Many overlapping writes and a read nobody can explain: the
        // search would try every order; a tiny budget stops it.
        let mut h: Vec<Operation> = (0..12).map(|v| set(0, Some(100), v)).collect();
        h.push(read(200, 201, &[99]));
        assert_eq!(check(&h, 50), Verdict::GaveUp);
        // With memoization the full search is small enough to refute it.
        assert!(matches!(check(&h, 10_000_000), Verdict::Violation { .. }));
    }
}
