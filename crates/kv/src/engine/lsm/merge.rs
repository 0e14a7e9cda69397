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
pub(super) enum Merged<'d, 'a, V> {
    /// From the LSM (not staged): key and value, borrowed from the scan.
    Disk(&'d [u8], &'d [u8]),
    /// From the overlay: a staged live value.
    Staged(&'a [u8], &'a V),
}

/// A key and value borrowed from a scan.
pub(super) type Pair<'c> = (&'c [u8], &'c [u8]);

/// The disk side of a merge: a position in an ordered scan that lends its
/// current pair (so a forward scan's entries are read in place, never copied
/// into owned buffers on the way).
pub(super) trait Cursor {
    /// The current pair (the same until [`Cursor::skip`]); `None` at the end.
    fn peek(&mut self) -> Result<Option<Pair<'_>>, EngineError>;
    /// Moves past the current pair.
    fn skip(&mut self);
}

impl Cursor for lsm::DbIter {
    fn peek(&mut self) -> Result<Option<Pair<'_>>, EngineError> {
        let kv = lsm::DbIter::peek(self).map_err(super::storage)?;
        Ok(kv.map(|kv| (kv.key, kv.value)))
    }

    fn skip(&mut self) {
        lsm::DbIter::skip(self);
    }
}

/// A [`Cursor`] over an iterator of owned pairs (the reverse scan, which
/// copies anyway, and the tests).
pub(super) struct Owned<I> {
    iter: I,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl<I> Owned<I> {
    pub(super) fn new(iter: I) -> Self {
        Owned {
            iter,
            current: None,
        }
    }
}

impl<I: Iterator<Item = Result<(Vec<u8>, Vec<u8>), EngineError>>> Cursor for Owned<I> {
    fn peek(&mut self) -> Result<Option<Pair<'_>>, EngineError> {
        if self.current.is_none() {
            self.current = self.iter.next().transpose()?;
        }
        Ok(self
            .current
            .as_ref()
            .map(|(k, v)| (k.as_slice(), v.as_slice())))
    }

    fn skip(&mut self) {
        self.current = None;
    }
}

/// Calls `take` on each live entry of `disk` and `staged` (both ordered the
/// same way: ascending, or descending if `reverse`) in that order, the staged
/// state winning over the disk's for the same key, until both end or `take`
/// returns `false`. The disk is read only as far as needed.
pub(super) fn merge<'a, V: 'a>(
    disk: &mut impl Cursor,
    mut staged: impl Iterator<Item = (&'a [u8], &'a Option<V>)>,
    reverse: bool,
    mut take: impl FnMut(Merged<'_, 'a, V>) -> bool,
) -> Result<(), EngineError> {
    let mut from_stage = staged.next();
    loop {
        let stage_first = match (disk.peek()?, &from_stage) {
            (None, None) => return Ok(()),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((disk_key, _)), Some((staged_key, _))) => {
                let order = staged_key.cmp(&disk_key);
                match if reverse { order.reverse() } else { order } {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        // The staged state replaces the disk's.
                        disk.skip();
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
            let (key, value) = disk.peek()?.expect("checked");
            let more = take(Merged::Disk(key, value));
            disk.skip();
            more
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
        let mut disk = Owned::new(
            disk.iter()
                .map(|k| Ok((k.as_bytes().to_vec(), b"disk".to_vec()))),
        );
        let staged: Vec<(Vec<u8>, Option<&str>)> = staged
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), *v))
            .collect();
        let mut out = Vec::new();
        merge(
            &mut disk,
            staged.iter().map(|(k, v)| (k.as_slice(), v)),
            reverse,
            |m| {
                out.push(match m {
                    Merged::Disk(k, _) => format!("{}=disk", String::from_utf8_lossy(k)),
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
