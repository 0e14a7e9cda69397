//! Reading through the open batch: the LSM's ordered entries merged with the
//! staged overlay, forward or in reverse.
//!
//! Why a module: SCAN (top-level keys) and subkey range reads (`HGETALL`,
//! `ZRANGE`, `LRANGE`) both read the disk's order and the batch's order
//! together, and both must let a staged write hide the disk's version of the
//! same key (a staged delete hides it entirely). One merge, used by both.

use std::cmp::Ordering;

use crate::engine::EngineError;

/// One entry of the merged order.
pub(super) enum Merged<'a, V> {
    /// From the LSM (not staged): key and value.
    Disk(Vec<u8>, Vec<u8>),
    /// From the overlay: a staged live value.
    Staged(&'a [u8], &'a V),
}

/// Calls `take` on each live entry of `disk` and `staged` (both ordered the
/// same way: ascending, or descending if `reverse`) in that order, the staged
/// state winning over the disk's for the same key, until both end or `take`
/// returns `false`. The disk is read only as far as needed.
pub(super) fn merge<'a, V: 'a>(
    mut disk: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), EngineError>>,
    mut staged: impl Iterator<Item = (&'a [u8], &'a Option<V>)>,
    reverse: bool,
    mut take: impl FnMut(Merged<'a, V>) -> bool,
) -> Result<(), EngineError> {
    let mut from_disk = disk.next().transpose()?;
    let mut from_stage = staged.next();
    loop {
        let stage_first = match (&from_disk, &from_stage) {
            (None, None) => return Ok(()),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((disk_key, _)), Some((staged_key, _))) => {
                let order = staged_key.cmp(&disk_key.as_slice());
                match if reverse { order.reverse() } else { order } {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        // The staged state replaces the disk's.
                        from_disk = disk.next().transpose()?;
                        true
                    }
                    Ordering::Greater => false,
                }
            }
        };
        let more = if stage_first {
            let (key, state) = from_stage.take().expect("checked");
            from_stage = staged.next();
            match state {
                Some(value) => take(Merged::Staged(key, value)),
                None => true, // deleted in the open batch
            }
        } else {
            let (key, value) = from_disk.take().expect("checked");
            if !take(Merged::Disk(key, value)) {
                return Ok(());
            }
            from_disk = disk.next().transpose()?;
            true
        };
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        disk: &[&str],
        staged: &[(&str, Option<&str>)],
        reverse: bool,
        limit: usize,
    ) -> Vec<String> {
        let disk = disk
            .iter()
            .map(|k| Ok((k.as_bytes().to_vec(), b"disk".to_vec())));
        let staged: Vec<(Vec<u8>, Option<&str>)> = staged
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), *v))
            .collect();
        let mut out = Vec::new();
        merge(
            disk,
            staged.iter().map(|(k, v)| (k.as_slice(), v)),
            reverse,
            |m| {
                out.push(match m {
                    Merged::Disk(k, _) => format!("{}=disk", String::from_utf8(k).unwrap()),
                    Merged::Staged(k, v) => format!("{}={v}", String::from_utf8_lossy(k)),
                });
                out.len() < limit
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn staged_states_win_both_ways_and_limits_stop_early() {
        let disk = ["a", "c", "e"];
        let staged = [("b", Some("new")), ("c", None), ("e", Some("changed"))];
        assert_eq!(
            run(&disk, &staged, false, 9),
            ["a=disk", "b=new", "e=changed"]
        );
        let rdisk = ["e", "c", "a"];
        let rstaged = [("e", Some("changed")), ("c", None), ("b", Some("new"))];
        assert_eq!(
            run(&rdisk, &rstaged, true, 9),
            ["e=changed", "b=new", "a=disk"]
        );
        assert_eq!(run(&rdisk, &rstaged, true, 2), ["e=changed", "b=new"]);
        assert_eq!(run(&[], &[("x", None)], false, 9), Vec::<String>::new());
    }
}
