//! Lists: sequences with pushes and pops at both ends (`LPUSH`, `LRANGE`,
//! `BLPOP`...), the work queues of most systems built on Redis.
//!
//! # Encoding
//! A list is a collection (see [`crate::value`]) whose elements are subkeys
//! named by a `u64` *index*, big-endian so that byte order is list order;
//! `meta.extra` holds `head` and `tail` (16 bytes, big-endian): the index of
//! the first element and one past the last. A new list starts in the middle
//! of the index space (2^63), so `LPUSH` writes at `head - 1` and `RPUSH`
//! at `tail` without ever moving an element, the way Kvrocks stores lists:
//! ```text
//!  key "jobs"  ──▶  Meta { kind: List, len: 3, extra: head=2^63-1, tail=2^63+2 }
//!  (jobs, v, 2^63-1) ──▶ "a"     LPUSH jobs a
//!  (jobs, v, 2^63)   ──▶ "b"     RPUSH jobs b
//!  (jobs, v, 2^63+1) ──▶ "c"     RPUSH jobs c
//! ```
//! So pushes and pops are O(1) writes, `LINDEX`/`LSET` are one seek
//! (`head + i`), and `LRANGE` is one range read. `LINSERT` and `LREM`
//! shift the elements on one side of the change by one index each (O(N),
//! as in Kvrocks); deleting a whole list (`DEL`, a pop or trim that empties
//! it) is O(1): the key goes and its subkeys are never seen again. An
//! `LTRIM` that keeps less than it drops copies the kept elements into a new
//! version of the list the same way, so its work is O(kept), not O(dropped).
//!
//! Every count and index a client sends is clamped to the list's length
//! before anything is read or allocated, and long scans read in pages of
//! [`PAGE`] elements. The blocking forms (`BLPOP`...) live in
//! [`blocking`]; the mechanism they share with other types is described in
//! `crate::state::blocking`.

mod blocking;
mod edit;
mod push_pop;

use std::ops::Bound;

use bytes::Bytes;

use super::{Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, key_error, syntax_error};
use crate::engine::SubRange;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::{Extra, Kind};

/// The index of a new list's first element (see the module docs).
const MIDDLE: u64 = 1 << 63;
/// Elements read per range read when a command walks a list.
pub(super) const PAGE: usize = 1024;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("list");
    let w = WRITE | DENYOOM;
    let mut specs = vec![
        s(
            "lpush",
            -3,
            w,
            (1, 1, 1),
            "Prepends elements to a list, creating it if absent.",
            push_pop::lpush,
        ),
        s(
            "rpush",
            -3,
            w,
            (1, 1, 1),
            "Appends elements to a list, creating it if absent.",
            push_pop::rpush,
        ),
        s(
            "lpushx",
            -3,
            w,
            (1, 1, 1),
            "Prepends elements to a list only if it exists.",
            push_pop::lpushx,
        ),
        s(
            "rpushx",
            -3,
            w,
            (1, 1, 1),
            "Appends elements to a list only if it exists.",
            push_pop::rpushx,
        ),
        s(
            "lpop",
            -2,
            WRITE,
            (1, 1, 1),
            "Removes and returns the first elements of a list.",
            push_pop::lpop,
        ),
        s(
            "rpop",
            -2,
            WRITE,
            (1, 1, 1),
            "Removes and returns the last elements of a list.",
            push_pop::rpop,
        ),
        s(
            "lmove",
            5,
            w,
            (1, 2, 1),
            "Pops an element from one end of a list and pushes it to another list.",
            push_pop::lmove,
        ),
        s(
            "rpoplpush",
            3,
            w,
            (1, 2, 1),
            "Pops the last element of a list and prepends it to another list.",
            push_pop::rpoplpush,
        ),
        s(
            "lmpop",
            -4,
            WRITE,
            (0, 0, 0),
            "Pops elements from the first non-empty list of several.",
            push_pop::lmpop,
        ),
        s(
            "lrange",
            4,
            READONLY,
            (1, 1, 1),
            "Returns a range of elements of a list.",
            edit::lrange,
        ),
        s(
            "llen",
            2,
            READONLY,
            (1, 1, 1),
            "Returns the length of a list.",
            edit::llen,
        ),
        s(
            "lindex",
            3,
            READONLY,
            (1, 1, 1),
            "Returns the element at an index of a list.",
            edit::lindex,
        ),
        s(
            "lset",
            4,
            w,
            (1, 1, 1),
            "Replaces the element at an index of a list.",
            edit::lset,
        ),
        s(
            "linsert",
            5,
            w,
            (1, 1, 1),
            "Inserts an element before or after another element of a list.",
            edit::linsert,
        ),
        s(
            "lrem",
            4,
            WRITE,
            (1, 1, 1),
            "Removes occurrences of an element from a list.",
            edit::lrem,
        ),
        s(
            "ltrim",
            4,
            WRITE,
            (1, 1, 1),
            "Keeps only a range of elements of a list.",
            edit::ltrim,
        ),
        s(
            "lpos",
            -3,
            READONLY,
            (1, 1, 1),
            "Returns the indexes of matching elements of a list.",
            edit::lpos,
        ),
    ];
    specs.extend(blocking::specs());
    specs
}

