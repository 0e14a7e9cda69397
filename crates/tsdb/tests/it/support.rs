//! Shared helpers: small options so blocks are cut quickly, label shorthands,
//! and a model of what the database should hold.

use std::collections::{BTreeMap, HashMap};

use tsdb::{Db, HOUR_MS, Labels, Limits, MINUTE_MS, Matcher, Options, Sample};

/// Options with 1-hour blocks (compacted 1 h → 2 h → 4 h), a 10-minute
/// out-of-order window, no wall-clock bound and no background thread.
pub fn small_opts() -> Options {
    Options {
        limits: Limits {
            future_tolerance_ms: None,
            ..Limits::default()
        },
        block_range_ms: HOUR_MS,
        out_of_order_window_ms: 10 * MINUTE_MS,
        compaction_ranges_ms: vec![HOUR_MS, 2 * HOUR_MS, 4 * HOUR_MS],
        raw_retention_ms: 1000 * HOUR_MS,
        minute_retention_ms: 2000 * HOUR_MS,
        hour_retention_ms: 4000 * HOUR_MS,
        downsampling: false,
        chunk_samples_max: 120,
        wal_segment_bytes_max: 64 << 10,
        maintenance_interval_ms: 0,
        cold: None,
    }
}

/// `{__name__=name, k=v...}` with default limits.
pub fn ls(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut all = vec![("__name__", name)];
    all.extend_from_slice(pairs);
    Labels::new(all, &Limits::default()).unwrap()
}

/// Everything in the database as a map.
pub fn dump(db: &Db) -> BTreeMap<Labels, Vec<Sample>> {
    let any = Matcher::new(tsdb::MatchType::Regex, "__name__", ".+").unwrap();
    db.select(&[any], i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .collect()
}

/// The model: series → time → value bits.
#[derive(Default, Debug)]
pub struct Model(pub HashMap<Labels, BTreeMap<i64, u64>>);

impl Model {
    pub fn add(&mut self, l: &Labels, samples: &[Sample]) {
        let m = self.0.entry(l.clone()).or_default();
        for &(t, v) in samples {
            m.insert(t, v.to_bits());
        }
    }

    /// The model's samples as the database returns them.
    pub fn dump(&self) -> BTreeMap<Labels, Vec<Sample>> {
        self.0
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(l, m)| {
                (
                    l.clone(),
                    m.iter().map(|(&t, &b)| (t, f64::from_bits(b))).collect(),
                )
            })
            .collect()
    }
}

/// Compares two dumps bit for bit (NaN == NaN).
pub fn assert_same(
    got: &BTreeMap<Labels, Vec<Sample>>,
    want: &BTreeMap<Labels, Vec<Sample>>,
    ctx: &str,
) {
    let bits = |m: &BTreeMap<Labels, Vec<Sample>>| -> BTreeMap<Labels, Vec<(i64, u64)>> {
        m.iter()
            .map(|(l, s)| {
                (
                    l.clone(),
                    s.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
                )
            })
            .collect()
    };
    let (g, w) = (bits(got), bits(want));
    if g != w {
        for (l, ws) in &w {
            let gs = g.get(l).cloned().unwrap_or_default();
            if &gs != ws {
                panic!(
                    "{ctx}: series {l} differs: got {} samples, want {}; first got {:?}, want {:?}",
                    gs.len(),
                    ws.len(),
                    gs.iter().find(|x| !ws.contains(x)),
                    ws.iter().find(|x| !gs.contains(x))
                );
            }
        }
        panic!(
            "{ctx}: extra series {:?}",
            g.keys().filter(|k| !w.contains_key(*k)).collect::<Vec<_>>()
        );
    }
}
