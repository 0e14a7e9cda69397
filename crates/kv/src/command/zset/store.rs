//! How a sorted set lies in its collection's subkeys, and the operations
//! every sorted-set (and GEO) command is built from.
//!
//! Two namespaces inside one collection, as Kvrocks lays sorted sets out:
//!
//! ```text
//!  'm' member                      → score (8 bytes, encoded as below)   member index
//!  's' score(8 bytes) member       → (empty)                             score index
//! ```
//!
//! The score is stored order-preserving: an IEEE double's bits, with the
//! sign bit flipped for positive numbers and every bit flipped for
//! negative ones, big-endian, so byte order is numeric order (`-inf` first,
//! `+inf` last). A score-ordered walk is then a `sub_range` over the `s`
//! prefix, and members with equal scores come out in byte order of the
//! member, exactly Redis's tie-break. `-0` is stored as `0` (Redis's small
//! sets do the same), so equal scores always have equal bytes.
//!
//! A rank is a position in that order: it is found by walking the index
//! (O(rank), as in Kvrocks; Redis's skip list does it in O(log n)). Counts
//! (`ZCOUNT`, `ZLEXCOUNT`) walk their range the same way. Every walk reads
//! in pages of [`PAGE`] subkeys, so memory stays bounded whatever the range.

use std::ops::Bound;

use bytes::Bytes;

use super::parse::{LexRange, ScoreRange};
use crate::engine::{EngineError, SubRange};
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;

/// The member namespace's first byte.
pub(in crate::command) const MEMBERS: u8 = b'm';
/// The score index's first byte.
pub(in crate::command) const SCORES: u8 = b's';
/// Subkeys read per page of a walk.
pub(in crate::command) const PAGE: usize = 512;

/// A score's order-preserving bytes (see the module docs).
pub(in crate::command) fn encode_score(score: f64) -> [u8; 8] {
    let bits = (score + 0.0).to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    ordered.to_be_bytes()
}

/// The score whose bytes [`encode_score`] wrote (0 for malformed bytes).
pub(in crate::command) fn decode_score(bytes: &[u8]) -> f64 {
    let Some(raw) = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return 0.0;
    };
    let ordered = u64::from_be_bytes(raw);
    let bits = if ordered >> 63 == 1 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    f64::from_bits(bits)
}

/// The score index's prefix for one score.
pub(in crate::command) fn score_prefix(score: f64) -> [u8; 9] {
    let mut out = [SCORES; 9];
    out[1..].copy_from_slice(&encode_score(score));
    out
}

fn member_key(member: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(member.len() + 1);
    key.push(MEMBERS);
    key.extend_from_slice(member);
    key
}

fn index_key(score: f64, member: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(member.len() + 9);
    key.extend_from_slice(&score_prefix(score));
    key.extend_from_slice(member);
    key
}

/// One member and its score.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::command) struct Item {
    /// The member.
    pub member: Bytes,
    /// Its score.
    pub score: f64,
}

impl Item {
    /// The item a subkey of either namespace describes.
    pub fn from_subkey(sub: &Bytes, value: &[u8]) -> Item {
        if sub.first() == Some(&SCORES) && sub.len() >= 9 {
            Item {
                member: sub.slice(9..),
                score: decode_score(&sub[1..9]),
            }
        } else {
            Item {
                member: sub.slice(1.min(sub.len())..),
                score: decode_score(value),
            }
        }
    }
}

/// The score of `member`, if it is in the set.
pub(in crate::command) fn score(
    ks: &mut Keyspace,
    c: &Collection,
    member: &[u8],
) -> Result<Option<f64>, EngineError> {
    Ok(ks
        .sub_get(c, &member_key(member))?
        .map(|value| decode_score(&value)))
}

/// Gives `member` the score `new`; `old` is its current score (`None` if
/// it is not in the set yet: then the length grows).
pub(in crate::command) fn put(
    ks: &mut Keyspace,
    c: &mut Collection,
    member: &[u8],
    old: Option<f64>,
    new: f64,
) -> Result<(), EngineError> {
    let new = new + 0.0;
    match old {
        Some(old) if old == new => return Ok(()),
        Some(old) => ks.sub_remove(c, &index_key(old, member))?,
        None => c.meta.len += 1,
    }
    ks.sub_put(c, &member_key(member), &encode_score(new))?;
    ks.sub_put(c, &index_key(new, member), &[])
}