/// One end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The head (`LEFT`, `L*` commands).
    Left,
    /// The tail (`RIGHT`, `R*` commands).
    Right,
}

impl End {
    /// `LEFT` or `RIGHT`, or Redis's syntax error.
    fn parse(arg: &[u8]) -> Result<End, Frame> {
        if super::is(arg, "left") {
            Ok(End::Left)
        } else if super::is(arg, "right") {
            Ok(End::Right)
        } else {
            Err(syntax_error())
        }
    }
}

/// A list being read or changed: its collection and its index bounds.
#[derive(Debug, Clone)]
pub(super) struct List {
    /// The collection (key, version, expiry).
    coll: Collection,
    /// Index of the first element.
    head: u64,
    /// One past the index of the last element.
    tail: u64,
}

/// The subkey of index `i` (big-endian, so byte order is list order).
fn sub(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

impl List {
    fn of(coll: Collection) -> List {
        let extra = &coll.meta.extra;
        let (head, tail) = if extra.len() == 16 {
            let word = |at: usize| u64::from_be_bytes(extra[at..at + 8].try_into().expect("8"));
            (word(0), word(8))
        } else {
            (MIDDLE, MIDDLE)
        };
        List { coll, head, tail }
    }

    /// Number of elements.
    fn len(&self) -> u64 {
        self.tail - self.head
    }

    /// A client's (possibly negative) index as an offset from the head, if
    /// it names an element.
    fn offset(&self, index: i64) -> Option<u64> {
        let len = self.len();
        let offset = if index < 0 {
            len.checked_sub(index.unsigned_abs())?
        } else {
            index as u64
        };
        (offset < len).then_some(offset)
    }

    /// Redis's range normalization (`LRANGE`, `LTRIM`): the inclusive
    /// offsets `start..=stop`, or `None` for an empty range.
    fn range(&self, start: i64, stop: i64) -> Option<(u64, u64)> {
        let len = i128::from(self.len());
        let fix = |i: i64| {
            let i = i128::from(i);
            if i < 0 { i + len } else { i }
        };
        let (start, stop) = (fix(start).max(0), fix(stop));
        if start > stop || start >= len {
            return None;
        }
        Some((start as u64, stop.min(len - 1) as u64))
    }
}

/// The list at `key` for a read command (`None` if absent).
fn read_list(ctx: &mut Ctx<'_>, key: &Bytes) -> Result<Option<List>, Frame> {
    let now = ctx.now_ms;
    let found = ctx.ks().read_collection(key, Kind::List, now);
    Ok(found.map_err(key_error)?.map(List::of))
}

/// The list at `key` for a write that needs it present (`None` if absent).
fn existing_list(ctx: &mut Ctx<'_>, key: &Bytes) -> Result<Option<List>, Frame> {
    let now = ctx.now_ms;
    let found = ctx.ks().existing_collection(key, Kind::List, now);
    Ok(found.map_err(key_error)?.map(List::of))
}

/// The list at `key`, created empty if absent (save it when done).
fn write_list(ctx: &mut Ctx<'_>, key: &Bytes) -> Result<List, Frame> {
    let now = ctx.now_ms;
    let coll = ctx.ks().write_collection(key, Kind::List, now);
    Ok(List::of(coll.map_err(key_error)?))
}

/// Writes the list's length and bounds back (an empty list is deleted).
fn save(ctx: &mut Ctx<'_>, list: &mut List) -> Result<(), Frame> {
    let mut extra = [0; 16];
    extra[..8].copy_from_slice(&list.head.to_be_bytes());
    extra[8..].copy_from_slice(&list.tail.to_be_bytes());
    list.coll.meta.extra = Extra::from_slice(&extra);
    list.coll.meta.len = list.len();
    ctx.ks().save_collection(&list.coll).map_err(engine_error)?;
    Ok(())
}

/// Replaces whatever is at `key` with a list of `items` in order (`SORT
/// ... STORE`); no items deletes the key.
pub(super) fn store(ctx: &mut Ctx<'_>, key: &Bytes, items: &[Bytes]) -> Result<(), Frame> {
    let coll = ctx.ks().create_collection(key.clone(), Kind::List, None);
    let mut list = List::of(coll.map_err(engine_error)?);
    for item in items {
        push(ctx, &mut list, End::Right, item)?;
    }
    save(ctx, &mut list)
}

/// The element at `offset` from the head.
fn get(ctx: &mut Ctx<'_>, list: &List, offset: u64) -> Result<Bytes, Frame> {
    let found = ctx
        .ks()
        .sub_get(&list.coll, &sub(list.head + offset))
        .map_err(engine_error)?;
    found.ok_or_else(|| Frame::error("ERR list element missing (corrupt list)"))
}

/// Writes the element at absolute index `i`.
fn put(ctx: &mut Ctx<'_>, list: &List, i: u64, value: &[u8]) -> Result<(), Frame> {
    ctx.ks()
        .sub_put(&list.coll, &sub(i), value)
        .map_err(engine_error)
}

/// Deletes the element at `offset` from the head and returns it.
fn take(ctx: &mut Ctx<'_>, list: &List, offset: u64) -> Result<Bytes, Frame> {
    let found = ctx
        .ks()
        .sub_take(&list.coll, &sub(list.head + offset))
        .map_err(engine_error)?;
    found.ok_or_else(|| Frame::error("ERR list element missing (corrupt list)"))
}

/// Deletes the element at absolute index `i`.
fn remove(ctx: &mut Ctx<'_>, list: &List, i: u64) -> Result<(), Frame> {
    ctx.ks()
        .sub_remove(&list.coll, &sub(i))
        .map_err(engine_error)
}

/// Reads up to `limit` elements from absolute index `from` (inclusive) up
/// to `to` (exclusive), from `to` down with `reverse`; returns (index, value).
/// Indexes are dense (see the module docs), so only the values are read and
/// each one's index is its position; a short read means a hole, an error.
fn scan(
    ctx: &mut Ctx<'_>,
    list: &List,
    from: u64,
    to: u64,
    reverse: bool,
    limit: usize,
) -> Result<Vec<(u64, Bytes)>, Frame> {
    let (lower, upper) = (sub(from), sub(to));
    let range = SubRange {
        lower: Bound::Included(&lower),
        upper: Bound::Excluded(&upper),
        reverse,
        limit,
    };
    let mut values = Vec::with_capacity(limit.min(PAGE));
    ctx.ks()
        .sub_values(&list.coll, &range, &mut values)
        .map_err(engine_error)?;
    let wanted = usize::try_from(to.saturating_sub(from)).map_or(limit, |n| n.min(limit));
    if values.len() != wanted {
        return Err(Frame::error("ERR list element missing (corrupt list)"));
    }
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let index = if reverse {
                to - 1 - i as u64
            } else {
                from + i as u64
            };
            (index, v)
        })
        .collect())
}

