//! The keep/drop rule of compaction: which versions of a key survive a merge.
//!
//! Why a module of its own: dropping a version that a reader can still see loses data,
//! and keeping one forever leaks space; the rule is subtle (snapshots, TTLs, tombstones
//! that must outlive what they shadow), so it is one pure function of what compaction
//! knows about an entry, unit-tested case by case, and the merge loop only applies it.
//!
//! A version is dropped when
//! * a newer version of the same key is visible to every reader (its sequence number is
//!   at or below the oldest live snapshot): the older one can never be read again; or
//! * it hides its key (a tombstone, or a value whose TTL has passed), every reader sees
//!   it, and the merge is at the bottom (no deeper level may hold an older version it
//!   must keep shadowing).
//!
//! An expired value that must stay (a snapshot may not see it yet, or older versions
//! below still need shadowing) is rewritten as a tombstone, shedding its value bytes.

use crate::codec::{Entry, Kind};

/// What compaction knows when it judges an entry, fixed for the whole merge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    /// The clock TTLs are measured against (unix ms).
    pub now_ms: u64,
    /// Sequence number every reader sees at least: the oldest live snapshot, or the
    /// newest visible sequence number when there is none.
    pub horizon_seq: u64,
    /// No level below the output may hold an older version of the merged keys.
    pub bottom: bool,
}

/// The fate of one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Written out as it is.
    Keep,
    /// An expired value still needed: written out as a tombstone.
    KeepAsTombstone,
    /// Not written out.
    Drop,
}

/// The rule for one version (`seq`, `kind`, `expire_at_ms`) of a key, given the
/// sequence number of the next newer version of the same key in the merge (`None` when
/// this is the newest).
pub(crate) fn verdict(
    rules: &Rules,
    newer_seq: Option<u64>,
    seq: u64,
    kind: Kind,
    expire_at_ms: u64,
) -> Verdict {
    debug_assert!(newer_seq.is_none_or(|n| n > seq), "versions out of order");
    let shadowed = newer_seq.is_some_and(|n| n <= rules.horizon_seq);
    let expired = kind == Kind::PutExpiring && expire_at_ms <= rules.now_ms;
    let hides_key = kind == Kind::Delete || expired;
    if shadowed || (hides_key && seq <= rules.horizon_seq && rules.bottom) {
        Verdict::Drop
    } else if expired {
        Verdict::KeepAsTombstone
    } else {
        Verdict::Keep
    }
}

/// Whether the user's compaction filter may judge this version (see
/// `compaction::filter`): only the newest version of its key, seen by every reader, and
/// only a live value the engine itself keeps.
pub(crate) fn filterable(
    rules: &Rules,
    newer_seq: Option<u64>,
    seq: u64,
    v: Verdict,
    kind: Kind,
) -> bool {
    newer_seq.is_none() && seq <= rules.horizon_seq && v == Verdict::Keep && kind != Kind::Delete
}

/// What becomes of a version the filter rejected: at the bottom it goes; above it stays
/// as a tombstone, so older versions below stay shadowed.
pub(crate) fn rejected(rules: &Rules) -> Verdict {
    if rules.bottom {
        Verdict::Drop
    } else {
        Verdict::KeepAsTombstone
    }
}

/// Applies [`verdict`] along a merged stream, where all versions of a key come
/// together, newest first.
pub(crate) struct Retain {
    /// The merge's rules.
    rules: Rules,
    /// Key of the previous entry.
    last_key: Option<Vec<u8>>,
    /// Sequence number of the previous entry (of `last_key`), kept or not.
    last_seq: u64,
}

impl Retain {
    /// A fresh stream.
    pub(crate) fn new(rules: Rules) -> Self {
        Self {
            rules,
            last_key: None,
            last_seq: u64::MAX,
        }
    }

