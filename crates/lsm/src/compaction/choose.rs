//! The compaction picker: which tables merge next, and into which level.
//!
//! Why a module of its own: the choice is a plain function of (options, the version's
//! levels, the round-robin pointers) with no I/O and no locks, so it is unit-tested over
//! constructed versions (as fjall's `compaction::choose`), and the code that runs the
//! choice (`run`) never decides anything.
//!
//! The rules (leveled, LevelDB/RocksDB style):
//! * When level 0 holds `l0_compaction_trigger` tables, an L0 table whose key range
//!   overlaps no other L0 table and no level-1 table is moved down alone, as a manifest
//!   edit (the oldest such table first): sequential or partitioned writes then reach
//!   level 1 without a rewrite. Otherwise all of level 0 merges with the level-1 tables
//!   overlapping its combined key range, into level 1, at once: its tables overlap, and
//!   merging only some would put older versions of a key above newer ones.
//! * Otherwise the level `n ≥ 1` whose size most exceeds its target
//!   (`level1_size_bytes · multiplier^(n-1)`, score = size / target, picked when ≥ 1)
//!   gives one table: the first that starts after the level's pointer (wrapping to the
//!   first table), so successive compactions sweep the key space round-robin. It merges
//!   with the overlapping tables of level `n+1`.
//! * A single input with nothing overlapping below is moved, not rewritten.
//! * Tombstones may be dropped only when no level below the output holds keys in the
//!   inputs' range (`bottom`).

use crate::manifest::LEVELS;
use crate::options::Options;
use crate::version::{HasMeta, key_range, overlapping};

/// One unit of compaction work, decided from the version alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Choice<T> {
    /// Input tables with their levels, shallower (newer data) first.
    pub inputs: Vec<(usize, T)>,
    /// Level the outputs go to (≥ 1).
    pub output_level: usize,
    /// The single input has no overlap below: re-link it into `output_level` instead of
    /// rewriting it.
    pub trivial_move: bool,
    /// No level below `output_level` holds keys in the inputs' range, so a tombstone
    /// there shadows nothing once no snapshot needs it.
    pub bottom: bool,
    /// The new round-robin pointer `(level, key)` to record when this choice is taken.
    pub pointer: Option<(usize, Vec<u8>)>,
}

/// Target size of `level` (≥ 1): `level1_size_bytes · multiplier^(level-1)`, saturating.
pub(crate) fn level_target_bytes(opts: &Options, level: usize) -> u64 {
    opts.level1_size_bytes.saturating_mul(
        opts.level_size_multiplier
            .saturating_pow(level.saturating_sub(1) as u32),
    )
}

