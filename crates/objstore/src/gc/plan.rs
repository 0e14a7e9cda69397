//! The garbage-collection planner and pacer: which files to compact, and how long to
//! wait between copies. Pure functions of their inputs, no I/O, no locks, so they are
//! tested over constructed file lists (as `lsm`'s `compaction::choose`).
//!
//! Rules:
//! * Only *sealed* files are candidates: the read-write file still takes appends, and
//!   a sealing file may still get the mappings of its last records.
//! * A file qualifies when its live ratio (live record bytes / file bytes) is below
//!   `live_ratio_max`. The ratio, not the garbage in bytes, is what matters: copying
//!   costs the live bytes, and what comes back is the rest.
//! * The emptiest files go first (most space back per byte copied; a file with nothing
//!   live costs no copy at all), ties by file number (oldest first).
//! * A run takes at most `files_max` files and copies at most `copy_bytes_max` live
//!   bytes, but always at least one qualifying file, so one big file cannot starve.

use std::time::Duration;

use crate::datafile::{FileInfo, FileState};

/// The knobs of one garbage-collection run (from [`crate::Options`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Compact files whose live ratio is below this.
    pub live_ratio_max: f64,
    /// Most files per run.
    pub files_max: usize,
    /// Most live bytes copied per run (the first file is taken regardless).
    pub copy_bytes_max: u64,
}

/// The live ratio of a file (1.0 for an empty one: nothing to gain).
pub fn live_ratio(f: &FileInfo) -> f64 {
    if f.size_bytes == 0 {
        1.0
    } else {
        f.live_bytes as f64 / f.size_bytes as f64
    }
}

/// The files to compact in this run, in the order to compact them.
pub fn choose(files: &[FileInfo], policy: &Policy) -> Vec<u64> {
    let mut candidates: Vec<&FileInfo> = files
        .iter()
        .filter(|f| f.state == FileState::Sealed && live_ratio(f) < policy.live_ratio_max)
        .collect();
    candidates.sort_by(|a, b| {
        live_ratio(a)
            .total_cmp(&live_ratio(b))
            .then(a.file_id.cmp(&b.file_id))
    });
    let mut chosen = Vec::new();
    let mut copy_bytes = 0u64;
    for f in candidates {
        if chosen.len() >= policy.files_max {
            break;
        }
        let total = copy_bytes.saturating_add(f.live_bytes);
        if !chosen.is_empty() && total > policy.copy_bytes_max {
            break;
        }
        chosen.push(f.file_id);
        copy_bytes = total;
    }
    chosen
}

/// How long to pause after copying `bytes_done` bytes in `elapsed`, so the copy rate
/// stays at or under `bytes_per_sec` (0: unlimited, never pause).
pub fn pause(bytes_done: u64, bytes_per_sec: u64, elapsed: Duration) -> Duration {
    if bytes_per_sec == 0 {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(bytes_done as f64 / bytes_per_sec as f64);
    due.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(file_id: u64, state: FileState, size_bytes: u64, live_bytes: u64) -> FileInfo {
        FileInfo {
            file_id,
            state,
            size_bytes,
            live_bytes,
            live_objects: live_bytes / 10,
        }
    }

    const POLICY: Policy = Policy {
        live_ratio_max: 0.5,
        files_max: 10,
        copy_bytes_max: u64::MAX,
    };

    #[test]
    fn only_sealed_files_under_the_ratio_emptiest_first() {
        let files = [
            file(1, FileState::Sealed, 1000, 400),
            file(2, FileState::Sealed, 1000, 500), // exactly at the ratio: kept
            file(3, FileState::Sealed, 1000, 0),
            file(4, FileState::Active, 1000, 0),
            file(5, FileState::Sealing, 1000, 0),
            file(6, FileState::Sealed, 1000, 100),
            file(7, FileState::Sealed, 1000, 100),
        ];
        assert_eq!(choose(&files, &POLICY), vec![3, 6, 7, 1]);
    }

    #[test]
    fn runs_are_bounded_but_never_starve() {
        let files = [
            file(1, FileState::Sealed, 1000, 300),
            file(2, FileState::Sealed, 1000, 200),
            file(3, FileState::Sealed, 1000, 100),
        ];
        let few = Policy {
            files_max: 2,
            ..POLICY
        };
        assert_eq!(choose(&files, &few), vec![3, 2]);
        let cheap = Policy {
            copy_bytes_max: 350,
            ..POLICY
        };
        assert_eq!(choose(&files, &cheap), vec![3, 2]);
        let tiny = Policy {
            copy_bytes_max: 1,
            ..POLICY
        };
        assert_eq!(
            choose(&files, &tiny),
            vec![3],
            "one file even over the budget"
        );
        let off = Policy {
            live_ratio_max: 0.0,
            ..POLICY
        };
        assert!(
            choose(&files, &off).is_empty(),
            "ratio 0 turns compaction off"
        );
    }

    #[test]
    fn pauses_keep_the_rate() {
        let s = Duration::from_secs;
        assert_eq!(pause(100, 0, s(0)), Duration::ZERO);
        assert_eq!(pause(100, 100, s(0)), s(1));
        assert_eq!(pause(100, 100, s(2)), Duration::ZERO, "behind: no pause");
        assert_eq!(pause(300, 100, s(1)), s(2));
    }

    proptest! {
        #[test]
        fn choices_respect_every_rule(
            raw in proptest::collection::vec((0u8..3, 1u64..10_000, 0u64..10_000), 0..40),
            ratio in 0.0f64..1.0,
            files_max in 1usize..8,
            copy_bytes_max in 0u64..50_000,
        ) {
            let states = [FileState::Active, FileState::Sealing, FileState::Sealed];
            let files: Vec<FileInfo> = raw
                .iter()
                .enumerate()
                .map(|(i, &(s, size, live))| file(i as u64, states[s as usize], size, live.min(size)))
                .collect();
            let policy = Policy { live_ratio_max: ratio, files_max, copy_bytes_max };
            let chosen = choose(&files, &policy);
            prop_assert!(chosen.len() <= files_max);
            let picked: Vec<&FileInfo> = chosen.iter().map(|&id| &files[id as usize]).collect();
            for f in &picked {
                prop_assert_eq!(f.state, FileState::Sealed);
                prop_assert!(live_ratio(f) < ratio);
            }
            for w in picked.windows(2) {
                prop_assert!(live_ratio(w[0]) <= live_ratio(w[1]));
            }
            let copied: u64 = picked.iter().map(|f| f.live_bytes).sum();
            prop_assert!(picked.len() <= 1 || copied <= copy_bytes_max);
            let qualifying = files
                .iter()
                .filter(|f| f.state == FileState::Sealed && live_ratio(f) < ratio)
                .count();
            prop_assert_eq!(chosen.is_empty(), qualifying == 0, "never starves");
        }
    }
}