/// Calls `f` with each element from offset `start` to `stop` (inclusive)
/// in order (or from `stop` down to `start`), a page at a time; `f`
/// returns `false` to stop early.
fn walk(
    ctx: &mut Ctx<'_>,
    list: &List,
    (start, stop): (u64, u64),
    reverse: bool,
    f: &mut dyn FnMut(u64, Bytes) -> bool,
) -> Result<(), Frame> {
    let (mut low, mut high) = (list.head + start, list.head + stop + 1);
    while low < high {
        let page = scan(ctx, list, low, high, reverse, PAGE)?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        let full = page.len() == PAGE;
        for (index, value) in page {
            if !f(index - list.head, value) {
                return Ok(());
            }
        }
        if !full {
            break;
        }
        if reverse {
            high = last;
        } else {
            low = last + 1;
        }
    }
    Ok(())
}

/// Adds `value` at `end`.
fn push(ctx: &mut Ctx<'_>, list: &mut List, end: End, value: &[u8]) -> Result<(), Frame> {
    match end {
        End::Left => {
            let at = list.head.checked_sub(1).ok_or_else(index_space)?;
            put(ctx, list, at, value)?;
            list.head = at;
        }
        End::Right => {
            let next = list.tail.checked_add(1).ok_or_else(index_space)?;
            put(ctx, list, list.tail, value)?;
            list.tail = next;
        }
    }
    Ok(())
}

