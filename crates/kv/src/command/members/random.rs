//! Random picks (`SPOP`, `SRANDMEMBER`, `HRANDFIELD`) whose work and
//! memory are bounded whatever count the client sends.
//!
//! A collection of at most [`READ_ALL_MAX`] elements, or at most 3 times
//! the count asked for, is read whole and sampled uniformly (its memory is
//! then at most 3 times the reply's). A bigger one is sampled by descending
//! its byte-ordered subkeys: at each branch point (the first byte where the
//! lowest and highest subkey under the current prefix differ) one of the
//! bytes that occur there is drawn (a uniform byte between the two, drawn
//! again while it does not occur) and the walk goes on below it. That costs
//! a few seeks per branch point and no memory, and every element can be
//! drawn, but not uniformly: each branch is as likely as its siblings
//! whatever it holds, so an element in a small branch is drawn more often
//! (Redis's own picks from a hash table are only roughly fair either).

use std::collections::HashSet;
use std::ops::Bound;

use bytes::Bytes;

use super::{all, for_each_page};
use crate::command::{engine_error, int_arg};
use crate::engine::{SubRange, prefix_end};
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;

/// Collections this small are read whole for a random pick (exactly
/// uniform); bigger ones are sampled by descent (see the module docs).
pub const READ_ALL_MAX: u64 = 1024;

/// Most elements a negative count (picks with repeats) may ask for. Redis
/// has no limit and runs out of memory building the reply
/// (`SRANDMEMBER s -9223372036854775807` kills a real server); beyond this
/// we answer `ERR value is out of range` instead.
pub const REPEAT_MAX: u64 = 1 << 20;