    /// Judges the next entry of the stream, rewriting it if it stays as a tombstone.
    /// `None`: drop it. `Some(first)`: write it; `first` tells whether it is its key's
    /// first version written (outputs are split only there, never inside a key). When
    /// a key's newest version is dropped all its versions are, so the first version
    /// written is always the first version of the key in the stream.
    /// `unwanted` is the user's filter, asked only when [`filterable`] says so.
    pub(crate) fn judge(
        &mut self,
        e: &mut Entry,
        unwanted: impl FnOnce(&Entry) -> bool,
    ) -> Option<bool> {
        let first = self.last_key.as_deref() != Some(&e.key[..]);
        let newer_seq = if first {
            self.last_key = Some(e.key.clone());
            None
        } else {
            Some(self.last_seq)
        };
        self.last_seq = e.seq;
        let mut v = verdict(&self.rules, newer_seq, e.seq, e.kind, e.expire_at_ms);
        if filterable(&self.rules, newer_seq, e.seq, v, e.kind) && unwanted(e) {
            v = rejected(&self.rules);
        }
        match v {
            Verdict::Drop => None,
            Verdict::KeepAsTombstone => {
                (e.kind, e.expire_at_ms, e.value) = (Kind::Delete, 0, Vec::new());
                Some(first)
            }
            Verdict::Keep => Some(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_000_000;

    fn rules(horizon_seq: u64, bottom: bool) -> Rules {
        Rules {
            now_ms: NOW_MS,
            horizon_seq,
            bottom,
        }
    }

    #[test]
    fn the_newest_version_is_kept_even_at_the_bottom() {
        for bottom in [false, true] {
            let r = rules(100, bottom);
            assert_eq!(verdict(&r, None, 50, Kind::Put, 0), Verdict::Keep);
            assert_eq!(verdict(&r, None, 150, Kind::Put, 0), Verdict::Keep);
            // Not yet expired.
            let live = NOW_MS + 1;
            assert_eq!(
                verdict(&r, None, 50, Kind::PutExpiring, live),
                Verdict::Keep
            );
        }
    }

    #[test]
    fn versions_the_oldest_snapshot_may_read_are_kept() {
        // The oldest snapshot is at 100; the newer version (120) is invisible to it, so
        // it reads this one (90).
        let r = rules(100, true);
        assert_eq!(verdict(&r, Some(120), 90, Kind::Put, 0), Verdict::Keep);
        // Same for a tombstone it reads above the bottom: it hides older versions below.
        let above = rules(100, false);
        assert_eq!(
            verdict(&above, Some(120), 90, Kind::Delete, 0),
            Verdict::Keep
        );
        // At the bottom it hides nothing (what it shadowed goes with it): the snapshot
        // reads "absent" either way.
        assert_eq!(verdict(&r, Some(120), 90, Kind::Delete, 0), Verdict::Drop);
    }

    #[test]
    fn versions_shadowed_for_every_reader_are_dropped() {
        let r = rules(100, false);
        assert_eq!(verdict(&r, Some(100), 90, Kind::Put, 0), Verdict::Drop);
        assert_eq!(verdict(&r, Some(95), 90, Kind::Delete, 0), Verdict::Drop);
        // Shadowed by a version newer than some snapshot is not enough.
        assert_eq!(verdict(&r, Some(101), 90, Kind::Put, 0), Verdict::Keep);
    }

    #[test]
    fn expired_values_are_dropped_at_the_bottom_and_become_tombstones_above() {
        let expired = NOW_MS;
        assert_eq!(
            verdict(&rules(100, true), None, 90, Kind::PutExpiring, expired),
            Verdict::Drop
        );
        // Above the bottom it must keep shadowing older versions below.
        assert_eq!(
            verdict(&rules(100, false), None, 90, Kind::PutExpiring, expired),
            Verdict::KeepAsTombstone
        );
        // A snapshot older than it still reads what is below it.
        assert_eq!(
            verdict(&rules(80, true), None, 90, Kind::PutExpiring, expired),
            Verdict::KeepAsTombstone
        );
    }

    #[test]
    fn tombstones_go_only_at_the_bottom_once_no_snapshot_needs_them() {
        assert_eq!(
            verdict(&rules(100, true), None, 90, Kind::Delete, 0),
            Verdict::Drop
        );
        // Something below may hold an older version it shadows.
        assert_eq!(
            verdict(&rules(100, false), None, 90, Kind::Delete, 0),
            Verdict::Keep
        );
        // A snapshot at 80 reads the version below the tombstone at 90, and readers
        // after 90 must still see the deletion: the tombstone stays.
        assert_eq!(
            verdict(&rules(80, true), None, 90, Kind::Delete, 0),
            Verdict::Keep
        );
    }

    fn entry(key: &str, seq: u64, kind: Kind, expire_at_ms: u64) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            seq,
            kind,
            expire_at_ms,
            value: if kind == Kind::Delete {
                Vec::new()
            } else {
                b"v".to_vec()
            },
        }
    }

    /// Runs a stream through `Retain`: the surviving (key, seq, kind, first).
    fn retain(r: Rules, stream: Vec<Entry>) -> Vec<(String, u64, Kind, bool)> {
        let mut retain = Retain::new(r);
        stream
            .into_iter()
            .filter_map(|mut e| {
                let first = retain.judge(&mut e, |_| false)?;
                Some((String::from_utf8(e.key).unwrap(), e.seq, e.kind, first))
            })
            .collect()
    }

    #[test]
    fn a_merged_stream_keeps_what_readers_can_see() {
        let stream = vec![
            // a: newest visible to all; older ones shadowed.
            entry("a", 9, Kind::Put, 0),
            entry("a", 5, Kind::Put, 0),
            entry("a", 3, Kind::Delete, 0),
            // b: a tombstone at the bottom goes, and so does what it shadowed.
            entry("b", 8, Kind::Delete, 0),
            entry("b", 2, Kind::Put, 0),
            // c: newer than the snapshot (10): both versions stay.
            entry("c", 12, Kind::Put, 0),
            entry("c", 7, Kind::Put, 0),
            entry("c", 6, Kind::Put, 0),
            // d: expired value (kept as a tombstone above the snapshot horizon).
            entry("d", 11, Kind::PutExpiring, NOW_MS - 1),
            entry("d", 4, Kind::Put, 0),
        ];
        let kept = retain(rules(10, true), stream);
        let want = [
            ("a", 9, Kind::Put, true),
            ("c", 12, Kind::Put, true),
            ("c", 7, Kind::Put, false),
            ("d", 11, Kind::Delete, true),
            ("d", 4, Kind::Put, false),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(k, s, kind, f)| (k.to_string(), *s, *kind, *f))
            .collect();
        assert_eq!(kept, want);
    }

    #[test]
    fn the_filter_judges_only_the_newest_version_every_reader_sees() {
        let r = rules(100, false);
        assert!(filterable(&r, None, 90, Verdict::Keep, Kind::Put));
        assert!(filterable(&r, None, 90, Verdict::Keep, Kind::PutExpiring));
        // An older version: the engine's own rule decides (it is shadowed or kept
        // for a snapshot).
        assert!(!filterable(&r, Some(95), 90, Verdict::Keep, Kind::Put));
        // A snapshot older than it may not see it yet.
        assert!(!filterable(&r, None, 120, Verdict::Keep, Kind::Put));
        assert!(!filterable(&r, None, 90, Verdict::Keep, Kind::Delete));
        assert!(!filterable(
            &r,
            None,
            90,
            Verdict::KeepAsTombstone,
            Kind::PutExpiring
        ));
        assert_eq!(rejected(&r), Verdict::KeepAsTombstone);
        assert_eq!(rejected(&rules(100, true)), Verdict::Drop);
    }

    #[test]
    fn a_rejected_entry_shadows_its_older_versions_or_goes_with_them() {
        let stream = || {
            vec![
                entry("a", 9, Kind::Put, 0),
                entry("a", 5, Kind::Put, 0),
                entry("b", 8, Kind::Put, 0),
            ]
        };
        let judge = |r: Rules| {
            let mut retain = Retain::new(r);
            stream()
                .into_iter()
                .filter_map(|mut e| {
                    retain.judge(&mut e, |e| e.key == b"a")?;
                    Some((String::from_utf8(e.key).unwrap(), e.seq, e.kind))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            judge(rules(10, false)),
            [
                ("a".to_string(), 9, Kind::Delete),
                ("b".to_string(), 8, Kind::Put)
            ]
        );
        assert_eq!(judge(rules(10, true)), [("b".to_string(), 8, Kind::Put)]);
    }

    #[test]
    fn a_tombstone_rewritten_from_an_expired_value_sheds_its_value() {
        let mut retain = Retain::new(rules(100, false));
        let mut e = entry("k", 90, Kind::PutExpiring, NOW_MS);
        assert_eq!(retain.judge(&mut e, |_| false), Some(true));
        assert_eq!(
            (e.kind, e.expire_at_ms, e.value.len()),
            (Kind::Delete, 0, 0)
        );
    }
}
