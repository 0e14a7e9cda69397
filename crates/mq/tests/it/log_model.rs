//! Property test: random sequences of append / read / retention / reopen, with segments
//! tiny enough to roll every few batches, against a model that lays out the same
//! segments in memory. Reads return exactly the model's batches; offsets are contiguous;
//! start and end offsets match; a reopen changes nothing.
#![allow(clippy::unwrap_used)]

use crate::log_support;

use log_support::{batch, with_base};
use mq::log::retention::{SegmentStat, segments_to_delete};
use mq::log::{FlushPolicy, LogConfig, PartitionLog};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Append a batch of this many records, `ts_step` ms after the previous one.
    Append {
        records: usize,
        ts_step: i64,
    },
    /// Read from a point between start and end (a fraction in 0..=1000) with a budget.
    Read {
        at_permille: u32,
        max_bytes: usize,
    },
    /// Enforce retention `now_after` ms after the last timestamp.
    Retention {
        now_after: i64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..12, 0i64..50).prop_map(|(records, ts_step)| Op::Append { records, ts_step }),
        4 => (0u32..=1000, 1usize..1500).prop_map(|(at_permille, max_bytes)| Op::Read { at_permille, max_bytes }),
        1 => (0i64..400).prop_map(|now_after| Op::Retention { now_after }),
        1 => Just(Op::Reopen),
    ]
}

/// One stored batch in the model.
#[derive(Clone, Debug)]
struct Stored {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
    ts: i64,
}

/// Segments as the log must lay them out: the last one is active.
struct Model {
    segments: Vec<Vec<Stored>>,
    end: i64,
}

impl Model {
    fn size(seg: &[Stored]) -> u64 {
        seg.iter().map(|b| b.bytes.len() as u64).sum()
    }

    fn append(&mut self, config: &LogConfig, bytes: Vec<u8>, records: usize, ts: i64) {
        let active = self.segments.last().unwrap();
        let size = Model::size(active);
        if size > 0 && size + bytes.len() as u64 > config.segment_bytes {
            self.segments.push(Vec::new());
        }
        let base = self.end;
        let last = base + records as i64 - 1;
        self.segments.last_mut().unwrap().push(Stored {
            base,
            last,
            bytes: with_base(bytes, base),
            ts,
        });
        self.end = last + 1;
    }

    fn start(&self) -> i64 {
        self.segments[0].first().map_or(self.end, |b| b.base)
    }

    fn retention(&mut self, config: &LogConfig, now_ms: i64) {
        let stats: Vec<SegmentStat> = self
            .segments
            .iter()
            .map(|s| SegmentStat {
                size_bytes: Model::size(s),
                max_timestamp_ms: s.iter().map(|b| b.ts).max().unwrap_or(-1),
            })
            .collect();
        let n = segments_to_delete(&stats, config, now_ms);
        if n == self.segments.len() {
            self.segments.push(Vec::new());
        }
        self.segments.drain(..n);
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut total = 0usize;
        for b in self.segments.iter().flatten().filter(|b| b.last >= offset) {
            if !out.is_empty() && total + b.bytes.len() > max_bytes {
                break;
            }
            total += b.bytes.len();
            out.push(b.bytes.clone());
        }
        out
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        segment_ms: u64::MAX / 4,
        retention_bytes: Some(1500),
        retention_ms: Some(300),
        flush: FlushPolicy::Os,
        index_interval_bytes: 150,
        ..LogConfig::default()
    }
}

fn check(log: &PartitionLog, model: &Model) {
    assert_eq!(log.end_offset(), model.end, "end offset");
    assert_eq!(log.start_offset(), model.start(), "start offset");
    assert_eq!(log.segment_count(), model.segments.len(), "segment count");
    let size: u64 = model.segments.iter().map(|s| Model::size(s)).sum();
    assert_eq!(log.size_bytes(), size, "size");
    // The whole log in one read: contiguous offsets, the model's bytes.
    let all = log.read(log.start_offset(), usize::MAX).unwrap();
    let want = model.read(model.start(), usize::MAX);
    assert_eq!(all.len(), want.len());
    assert!(
        all.iter().zip(&want).all(|(a, b)| a[..] == b[..]),
        "content"
    );
    let mut next = model.start();
    for b in &all {
        let h = mq::log::BatchHeader::parse(b).unwrap();
        assert_eq!(h.base_offset, next, "offsets are contiguous");
        next = h.last_offset() + 1;
    }
    assert_eq!(next, model.end);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut model = Model { segments: vec![Vec::new()], end: 0 };
        let mut ts = 1_000i64;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Append { records, ts_step } => {
                    ts += ts_step;
                    let b = batch(records, &format!("op{i}"), ts);
                    let got = log.append(&b, ts).unwrap();
                    prop_assert_eq!(got.base_offset, model.end);
                    model.append(&config, b, records, ts);
                    prop_assert_eq!(got.last_offset, model.end - 1);
                }
                Op::Read { at_permille, max_bytes } => {
                    let (start, end) = (model.start(), model.end);
                    let offset = start + (end - start) * i64::from(at_permille) / 1000;
                    let got = log.read(offset, max_bytes).unwrap();
                    let want = model.read(offset, max_bytes);
                    prop_assert_eq!(got.len(), want.len(), "read at {} budget {}", offset, max_bytes);
                    for (g, w) in got.iter().zip(&want) {
                        prop_assert_eq!(&g[..], &w[..]);
                    }
                    if offset > start {
                        prop_assert!(log.read(start - 1, 10).is_err());
                    }
                    prop_assert!(log.read(end + 1, 10).is_err());
                }
                Op::Retention { now_after } => {
                    let report = log.enforce_retention(ts + now_after).unwrap();
                    model.retention(&config, ts + now_after);
                    prop_assert_eq!(report.start_offset, model.start());
                }
                Op::Reopen => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                    prop_assert_eq!(log.recovery_report().truncated_bytes, 0);
                }
            }
            check(&log, &model);
        }
    }
}