/// Removes `member`, whose score is `score` (the caller found it).
pub(in crate::command) fn remove(
    ks: &mut Keyspace,
    c: &mut Collection,
    member: &[u8],
    score: f64,
) -> Result<(), EngineError> {
    ks.sub_remove(c, &member_key(member))?;
    ks.sub_remove(c, &index_key(score, member))?;
    c.meta.len = c.meta.len.saturating_sub(1);
    Ok(())
}

/// Which subkeys a [`walk`] visits, and in which direction.
#[derive(Debug, Clone)]
pub(in crate::command) struct Span {
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
}

impl Span {
    /// Every member, by score (then member).
    pub fn all(reverse: bool) -> Span {
        Span {
            lower: Bound::Included(vec![SCORES]),
            upper: Bound::Excluded(vec![SCORES + 1]),
            reverse,
        }
    }

    /// The members whose score is in `range`, by score.
    pub fn scores(range: &ScoreRange, reverse: bool) -> Span {
        let (lower, upper) = range.subkeys();
        Span {
            lower,
            upper,
            reverse,
        }
    }

    /// The members in the lex `range`, by member (the order of the score
    /// index when all scores are equal, the case lex ranges are for).
    pub fn lex(range: &LexRange, reverse: bool) -> Span {
        let (lower, upper) = range.subkeys();
        Span {
            lower,
            upper,
            reverse,
        }
    }

    /// Every subkey of a collection, whatever its layout.
    pub fn everything() -> Span {
        Span {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
        }
    }

