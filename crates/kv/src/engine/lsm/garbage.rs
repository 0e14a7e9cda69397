//! Reclaiming the subkeys of deleted, replaced and expired collections.
//!
//! Why it exists: deleting a collection (`DEL`, expiry, `SET` over it,
//! `FLUSHALL`) rewrites only its top-level key, so the caller pays O(1) for a
//! collection of any size; its subkeys stay behind, unreachable because they
//! carry the old version (see [`crate::value`]). They are reclaimed the way
//! Kvrocks does it on RocksDB: the LSM asks a compaction filter about every
//! live entry it rewrites, and this one answers with
//! [`keys::subkey_wanted`]: a subkey is kept only while its key holds a
//! collection of the subkey's version. The work happens on the LSM's
//! compaction thread, while the data is rewritten anyway, never on a client's
//! command.
//!
//! The filter judges only by the metadata's durable state (see
//! `lsm::Looked::NotDurable`): a `DEL` applied but not yet fsynced must not
//! cost the collection its elements if a crash undoes the `DEL`.
//!
//! One compaction reads a collection's subkeys one after the other (they are
//! contiguous), so the filter remembers the last key's metadata version and
//! looks a key up once per collection, not once per subkey.

use super::keys;

/// The filter the engine installs in the LSM's options.
pub(super) fn filter() -> lsm::CompactionFilter {
    lsm::CompactionFilter::new(|| {
        // The last collection looked up: its key and what its top-level key
        // held.
        let mut last: Option<(Vec<u8>, lsm::Looked)> = None;
        Box::new(move |raw: &[u8], _value: &[u8], lookup: &lsm::Lookup<'_>| {
            let Some(sub) = keys::parse_sub(raw) else {
                return true;
            };
            if last.as_ref().is_none_or(|(key, _)| key != sub.key) {
                match lookup.get(&keys::top(sub.key)) {
                    Ok(found) => last = Some((sub.key.to_vec(), found)),
                    // Cannot judge: keep it, and ask again next time.
                    Err(_) => return true,
                }
            }
            match last.as_ref().map(|(_, found)| found) {
                Some(lsm::Looked::Found(meta)) => keys::subkey_wanted(raw, Some(meta)),
                Some(lsm::Looked::Absent) => keys::subkey_wanted(raw, None),
                // The metadata's newest state may still be undone by a crash.
                Some(lsm::Looked::NotDurable) | None => true,
            }
        })
    })
}