fn index_space() -> Frame {
    Frame::error("ERR list index space exhausted")
}

/// Pops of at most this many elements read them one by one.
const POP_POINT_READS_MAX: u64 = 16;

/// Removes and returns the element at `end` (`None` if the list is empty;
/// the caller saves the list). Allocates nothing beyond the element.
fn pop_one(ctx: &mut Ctx<'_>, list: &mut List, end: End) -> Result<Option<Bytes>, Frame> {
    let len = list.len();
    if len == 0 {
        return Ok(None);
    }
    let offset = match end {
        End::Left => 0,
        End::Right => len - 1,
    };
    // The last element goes with the list's key (see `pop`).
    let value = if len == 1 {
        get(ctx, list, offset)?
    } else {
        take(ctx, list, offset)?
    };
    match end {
        End::Left => list.head += 1,
        End::Right => list.tail -= 1,
    }
    Ok(Some(value))
}

/// Removes and returns up to `count` elements from `end` (the caller saves
/// the list). Emptying the list deletes no subkey: saving it deletes the
/// key, and its subkeys go with its version.
fn pop(ctx: &mut Ctx<'_>, list: &mut List, end: End, count: u64) -> Result<Vec<Bytes>, Frame> {
    let count = count.min(list.len());
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(count.min(PAGE as u64) as usize);
    let span = match end {
        End::Left => (0, count - 1),
        End::Right => (list.len() - count, list.len() - 1),
    };
    let mut indexes = Vec::new();
    let emptied = count == list.len();
    if count <= POP_POINT_READS_MAX {
        // Indexes are dense: a few point reads cost less than a range walk
        // (a range read sets up a merge over every source; callgrind put
        // it at a third of an LPOP on the lsm engine). Each is a take (read
        // and delete in one step) unless the pop empties the list, whose
        // subkeys then go with its key.
        for i in 0..count {
            let offset = match end {
                End::Left => i,
                End::Right => list.len() - 1 - i,
            };
            out.push(if emptied {
                get(ctx, list, offset)?
            } else {
                take(ctx, list, offset)?
            });
        }
    } else {
        walk(ctx, list, span, end == End::Right, &mut |offset, value| {
            out.push(value);
            if !emptied {
                indexes.push(offset);
            }
            true
        })?;
    }
    for offset in indexes {
        remove(ctx, list, list.head + offset)?;
    }
    match end {
        End::Left => list.head += count,
        End::Right => list.tail -= count,
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
