//! Compaction: merging small blocks into bigger ones.
//!
//! Why a module: blocks are cut from the head every `block_range_ms` (2 h), so
//! a year is 4,380 blocks and a long query would open them all, each with its
//! own index repeating the same label pairs. Compaction merges the blocks of a
//! closed time window into one block of the next range (2 h → 6 h → 24 h →
//! 3 d, as Prometheus's levels), so older data lives in fewer, larger blocks.
//! The choice is the pure [`plan`]; [`crate::Db::maintain`] does the I/O:
//! write the merged block (which names its sources), swap it in, delete the
//! sources (a crash in between leaves sources that open deletes).

use crate::block::Meta;

/// The blocks to merge next (their ids), oldest window first; `None` if
/// nothing is due. A window of range `R` (aligned to multiples of `R`) is
/// merged when it holds at least two blocks of one resolution, all shorter
/// than `R` and inside it, and a block of that resolution already exists past
/// its end (so no more data can arrive for it).
pub fn plan(metas: &[Meta], ranges_ms: &[i64]) -> Option<Vec<String>> {
    for &range in ranges_ms.iter().skip(1) {
        let mut best: Option<(i64, Vec<&Meta>)> = None;
        let mut resolutions: Vec<i64> = metas.iter().map(|m| m.resolution_ms).collect();
        resolutions.sort_unstable();
        resolutions.dedup();
        for res in resolutions {
            let same: Vec<&Meta> = metas.iter().filter(|m| m.resolution_ms == res).collect();
            let newest = same.iter().map(|m| m.max_t).max().unwrap_or(i64::MIN);
            let mut windows: std::collections::BTreeMap<i64, Vec<&Meta>> = Default::default();
            for m in same.iter().filter(|m| m.range_ms() < range) {
                let start = m.min_t.div_euclid(range).saturating_mul(range);
                if m.max_t <= start.saturating_add(range) {
                    windows.entry(start).or_default().push(m);
                }
            }
            for (start, group) in windows {
                if group.len() >= 2 && newest >= start.saturating_add(range) {
                    if best.as_ref().is_none_or(|(s, _)| start < *s) {
                        best = Some((start, group));
                    }
                    break;
                }
            }
        }
        if let Some((_, group)) = best {
            return Some(group.iter().map(|m| m.id.clone()).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, min_t: i64, max_t: i64, res: i64) -> Meta {
        Meta::for_test(id, min_t, max_t, res)
    }

    #[test]
    fn closed_windows_merge_open_ones_wait() {
        let ranges = [2, 6, 24];
        // Blocks [0,2) [2,4) [4,6) [6,8): window [0,6) is full → merge.
        let ms = [
            meta("a", 0, 2, 0),
            meta("b", 2, 4, 0),
            meta("c", 4, 6, 0),
            meta("d", 6, 8, 0),
        ];
        assert_eq!(
            plan(&ms, &ranges),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        // [0,2) [2,4) with nothing after: the window may still fill.
        assert_eq!(plan(&ms[..2], &ranges), None);
        // A gap: [0,2) [4,6) and a later block [6,8): window closed → merge.
        let gap = [meta("a", 0, 2, 0), meta("c", 4, 6, 0), meta("d", 6, 8, 0)];
        assert_eq!(plan(&gap, &ranges), Some(vec!["a".into(), "c".into()]));
        // Resolutions never mix.
        let mixed = [
            meta("a", 0, 2, 0),
            meta("b", 2, 4, 60_000),
            meta("d", 6, 8, 0),
        ];
        assert_eq!(plan(&mixed, &ranges), None);
        // After merging to 6, the next level merges four 6s into 24.
        let six: Vec<Meta> = (0..4)
            .map(|i| meta(&format!("s{i}"), i * 6, i * 6 + 6, 0))
            .collect();
        assert_eq!(plan(&six, &ranges).map(|v| v.len()), Some(4));
    }
}
