//! Compaction: merging SSTables to bound read cost and reclaim space.
//!
//! Why it exists: every flush adds a level-0 table; without merging, reads would probe
//! ever more tables and overwritten or deleted data would never leave the disk.
//!
//! Strategy: leveled (LevelDB/RocksDB style), chosen as the default because the
//! key-value server is read-heavy and latency-sensitive: a point read touches at most
//! one table per level ≥ 1 (plus level-0 tables), and space amplification stays near
//! 1.1x with a size ratio of 10. The price is write amplification (~10 per level in the
//! worst case); size-tiered compaction would write less but read more tables and need up
//! to 2x space, and is not implemented as a knob.
//!
//! Three parts, as in fjall / lsm-tree:
//! * `choose`: *which* tables merge into which level — a pure function of (options,
//!   version, round-robin pointers). Level 0 at `l0_compaction_trigger` tables merges
//!   whole into level 1; otherwise the level most over its size target
//!   (`level1_size_bytes · multiplier^(n-1)`) gives one table, round-robin over the key
//!   space, to merge with the overlapping tables below. A table with no overlap below
//!   is moved without rewriting it ("trivial move"), and so is an L0 table that
//!   overlaps no other L0 table and nothing in L1 (sequential writes reach L1 unrewritten).
//! * `keep`: *what* survives the merge — a pure rule per entry: a version is dropped
//!   when a newer version of the same key is visible to every live snapshot; expired
//!   values become tombstones; tombstones (and expired values) are dropped once every
//!   reader sees them and no deeper level can hold an older version of the key.
//! * `run`: the I/O — merging, writing outputs of about `table_size_bytes` (never
//!   splitting a key's versions), throttled to `compaction_bytes_per_sec`, and the
//!   atomic install, which refuses a result that would make a level ≥ 1 overlap.
//! * `filter`: the user's say ([`crate::CompactionFilter`]): entries the store's user
//!   knows are garbage (elements of a deleted collection) are dropped as they pass.

mod choose;
pub(crate) mod filter;
mod keep;
mod run;

use crate::db::Inner;
use crate::error::Result;

/// Picks and runs one background compaction; Ok(false) when nothing needs doing.
pub(crate) fn run_once(inner: &Inner) -> Result<bool> {
    let version = inner.view().version.clone();
    let choice = {
        let mut pointers = inner.compact_pointer.lock();
        let choice = choose::choose(&inner.opts, &version.levels, &pointers);
        if let Some((level, key)) = choice.as_ref().and_then(|c| c.pointer.clone()) {
            pointers[level] = key;
        }
        choice
    };
    match choice {
        Some(job) => run::run(inner, job).map(|()| true),
        None => Ok(false),
    }
}

/// A full compaction for `Db::compact`: every table merges into the deepest non-empty
/// level (at least 1), dropping all garbage.
pub(crate) fn full(inner: &Inner) -> Result<()> {
    let version = inner.view().version.clone();
    match choose::choose_full(&version.levels) {
        Some(job) => run::run(inner, job),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::choose::Choice;
    use crate::error::Error;
    use crate::sstable::Table;
    use crate::{Db, Options};

    fn move_down(table: &Arc<Table>) -> Choice<Arc<Table>> {
        Choice {
            inputs: vec![(0, table.clone())],
            output_level: 1,
            trivial_move: true,
            bottom: false,
            pointer: None,
        }
    }

    /// A result that would make level 1 overlap is refused before the manifest edit:
    /// nothing changes on disk or in memory.
    #[test]
    fn install_refuses_a_result_that_would_overlap_its_level() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            l0_compaction_trigger: 100, // no background compaction
            l0_slowdown_trigger: 100,
            l0_stop_trigger: 100,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        for (keys, value) in [(["a", "m"], b"old"), (["c", "z"], b"new")] {
            for k in keys {
                db.put(k.as_bytes(), value).unwrap();
            }
            db.flush().unwrap();
        }
        let inner = db.inner();
        let one = inner.compaction_lock.lock();
        let v = inner.view().version.clone();
        let (newer, older) = (&v.levels[0][0], &v.levels[0][1]);
        assert_eq!(
            (&older.meta.smallest[..], &newer.meta.smallest[..]),
            (&b"a"[..], &b"c"[..])
        );
        super::run::run(inner, move_down(older)).unwrap();
        // ["c", "z"] into a level holding ["a", "m"]: a picker bug.
        let err = super::run::run(inner, move_down(newer)).unwrap_err();
        let names =
            [older, newer].map(|t| t.path.file_name().unwrap().to_string_lossy().into_owned());
        assert!(
            matches!(&err, Error::Background(m) if names.iter().all(|n| m.contains(n.as_str()))),
            "{err}"
        );
        let now = inner.view().version.clone();
        assert_eq!((now.levels[0].len(), now.levels[1].len()), (1, 1));
        drop(one);
        drop(db);
        let db = Db::open(dir.path(), opts).unwrap();
        assert_eq!(db.get(b"a").unwrap(), Some(b"old".to_vec()));
        assert_eq!(db.get(b"m").unwrap(), Some(b"old".to_vec()));
        assert_eq!(db.get(b"c").unwrap(), Some(b"new".to_vec()));
    }
}
