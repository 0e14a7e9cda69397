//! A collection's subkeys on the LSM: point reads and writes through the
//! open batch, and range reads that merge the batch with the disk, forward or
//! backward.
//!
//! Why a module: this is the lsm engine's half of the collection model (see
//! [`crate::value`]): a field, member or element is one LSM key (see
//! [`super::keys`] for its bytes), so changing one element of a million-element
//! collection writes one small entry, and a range read is one range scan that
//! reads only what it returns (`ZREVRANGE 0 9` reads ten entries from the high
//! end, through the LSM's reverse scan).

use std::ops::Bound;

use bytes::Bytes;

use super::merge::{Merged, Owned, merge};
use super::{LsmEngine, keys, storage};
use crate::engine::{EngineError, SubRange};

/// The longest subkey (field, member, element id) this engine stores, like
/// the longest key.
pub const SUBKEY_BYTES_MAX: usize = super::KEY_BYTES_MAX;

impl LsmEngine {
    /// The newest state of a subkey: staged, else on disk.
    pub(super) fn sub_read(
        &self,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>, EngineError> {
        let raw = keys::sub(key, version, sub);
        if let Some(state) = self.stage.subs.get(&raw) {
            return Ok(state.clone());
        }
        Ok(self.db.get(&raw).map_err(storage)?.map(Bytes::from))
    }

    /// Stages a subkey's put (`Some`) or delete (`None`); outside a batch it
    /// is committed at once. Sizes are checked here, so an oversized element
    /// fails its own command and not the whole batch at commit.
    pub(super) fn sub_write(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), EngineError> {
        if let Some(value) = value {
            self.check_key_size(key)?;
            if sub.len() > SUBKEY_BYTES_MAX {
                return Err(EngineError::TooLarge(format!(
                    "field or member of {} bytes exceeds the lsm engine's limit of {SUBKEY_BYTES_MAX} bytes",
                    sub.len()
                )));
            }
            check_value_size(value.len())?;
        }
        let raw = keys::sub(key, version, sub);
        self.stage.stage_sub(raw, value.map(Bytes::copy_from_slice));
        if self.stage.active {
            Ok(())
        } else {
            self.commit_stage()
        }
    }

    /// Appends the subkeys of (`key`, `version`) in `range` with their
    /// values, in order or reversed, at most `range.limit`: the disk's and
    /// the open batch's, merged.
    pub(super) fn sub_scan(
        &self,
        key: &[u8],
        version: u64,
        range: &SubRange<'_>,
        out: &mut Vec<(Bytes, Bytes)>,
    ) -> Result<(), EngineError> {
        if range.limit == 0 || bounds_empty(range) {
            return Ok(());
        }
        let prefix = keys::sub_prefix(key, version);
        let owned = keys::sub_range(&prefix, range.lower, range.upper);
        let bounds = keys::slices(&owned);
        let staged = self.stage.subs.range::<[u8], _>(bounds);
        let staged: Box<dyn Iterator<Item = (&Vec<u8>, &Option<Bytes>)>> = if range.reverse {
            Box::new(staged.rev())
        } else {
            Box::new(staged)
        };
        let staged = staged.map(|(raw, state)| (raw.as_slice(), state));
        let start = out.len();
        let mut page = Page::default();
        let mut take = |item: Merged<'_, '_, Bytes>| {
            match item {
                Merged::Disk(raw, value) => page.push(&raw[prefix.len()..], Ok(value), out),
                Merged::Staged(raw, value) => {
                    page.push(&raw[prefix.len()..], Err(value.clone()), out)
                }
            }
            out.len() - start + page.items.len() < range.limit
        };
        if range.reverse {
            let disk = self.db.scan_rev(bounds).map_err(storage)?;
            let mut disk =
                Owned::new(disk.map(|item| item.map(|kv| (kv.key, kv.value)).map_err(storage)));
            merge(&mut disk, staged, true, &mut take)?;
        } else {
            let mut disk = self.db.scan(bounds).map_err(storage)?;
            merge(&mut disk, staged, false, &mut take)?;
        }
        page.finish(out);
        debug_assert!(out.len() - start <= range.limit);
        Ok(())
    }
}

/// Most bytes one [`Page`] buffer holds before it is handed out and a new
/// one started (so one kept element pins at most this much).
const PAGE_BYTES_MAX: usize = 256 << 10;

/// The subkeys and values a range read returns, copied into one shared
/// buffer and handed out as slices of it: one allocation per page instead of
/// two per element (a `Bytes` slice of a shared buffer is a reference count).
#[derive(Default)]
struct Page {
    buf: Vec<u8>,
    /// Per element: where its subkey starts, where its value starts, and its
    /// value's end in `buf` (or a staged value, already shared).
    items: Vec<(usize, usize, Result<usize, Bytes>)>,
}

impl Page {
    /// Adds one element; hands the page out first if it is full.
    fn push(&mut self, sub: &[u8], value: Result<&[u8], Bytes>, out: &mut Vec<(Bytes, Bytes)>) {
        if self.buf.len() >= PAGE_BYTES_MAX {
            self.finish(out);
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(sub);
        let value_at = self.buf.len();
        let value = match value {
            Ok(bytes) => {
                self.buf.extend_from_slice(bytes);
                Ok(self.buf.len())
            }
            Err(shared) => Err(shared),
        };
        self.items.push((at, value_at, value));
    }

    /// Appends the elements collected so far to `out` and starts over.
    fn finish(&mut self, out: &mut Vec<(Bytes, Bytes)>) {
        if self.items.is_empty() {
            return;
        }
        let all = Bytes::from(std::mem::take(&mut self.buf));
        out.reserve(self.items.len());
        for (at, value_at, value) in self.items.drain(..) {
            let value = match value {
                Ok(end) => all.slice(value_at..end),
                Err(shared) => shared,
            };
            out.push((all.slice(at..value_at), value));
        }
    }
}

/// Whether `range`'s bounds admit no subkey (lower above upper): a
/// `BTreeMap::range` would panic on them.
fn bounds_empty(range: &SubRange<'_>) -> bool {
    match (range.lower, range.upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u) | Bound::Included(u)) => {
            l >= u
        }
        _ => false,
    }
}

/// The value limit, with an error naming the client's size and the limit.
pub(super) fn check_value_size(len: usize) -> Result<(), EngineError> {
    let len = len as u64;
    if len > super::VALUE_BYTES_MAX {
        return Err(EngineError::TooLarge(format!(
            "value of {len} bytes exceeds the lsm engine's value limit of {} bytes",
            super::VALUE_BYTES_MAX
        )));
    }
    Ok(())
}