/// A count argument of `SRANDMEMBER` / `HRANDFIELD`: Redis's range check.
pub fn random_count(arg: &[u8]) -> Result<i64, Frame> {
    let n = int_arg(arg)?;
    if n == i64::MIN {
        return Err(Frame::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

/// `ERR value is out of range` (a pick count we will not serve).
pub fn out_of_range() -> Frame {
    Frame::error("ERR value is out of range")
}

/// One random element, or `None` if the collection is empty.
pub fn pick_one(ks: &mut Keyspace, c: &Collection) -> Result<Option<(Bytes, Bytes)>, Frame> {
    if c.is_empty() {
        return Ok(None);
    }
    if c.len() <= READ_ALL_MAX {
        let mut items = all(ks, c)?;
        if items.is_empty() {
            return Ok(None);
        }
        let i = fastrand::usize(..items.len());
        return Ok(Some(items.swap_remove(i)));
    }
    descend(ks, c)
}

/// `count` random elements, repeats allowed (a negative count). The caller
/// checks `count <= REPEAT_MAX`.
pub fn pick_repeated(
    ks: &mut Keyspace,
    c: &Collection,
    count: u64,
) -> Result<Vec<(Bytes, Bytes)>, Frame> {
    debug_assert!(count <= REPEAT_MAX);
    let mut out = Vec::with_capacity(count.min(REPEAT_MAX) as usize);
    if c.len() <= READ_ALL_MAX || c.len() <= count.saturating_mul(3) {
        // Uniform, and cheaper than a descent per pick (at most 3x the reply).
        let items = all(ks, c)?;
        if !items.is_empty() {
            for _ in 0..count {
                out.push(items[fastrand::usize(..items.len())].clone());
            }
        }
        return Ok(out);
    }
    for _ in 0..count {
        match descend(ks, c)? {
            Some(item) => out.push(item),
            None => break,
        }
    }
    Ok(out)
}

/// Up to `count` distinct random elements; all of them (in byte order) if
/// `count` reaches the length.
pub fn pick_distinct(
    ks: &mut Keyspace,
    c: &Collection,
    count: u64,
) -> Result<Vec<(Bytes, Bytes)>, Frame> {
    if count >= c.len() {
        return all(ks, c);
    }
    if c.len() <= READ_ALL_MAX || count.saturating_mul(3) >= c.len() {
        // Partial Fisher-Yates over everything (at most 3x the reply).
        let mut items = all(ks, c)?;
        let count = (count as usize).min(items.len());
        for i in 0..count {
            let j = fastrand::usize(i..items.len());
            items.swap(i, j);
        }
        items.truncate(count);
        return Ok(items);
    }
    // Here count < len / 3, so most draws are new.
    let count = count as usize;
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    let mut attempts = count.saturating_mul(4).saturating_add(64);
    while out.len() < count && attempts > 0 {
        attempts -= 1;
        match descend(ks, c)? {
            Some((sub, value)) => {
                if seen.insert(sub.clone()) {
                    out.push((sub, value));
                }
            }
            None => break,
        }
    }
    if out.len() < count {
        // Unlucky draws: take the first unseen elements.
        for_each_page(ks, c, Bound::Unbounded, |_, page| {
            for (sub, value) in page {
                if out.len() == count {
                    return Ok(false);
                }
                if !seen.contains(sub) {
                    out.push((sub.clone(), value.clone()));
                }
            }
            Ok(out.len() < count)
        })?;
    }
    Ok(out)
}

/// Deepest descent before settling on the lowest subkey under the prefix.
const DESCENT_LEVELS_MAX: usize = 64;

/// Draws per branch point before settling for a byte that does not exist
/// (the walk then lands on the next one that does).
const BRANCH_DRAWS: usize = 16;

fn upper_bound(end: &Option<Vec<u8>>) -> Bound<&[u8]> {
    end.as_deref().map_or(Bound::Unbounded, Bound::Excluded)
}

/// One random element by descent (see the module docs).
fn descend(ks: &mut Keyspace, c: &Collection) -> Result<Option<(Bytes, Bytes)>, Frame> {
    let mut prefix: Vec<u8> = Vec::new();
    let mut lowest = None;
    for _ in 0..DESCENT_LEVELS_MAX {
        let end = prefix_end(&prefix);
        let lo = match lowest.take() {
            Some(lo) => lo,
            None => match edge(ks, c, Bound::Included(&prefix), upper_bound(&end), false)? {
                Some(lo) => lo,
                None => return Ok(None),
            },
        };
        let Some(hi) = edge(ks, c, Bound::Included(&prefix), upper_bound(&end), true)? else {
            return Ok(Some(lo));
        };
        if lo.0 == hi.0 {
            return Ok(Some(lo));
        }
        // Everything here shares `branch`; the next byte tells them apart.
        let common =
            lo.0.iter()
                .zip(hi.0.iter())
                .take_while(|(a, b)| a == b)
                .count();
        let branch = &hi.0[..common];
        let branch_end = prefix_end(branch);
        // `lo` may end at the branch point: it is then one more choice.
        let ends_here = lo.0.len() == common;
        let low_byte = if ends_here {
            match edge(
                ks,
                c,
                Bound::Excluded(&lo.0),
                upper_bound(&branch_end),
                false,
            )? {
                Some(next) => next.0[common],
                None => return Ok(Some(lo)),
            }
        } else {
            lo.0[common]
        };
        let (low, high) = (
            i32::from(low_byte) - i32::from(ends_here),
            i32::from(hi.0[common]),
        );
        // Draw a byte until it is one that exists, so every existing branch
        // is as likely; after BRANCH_DRAWS misses take where the last landed.
        let mut landed = None;
        for _ in 0..BRANCH_DRAWS {
            let drawn = fastrand::i32(low..=high);
            if drawn < i32::from(low_byte) {
                return Ok(Some(lo));
            }
            let mut probe = branch.to_vec();
            probe.push(drawn as u8);
            let Some(found) = edge(
                ks,
                c,
                Bound::Included(&probe),
                upper_bound(&branch_end),
                false,
            )?
            else {
                break;
            };
            let exact = i32::from(found.0[common]) == drawn;
            landed = Some(found);
            if exact {
                break;
            }
        }
        let Some(next) = landed else {
            return Ok(Some(hi));
        };
        prefix.clear();
        prefix.extend_from_slice(&next.0[..common + 1]);
        lowest = Some(next);
    }
    Ok(lowest)
}

/// The lowest (or highest) subkey within bounds.
fn edge(
    ks: &mut Keyspace,
    c: &Collection,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
) -> Result<Option<(Bytes, Bytes)>, Frame> {
    let mut out = Vec::with_capacity(1);
    let range = SubRange {
        lower,
        upper,
        reverse,
        limit: 1,
    };
    ks.sub_range(c, &range, &mut out).map_err(engine_error)?;
    Ok(out.pop())
}
