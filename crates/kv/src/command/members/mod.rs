//! What the commands of every collection type share: walking all of a
//! collection's subkeys page by page, scan cursors ([`scan`]) and random
//! picks ([`random`]), each with work and memory bounded whatever number the
//! client sends.
//!
//! Subkeys come back from the engine in byte order, so every reply built
//! here lists elements in byte order (Redis lists them in hash-table order:
//! clients never rely on either).

mod random;
mod scan;
#[cfg(test)]
pub(super) mod testing;
#[cfg(test)]
mod tests;

use std::ops::Bound;

use bytes::Bytes;

pub(super) use random::{
    REPEAT_MAX, out_of_range, pick_distinct, pick_one, pick_repeated, random_count,
};
pub(super) use scan::{parse_cursor, parse_scan_options, scan_page, scan_page_within, scan_reply};

use super::engine_error;
use crate::engine::SubRange;
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;

/// Subkeys read per engine call when walking a whole collection.
pub(super) const PAGE: usize = 1024;

/// Walks a collection's subkeys in byte order from `lower`, a page at a
/// time, until `visit` returns `false` or the subkeys run out. `visit` gets
/// the keyspace back so it can look at other collections.
pub(super) fn for_each_page(
    ks: &mut Keyspace,
    c: &Collection,
    lower: Bound<&[u8]>,
    mut visit: impl FnMut(&mut Keyspace, &[(Bytes, Bytes)]) -> Result<bool, Frame>,
) -> Result<(), Frame> {
    let mut page = Vec::with_capacity(PAGE.min(c.len() as usize));
    let mut after: Option<Bytes> = None;
    loop {
        page.clear();
        let range = SubRange {
            lower: after.as_deref().map_or(lower, Bound::Excluded),
            upper: Bound::Unbounded,
            reverse: false,
            limit: PAGE,
        };
        ks.sub_range(c, &range, &mut page).map_err(engine_error)?;
        if !visit(ks, &page)? || page.len() < PAGE {
            return Ok(());
        }
        after = page.last().map(|(sub, _)| sub.clone());
    }
}

/// Every subkey and value of a collection, in byte order.
pub(super) fn all(ks: &mut Keyspace, c: &Collection) -> Result<Vec<(Bytes, Bytes)>, Frame> {
    let mut out = Vec::with_capacity(c.len().min(SUB_CAPACITY_MAX) as usize);
    for_each_page(ks, c, Bound::Unbounded, |_, page| {
        out.extend_from_slice(page);
        Ok(true)
    })?;
    Ok(out)
}

/// Most elements reserved up front from a stored length (a corrupt length
/// must not become a huge allocation).
const SUB_CAPACITY_MAX: u64 = 1 << 16;
