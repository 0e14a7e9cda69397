//! One series in the head: its closed chunks, the open chunk being appended
//! to, and the out-of-order samples.
//!
//! Why a module: in-order samples (the common case) go straight into a
//! Gorilla chunk, so the head holds them compressed, as Prometheus's head
//! does; a sample older than the series' newest one cannot be appended to a
//! chunk, so it waits in a small sorted map until the block is cut, where
//! both are merged.

use std::collections::BTreeMap;

use crate::chunk::{XorAppender, XorIter};
use crate::labels::Labels;

/// A full chunk, no longer appended to.
#[derive(Clone, Debug)]
pub(crate) struct ClosedChunk {
    pub min_t: i64,
    pub max_t: i64,
    pub bytes: Vec<u8>,
}

/// One series' samples in memory.
#[derive(Clone, Debug)]
pub(crate) struct MemSeries {
    pub labels: Labels,
    /// `labels.hash64()`, kept for the head's lookup table.
    pub hash: u64,
    closed: Vec<ClosedChunk>,
    open: XorAppender,
    open_min_t: i64,
    /// Newest in-order timestamp (`i64::MIN` while empty).
    pub max_t: i64,
    /// Out-of-order samples: timestamp → value bits.
    ooo: BTreeMap<i64, u64>,
}

impl MemSeries {
    pub fn new(labels: Labels, hash: u64) -> Self {
        Self {
            labels,
            hash,
            closed: Vec::new(),
            open: XorAppender::new(),
            open_min_t: i64::MIN,
            max_t: i64::MIN,
            ooo: BTreeMap::new(),
        }
    }

    /// The value bits stored at `t`, if any.
    pub fn lookup(&self, t: i64) -> Option<u64> {
        if t > self.max_t {
            return None;
        }
        if let Some(&b) = self.ooo.get(&t) {
            return Some(b);
        }
        let chunks = self
            .closed
            .iter()
            .filter(|c| c.min_t <= t && t <= c.max_t)
            .map(|c| c.bytes.as_slice())
            .chain((self.open.count() > 0 && self.open_min_t <= t).then(|| self.open.bytes()));
        for bytes in chunks {
            for s in XorIter::new(bytes) {
                match s {
                    Ok((st, v)) if st == t => return Some(v.to_bits()),
                    Ok((st, _)) if st > t => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        None
    }

    /// Stores a sample the caller has checked (no different value at `t`).
    pub fn insert(&mut self, t: i64, v: f64, chunk_samples_max: usize) {
        if t > self.max_t {
            if self.open.count() >= chunk_samples_max {
                let full = std::mem::take(&mut self.open);
                self.closed.push(ClosedChunk {
                    min_t: self.open_min_t,
                    max_t: self.max_t,
                    bytes: full.bytes().to_vec(),
                });
            }
            if self.open.count() == 0 {
                self.open_min_t = t;
            }
            // Cannot fail: t is past the open chunk's last timestamp and the
            // chunk is below its cap.
            let appended = self.open.append(t, v);
            debug_assert!(appended);
            self.max_t = t;
        } else if self.lookup(t).is_none() {
            self.ooo.insert(t, v.to_bits());
        }
    }

    /// Samples with `min_t <= t <= max_t`, sorted.
    pub fn samples(&self, min_t: i64, max_t: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let chunks = self
            .closed
            .iter()
            .filter(|c| c.max_t >= min_t && c.min_t <= max_t)
            .map(|c| c.bytes.as_slice())
            .chain(
                (self.open.count() > 0 && self.max_t >= min_t && self.open_min_t <= max_t)
                    .then(|| self.open.bytes()),
            );
        for bytes in chunks {
            // Head chunks are built in memory by the appender: never damaged.
            out.extend(
                XorIter::new(bytes)
                    .filter_map(|s| s.ok())
                    .filter(|&(t, _)| t >= min_t && t <= max_t),
            );
        }
        if !self.ooo.is_empty() {
            out.extend(
                self.ooo
                    .range(min_t..=max_t)
                    .map(|(&t, &b)| (t, f64::from_bits(b))),
            );
            out.sort_by_key(|s| s.0);
        }
        out
    }

    /// Oldest timestamp held, if any.
    pub fn min_t(&self) -> Option<i64> {
        let first = self
            .closed
            .first()
            .map(|c| c.min_t)
            .or((self.open.count() > 0).then_some(self.open_min_t));
        match (first, self.ooo.keys().next()) {
            (Some(a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b.copied()),
        }
    }

    /// Drops every sample before `t`, re-encoding the rest in order.
    pub fn drop_before(&mut self, t: i64, chunk_samples_max: usize) {
        let keep = self.samples(t, i64::MAX);
        let labels = std::mem::take(&mut self.labels);
        *self = Self::new(labels, self.hash);
        for (st, v) in keep {
            self.insert(st, v, chunk_samples_max);
        }
    }

    /// Bytes of chunk data held (for stats).
    pub fn chunk_bytes(&self) -> usize {
        self.closed.iter().map(|c| c.bytes.len()).sum::<usize>()
            + self.open.bytes().len()
            + self.ooo.len() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Limits;

    #[test]
    fn in_order_and_out_of_order_samples_merge() {
        let l = Labels::new([("__name__", "x")], &Limits::default()).unwrap();
        let h = l.hash64();
        let mut s = MemSeries::new(l, h);
        for t in (0..50).map(|i| i * 10) {
            s.insert(t, t as f64, 8);
        }
        s.insert(5, -1.0, 8);
        s.insert(495, -2.0, 8);
        assert_eq!(s.lookup(5).map(f64::from_bits), Some(-1.0));
        assert_eq!(s.lookup(40).map(f64::from_bits), Some(40.0));
        assert_eq!(s.lookup(41), None);
        let all = s.samples(i64::MIN, i64::MAX);
        assert_eq!(all.len(), 52);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(s.min_t(), Some(0));
        s.drop_before(100, 8);
        assert_eq!(s.samples(i64::MIN, i64::MAX).len(), 41, "100..=490 and 495");
        assert_eq!(s.min_t(), Some(100));
        assert_eq!(s.samples(200, 210), vec![(200, 200.0), (210, 210.0)]);
    }
}