/// The background compaction to run next over `levels` (the version's tables, level 0
/// newest first, deeper levels sorted by key), or `None` when every level is within
/// its target. `pointers[level]` is the largest key of the table last compacted out of
/// `level` (empty at first).
pub(crate) fn choose<T: HasMeta + Clone>(
    opts: &Options,
    levels: &[Vec<T>],
    pointers: &[Vec<u8>],
) -> Option<Choice<T>> {
    debug_assert_eq!(levels.len(), LEVELS);
    debug_assert_eq!(pointers.len(), LEVELS);
    if levels[0].len() >= opts.l0_compaction_trigger {
        if let Some(alone) = l0_movable(levels) {
            return Some(finish(levels, vec![(0, alone)], 1, true, None));
        }
        let (lo, hi) = key_range(&levels[0]);
        let mut inputs: Vec<_> = levels[0].iter().map(|t| (0, t.clone())).collect();
        inputs.extend(
            overlapping(&levels[1], &lo, &hi)
                .into_iter()
                .map(|t| (1, t)),
        );
        return Some(finish(levels, inputs, 1, true, None));
    }
    let (level, score) = (1..LEVELS - 1)
        .map(|l| {
            let target = level_target_bytes(opts, l) as f64;
            (l, crate::version::level_bytes(&levels[l]) as f64 / target)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if score < 1.0 {
        return None;
    }
    let table = levels[level]
        .iter()
        .find(|t| t.meta().smallest > pointers[level])
        .or_else(|| levels[level].first())?
        .clone();
    let meta = table.meta();
    let pointer = Some((level, meta.largest.clone()));
    let below = overlapping(&levels[level + 1], &meta.smallest, &meta.largest);
    let mut inputs = vec![(level, table)];
    inputs.extend(below.into_iter().map(|t| (level + 1, t)));
    Some(finish(levels, inputs, level + 1, true, pointer))
}

/// The oldest level-0 table whose key range meets no other level-0 table and no
/// level-1 table: it holds the only versions of its keys above level 2, so it can move
/// to level 1 unchanged.
fn l0_movable<T: HasMeta + Clone>(levels: &[Vec<T>]) -> Option<T> {
    let meets = |a: &T, b: &T| {
        let (a, b) = (a.meta(), b.meta());
        a.smallest <= b.largest && b.smallest <= a.largest
    };
    let l0 = &levels[0];
    (0..l0.len())
        .rev()
        .find(|&i| {
            let t = &l0[i];
            l0.iter().enumerate().all(|(j, u)| j == i || !meets(t, u))
                && overlapping(&levels[1], &t.meta().smallest, &t.meta().largest).is_empty()
        })
        .map(|i| l0[i].clone())
}

/// The full compaction of `Db::compact`: every table merges into the deepest non-empty
/// level (at least 1), rewriting everything so all garbage goes. `None` when empty.
pub(crate) fn choose_full<T: HasMeta + Clone>(levels: &[Vec<T>]) -> Option<Choice<T>> {
    let inputs: Vec<_> = levels
        .iter()
        .enumerate()
        .flat_map(|(l, tables)| tables.iter().map(move |t| (l, t.clone())))
        .collect();
    if inputs.is_empty() {
        return None;
    }
    let output_level = (1..levels.len())
        .rev()
        .find(|l| !levels[*l].is_empty())
        .unwrap_or(1);
    Some(finish(levels, inputs, output_level, false, None))
}

/// Completes a choice: whether it is a trivial move, and whether it is at the bottom.
fn finish<T: HasMeta + Clone>(
    levels: &[Vec<T>],
    inputs: Vec<(usize, T)>,
    output_level: usize,
    allow_move: bool,
    pointer: Option<(usize, Vec<u8>)>,
) -> Choice<T> {
    debug_assert!(output_level >= 1 && output_level < levels.len());
    let tables: Vec<&T> = inputs.iter().map(|(_, t)| t).collect();
    let (lo, hi) = key_range(&tables);
    let overlaps_output = |l: usize| !overlapping(&levels[l], &lo, &hi).is_empty();
    let trivial_move = allow_move
        && match inputs.as_slice() {
            [(level, _)] => *level == output_level - 1 && !overlaps_output(output_level),
            _ => false,
        };
    let bottom = !(output_level + 1..levels.len()).any(overlaps_output);
    Choice {
        inputs,
        output_level,
        trivial_move,
        bottom,
        pointer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sstable::TableMeta;

    /// A table summary: id, key range, size in MiB.
    fn t(id: u64, smallest: &str, largest: &str, size_mib: u64) -> TableMeta {
        TableMeta {
            id,
            size_bytes: size_mib << 20,
            smallest: smallest.as_bytes().to_vec(),
            largest: largest.as_bytes().to_vec(),
            seq_min: id,
            seq_max: id,
            entries: 1,
        }
    }

    fn opts() -> Options {
        Options {
            l0_compaction_trigger: 4,
            level1_size_bytes: 10 << 20,
            level_size_multiplier: 10,
            ..Options::default()
        }
    }

    fn version(levels: Vec<Vec<TableMeta>>) -> Vec<Vec<TableMeta>> {
        let mut v = levels;
        v.resize(LEVELS, Vec::new());
        v
    }

    fn no_pointers() -> Vec<Vec<u8>> {
        vec![Vec::new(); LEVELS]
    }

    fn input_ids(c: &Choice<TableMeta>) -> Vec<(usize, u64)> {
        c.inputs.iter().map(|(l, t)| (*l, t.id)).collect()
    }

    #[test]
    fn nothing_to_do_when_every_level_is_within_its_target() {
        let v = version(vec![
            vec![t(9, "a", "z", 1), t(8, "a", "z", 1), t(7, "a", "z", 1)],
            vec![t(1, "a", "m", 5), t(2, "n", "z", 4)], // 9 MiB of 10
            vec![t(3, "a", "z", 99)],                   // 99 MiB of 100
        ]);
        assert_eq!(choose(&opts(), &v, &no_pointers()), None);
        assert_eq!(choose(&opts(), &version(vec![]), &no_pointers()), None);
    }

    #[test]
    fn l0_file_count_triggers_all_of_l0_with_the_overlapping_l1_tables() {
        let l0 = vec![
            t(10, "d", "f", 1),
            t(9, "p", "q", 1),
            t(8, "e", "g", 1),
            t(7, "c", "d", 1),
        ];
        let l1 = vec![
            t(1, "a", "b", 1),
            t(2, "c", "c", 1), // touches only L0 table 7
            t(3, "h", "o", 1), // inside the combined range, overlapping no single L0 table
            t(4, "q", "r", 1),
            t(5, "s", "u", 1),
        ];
        let v = version(vec![l0.clone(), l1]);
        let c = choose(&opts(), &v, &no_pointers()).expect("4 L0 tables trigger");
        assert_eq!(
            input_ids(&c),
            vec![(0, 10), (0, 9), (0, 8), (0, 7), (1, 2), (1, 3), (1, 4)]
        );
        assert_eq!(
            (c.output_level, c.trivial_move, c.pointer),
            (1, false, None)
        );
        // One table short of the trigger: nothing.
        let v = version(vec![l0[..3].to_vec()]);
        assert_eq!(choose(&opts(), &v, &no_pointers()), None);
    }

    #[test]
    fn l0_wins_over_an_oversized_level() {
        let v = version(vec![vec![t(10, "a", "b", 1); 4], vec![t(1, "x", "z", 500)]]);
        let c = choose(&opts(), &v, &no_pointers()).unwrap();
        assert_eq!(c.output_level, 1);
        // The L0 tables are disjoint from level 1: only they merge.
        assert_eq!(c.inputs.len(), 4);
    }

    #[test]
    fn the_level_with_the_highest_score_gives_a_table_to_the_next_level() {
        // L1: 15 MiB of 10 (score 1.5); L2: 300 MiB of 100 (score 3).
        let v = version(vec![
            vec![],
            vec![t(1, "a", "c", 15)],
            vec![
                t(2, "a", "f", 100),
                t(3, "g", "m", 100),
                t(4, "n", "z", 100),
            ],
            vec![
                t(5, "a", "e", 1),
                t(6, "f", "h", 1),
                t(7, "i", "k", 1),
                t(8, "x", "z", 1),
            ],
        ]);
        let c = choose(&opts(), &v, &no_pointers()).unwrap();
        // Table 2 ("a".."f") with the L3 tables it overlaps: the expansion stops at the
        // table's range.
        assert_eq!(input_ids(&c), vec![(2, 2), (3, 5), (3, 6)]);
        assert_eq!(c.output_level, 3);
        assert_eq!(c.pointer, Some((2, b"f".to_vec())));
        assert!(!c.trivial_move);
        assert!(c.bottom, "nothing below level 3");
    }

    #[test]
    fn compaction_pointer_sweeps_the_level_round_robin() {
        let v = version(vec![
            vec![],
            vec![t(1, "a", "c", 5), t(2, "d", "f", 5), t(3, "g", "i", 5)],
        ]);
        let mut pointers = no_pointers();
        let mut picked = Vec::new();
        for _ in 0..4 {
            let c = choose(&opts(), &v, &pointers).unwrap();
            picked.push(c.inputs[0].1.id);
            let (level, key) = c.pointer.unwrap();
            pointers[level] = key;
        }
        assert_eq!(picked, vec![1, 2, 3, 1], "wraps to the first table");
        // A pointer between tables picks the next one that starts after it.
        pointers[1] = b"e".to_vec();
        assert_eq!(choose(&opts(), &v, &pointers).unwrap().inputs[0].1.id, 3);
    }

    #[test]
    fn a_lone_table_with_no_overlap_below_moves_instead_of_merging() {
        let v = version(vec![
            vec![],
            vec![t(1, "a", "c", 15)],
            vec![t(2, "x", "z", 1)],
        ]);
        let c = choose(&opts(), &v, &no_pointers()).unwrap();
        assert_eq!(input_ids(&c), vec![(1, 1)]);
        assert!(c.trivial_move);
        // L0 with trigger 1: a single L0 table over an empty L1 moves too.
        let o = Options {
            l0_compaction_trigger: 1,
            ..opts()
        };
        let c = choose(&o, &version(vec![vec![t(9, "a", "b", 1)]]), &no_pointers()).unwrap();
        assert!(c.trivial_move && c.output_level == 1);
    }

    #[test]
    fn bottom_only_when_no_deeper_level_overlaps_the_inputs() {
        let v = version(vec![
            vec![t(10, "c", "d", 1); 4],
            vec![t(1, "a", "e", 1)],
            vec![],
            vec![t(2, "x", "z", 1)],
        ]);
        assert!(choose(&opts(), &v, &no_pointers()).unwrap().bottom);
        let v = version(vec![
            vec![t(10, "c", "d", 1); 4],
            vec![t(1, "a", "e", 1)],
            vec![],
            vec![t(2, "e", "z", 1)], // shares key "e" with the L1 input
        ]);
        assert!(!choose(&opts(), &v, &no_pointers()).unwrap().bottom);
    }

    #[test]
    fn full_compaction_rewrites_everything_into_the_deepest_level() {
        let v = version(vec![
            vec![t(10, "c", "d", 1)],
            vec![t(1, "a", "e", 1)],
            vec![],
            vec![t(2, "x", "z", 1)],
        ]);
        let c = choose_full(&v).unwrap();
        assert_eq!(input_ids(&c), vec![(0, 10), (1, 1), (3, 2)]);
        assert_eq!(c.output_level, 3);
        assert!(c.bottom && !c.trivial_move);
        // A lone table is rewritten, not moved: the point is dropping garbage.
        let c = choose_full(&version(vec![vec![t(10, "c", "d", 1)]])).unwrap();
        assert_eq!((c.output_level, c.trivial_move), (1, false));
        assert_eq!(choose_full(&version(vec![])), None::<Choice<TableMeta>>);
    }

    #[test]
    fn an_l0_table_that_overlaps_nothing_moves_to_l1_alone_oldest_first() {
        // Sequential writes: disjoint L0 tables above everything in L1.
        let l1 = vec![t(1, "a", "c", 1), t(2, "d", "f", 1)];
        let l0 = vec![
            t(13, "s", "t", 1),
            t(12, "p", "q", 1),
            t(11, "j", "m", 1),
            t(10, "g", "h", 1),
        ];
        let v = version(vec![l0.clone(), l1.clone()]);
        let c = choose(&opts(), &v, &no_pointers()).expect("4 L0 tables trigger");
        assert_eq!(input_ids(&c), vec![(0, 10)], "the oldest first");
        assert!(c.trivial_move && c.output_level == 1);
        // The oldest overlaps another L0 table and the next one overlaps L1: the
        // newest, which overlaps nothing, moves.
        let l0 = vec![
            t(13, "s", "t", 1),
            t(12, "e", "q", 1),
            t(11, "j", "m", 1),
            t(10, "k", "l", 1),
        ];
        let c = choose(&opts(), &version(vec![l0, l1.clone()]), &no_pointers()).unwrap();
        assert_eq!(input_ids(&c), vec![(0, 13)]);
        assert!(c.trivial_move);
        // A table touching an L1 table at one key is no move: all of L0 merges.
        let l0 = vec![
            t(13, "f", "g", 1), // shares "f" with L1 table 2
            t(12, "h", "i", 1),
            t(11, "h", "i", 1),
            t(10, "h", "j", 1),
        ];
        let c = choose(&opts(), &version(vec![l0, l1]), &no_pointers()).unwrap();
        assert!(!c.trivial_move);
        assert_eq!(c.inputs.len(), 5);
    }
}
