//! Listing a bucket by prefix and delimiter, merged across the object shards.
//!
//! Why a module: the object table is sharded by a hash of (bucket, key), so one
//! bucket's keys are spread over every shard; each shard's rows are sorted, so a
//! listing is a k-way merge of one `lsm` scan per shard (a heap of at most one row per
//! shard): memory stays bounded by the shard count plus the page (`max`), whatever the
//! bucket's size. With a delimiter, the keys sharing a *common prefix* (up to and
//! including the delimiter) collapse to one entry, and the merge restarts every
//! shard's scan just past that prefix instead of reading the keys under it.
//!
//! The continuation is a **position**, not a cursor: the first key the next page
//! may start at. It is stable (the same token gives the same next page whatever was
//! listed before) and works across restarts; [`Listing::next`] carries it, the API
//! encodes it as the opaque `NextContinuationToken`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Meta, ObjectRow, Result, bucket_prefix, corrupt, decode};

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects, by key.
    pub objects: Vec<(String, ObjectRow)>,
    /// Common prefixes, in key order (interleaved with `objects` in the key space).
    pub prefixes: Vec<String>,
    /// Where the next page starts (a key, possibly not existing), when more follow.
    pub next: Option<String>,
    /// The last key or common prefix returned (for ListObjects V1's `NextMarker`).
    pub last: Option<String>,
}

/// The smallest string greater than every string starting with `p`; `None` if no
/// such string exists (all bytes 0xFF).
pub fn prefix_end(p: &[u8]) -> Option<Vec<u8>> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

struct Merge<'a> {
    iters: Vec<std::iter::Peekable<lsm::DbIter>>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    meta: &'a Meta,
}

impl<'a> Merge<'a> {
    /// Scans of every shard over `[lo, hi)`.
    fn new(meta: &'a Meta, lo: &[u8], hi: Option<&[u8]>) -> Result<Self> {
        let mut m = Merge {
            iters: Vec::new(),
            heap: BinaryHeap::new(),
            meta,
        };
        m.restart(lo, hi)?;
        Ok(m)
    }

    fn restart(&mut self, lo: &[u8], hi: Option<&[u8]>) -> Result<()> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        self.iters.clear();
        self.heap.clear();
        for (i, db) in self.meta.shards().iter().enumerate() {
            let upper = hi.map_or(Unbounded, Excluded);
            let mut it = db.scan((Included(lo), upper))?.peekable();
            if let Some(head) = it.peek() {
                match head {
                    Ok(kv) => self.heap.push(Reverse((kv.key.clone(), i))),
                    Err(_) => {
                        return Err(it
                            .next()
                            .and_then(|r| r.err())
                            .unwrap_or_else(|| corrupt("scan", "error vanished")));
                    }
                }
            }
            self.iters.push(it);
        }
        Ok(())
    }

    /// The next row in key order across shards.
    fn next(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let kv = match self.iters[i].next() {
            Some(kv) => kv?,
            None => return Err(corrupt("scan", "a shard's head vanished")),
        };
        if let Some(head) = self.iters[i].peek() {
            match head {
                Ok(next) => self.heap.push(Reverse((next.key.clone(), i))),
                Err(_) => {
                    if let Some(Err(e)) = self.iters[i].next() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(Some((kv.key, kv.value)))
    }
}

impl Meta {
    /// Lists `bucket`: keys starting with `prefix`, from key `start` on (inclusive),
    /// collapsing keys by `delimiter`, at most `max` entries (objects plus prefixes).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start: &str,
        max: usize,
    ) -> Result<Listing> {
        let base = bucket_prefix(b'o', bucket);
        let with = |s: &[u8]| {
            let mut k = base.clone();
            k.extend_from_slice(s);
            k
        };
        let lo = with(std::cmp::max(start, prefix).as_bytes());
        let hi = prefix_end(&with(prefix.as_bytes()));
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut merge = Merge::new(self, &lo, hi.as_deref())?;
        let mut page = Listing::default();
        let mut count = 0;
        while let Some((k, v)) = merge.next()? {
            let key = String::from_utf8(k[base.len()..].to_vec())
                .map_err(|e| corrupt("object key", e))?;
            if count == max {
                page.next = Some(key);
                break;
            }
            let common = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|at| key[..prefix.len() + at + d.len()].to_string())
            });
            count += 1;
            match common {
                Some(cp) => {
                    // Skip every key under the common prefix: restart past it.
                    let after = prefix_end(&with(cp.as_bytes()));
                    page.last = Some(cp.clone());
                    page.prefixes.push(cp);
                    match after {
                        Some(after) if hi.as_ref().is_none_or(|hi| after < *hi) => {
                            merge.restart(&after, hi.as_deref())?;
                        }
                        _ => break,
                    }
                }
                None => {
                    page.last = Some(key.clone());
                    page.objects.push((key, decode(&v, "object")?));
                }
            }
        }
        Ok(page)
    }
}