    /// Whether no subkey can lie within the bounds (the engines' range
    /// reads require lower ≤ upper).
    fn is_empty(&self) -> bool {
        use Bound::{Excluded, Included, Unbounded};
        match (&self.lower, &self.upper) {
            (Unbounded, _) | (_, Unbounded) => false,
            (Included(l), Included(u)) => l > u,
            (Included(l) | Excluded(l), Excluded(u)) | (Excluded(l), Included(u)) => l >= u,
        }
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(b) => Bound::Included(b),
        Bound::Excluded(b) => Bound::Excluded(b),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Reads the next page of `span` (at most `size` subkeys) into `page` and
/// moves `span` past it; returns whether more may follow.
fn read_page(
    ks: &mut Keyspace,
    c: &Collection,
    span: &mut Span,
    size: usize,
    page: &mut Vec<(Bytes, Bytes)>,
) -> Result<bool, EngineError> {
    page.clear();
    if span.is_empty() {
        return Ok(false);
    }
    let range = SubRange {
        lower: as_slice(&span.lower),
        upper: as_slice(&span.upper),
        reverse: span.reverse,
        limit: size,
    };
    ks.sub_range(c, &range, page)?;
    match page.last() {
        Some((last, _)) if page.len() == size => {
            let after = Bound::Excluded(last.to_vec());
            if span.reverse {
                span.upper = after;
            } else {
                span.lower = after;
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Visits the items of `span` in order, after skipping the first `skip`,
/// until `visit` returns `false`. Reads page by page (see the module docs).
pub(in crate::command) fn walk(
    ks: &mut Keyspace,
    c: &Collection,
    span: &Span,
    skip: u64,
    visit: &mut dyn FnMut(Item) -> bool,
) -> Result<(), EngineError> {
    walk_wanting(ks, c, span, skip, u64::MAX, visit)
}

/// [`walk`] for a caller that expects to stop after `wanted` items: the
/// first page read is just big enough (`ZRANGEBYSCORE ... LIMIT 0 10` and
/// `ZPOPMIN` read a few subkeys, not a page of 512), later ones full.
fn walk_wanting(
    ks: &mut Keyspace,
    c: &Collection,
    span: &Span,
    mut skip: u64,
    wanted: u64,
    visit: &mut dyn FnMut(Item) -> bool,
) -> Result<(), EngineError> {
    let first_page = skip.saturating_add(wanted).clamp(1, PAGE as u64) as usize;
    walk_pages(ks, c, span, first_page, &mut |sub, value| {
        if skip > 0 {
            skip -= 1;
            return true;
        }
        visit(Item::from_subkey(sub, value))
    })
}

/// Visits the raw subkeys of `span` (or of any collection, with
/// [`Span::everything`]) until `visit` returns `false`.
pub(in crate::command) fn walk_subkeys(
    ks: &mut Keyspace,
    c: &Collection,
    span: &Span,
    visit: &mut dyn FnMut(&Bytes, &Bytes) -> bool,
) -> Result<(), EngineError> {
    walk_pages(ks, c, span, PAGE, visit)
}

/// [`walk_subkeys`] whose first page holds `first_page` subkeys.
fn walk_pages(
    ks: &mut Keyspace,
    c: &Collection,
    span: &Span,
    first_page: usize,
    visit: &mut dyn FnMut(&Bytes, &Bytes) -> bool,
) -> Result<(), EngineError> {
    let mut span = span.clone();
    let mut page = Vec::with_capacity(first_page);
    let mut size = first_page;
    loop {
        let more = read_page(ks, c, &mut span, size, &mut page)?;
        size = PAGE;
        for (sub, value) in &page {
            if !visit(sub, value) {
                return Ok(());
            }
        }
        if !more {
            return Ok(());
        }
    }
}

/// Up to `limit` items of `span` after skipping `skip` (`limit` is bounded
/// by the set's length, so a huge client count allocates nothing).
pub(in crate::command) fn collect(
    ks: &mut Keyspace,
    c: &Collection,
    span: &Span,
    skip: u64,
    limit: u64,
) -> Result<Vec<Item>, EngineError> {
    let mut out = Vec::with_capacity(limit.min(c.len()).min(PAGE as u64) as usize);
    if limit == 0 {
        return Ok(out);
    }
    walk_wanting(ks, c, span, skip, limit, &mut |item| {
        out.push(item);
        (out.len() as u64) < limit
    })?;
    Ok(out)
}

/// How many items `span` holds.
pub(in crate::command) fn count(
    ks: &mut Keyspace,
    c: &Collection,
    span: &Span,
) -> Result<u64, EngineError> {
    let mut n = 0;
    walk(ks, c, span, 0, &mut |_| {
        n += 1;
        true
    })?;
    Ok(n)
}

/// The rank of `member` (its position by score, from the low end, or from
/// the high end if `reverse`) and its score; `None` if absent. Counts the
/// members on both sides a page at a time and stops at whichever end is
/// nearer, so the cost is O(min(rank, len - rank)).
pub(in crate::command) fn rank(
    ks: &mut Keyspace,
    c: &Collection,
    member: &[u8],
    reverse: bool,
) -> Result<Option<(u64, f64)>, EngineError> {
    let Some(score) = score(ks, c, member)? else {
        return Ok(None);
    };
    let key = index_key(score, member);
    let mut below = Span::all(false);
    below.upper = Bound::Excluded(key.clone());
    let mut above = Span::all(true);
    above.lower = Bound::Excluded(key);
    let (mut n_below, mut n_above) = (0u64, 0u64);
    let mut page = Vec::with_capacity(PAGE);
    // One page on each side in turn; the side that runs out first is exact.
    let from_low = loop {
        let more = read_page(ks, c, &mut below, PAGE, &mut page)?;
        n_below += page.len() as u64;
        if !more {
            break true;
        }
        let more = read_page(ks, c, &mut above, PAGE, &mut page)?;
        n_above += page.len() as u64;
        if !more {
            break false;
        }
    };
    let len = c.len();
    let low_rank = if from_low {
        n_below
    } else {
        len.saturating_sub(1 + n_above)
    };
    let rank = if reverse {
        len.saturating_sub(1 + low_rank)
    } else {
        low_rank
    };
    Ok(Some((rank, score)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_bytes_sort_as_numbers() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -5e-324,
            0.0,
            5e-324,
            1.0,
            1.5,
            1e300,
            f64::INFINITY,
        ];
        for pair in scores.windows(2) {
            assert!(
                encode_score(pair[0]) < encode_score(pair[1]),
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
        for s in scores {
            assert_eq!(decode_score(&encode_score(s)), s);
        }
        assert_eq!(encode_score(-0.0), encode_score(0.0), "-0 is stored as 0");
    }
}
