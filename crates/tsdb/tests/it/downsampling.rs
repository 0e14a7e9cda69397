//! Downsampling end to end: two days of 15 s samples, raw kept 8 hours,
//! 1-minute data 24 hours. Stored and on-the-fly points equal downsampling
//! the model directly (integer values, so sums are exact), old raw data is
//! gone while its summaries answer, queries pick their resolution by step and
//! age, and `avg_over_time` / `max_over_time` over 1-minute points equal the
//! raw answers on bucket-aligned windows.

use std::collections::BTreeMap;

use tsdb::downsample::{AggrPoint, downsample_raw};
use tsdb::{Db, HOUR_MS, Labels, MINUTE_MS, Matcher, Options, QueryResult};

use crate::support::{Model, ls, small_opts};

fn opts() -> Options {
    Options {
        downsampling: true,
        raw_retention_ms: 8 * HOUR_MS,
        minute_retention_ms: 24 * HOUR_MS,
        ..small_opts()
    }
}

fn points(db: &Db, res: i64) -> BTreeMap<Labels, Vec<AggrPoint>> {
    let any = Matcher::new(tsdb::MatchType::Regex, "__name__", ".+").unwrap();
    db.select_downsampled(&[any], i64::MIN, i64::MAX, res)
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn summaries_match_the_model_at_every_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    let series = [
        ls("temp", &[("room", "a")]),
        ls("temp", &[("room", "b")]),
        ls("reqs_total", &[]),
    ];
    let mut model = Model::default();
    let mut counter = 0.0;
    for hour in 0..48 {
        let mut batch = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let samples: Vec<(i64, f64)> = (0..240)
                .map(|k| {
                    let t = hour * HOUR_MS + k * 15_000;
                    let v = if i == 2 {
                        counter += rng.u32(0..50) as f64;
                        counter
                    } else {
                        rng.u32(0..100) as f64
                    };
                    (t, v)
                })
                .collect();
            model.add(s, &samples);
            batch.push((s.clone(), samples));
        }
        db.append_wait(batch).unwrap();
        if hour % 5 == 4 {
            db.maintain().unwrap();
        }
    }
    db.maintain().unwrap();
    let metas = db.blocks();
    let at = |res: i64| metas.iter().filter(|m| m.resolution_ms == res).count();
    assert!(
        at(0) > 0 && at(MINUTE_MS) > 0 && at(HOUR_MS) > 0,
        "{metas:?}"
    );
    let newest = db.newest_t();
    assert!(
        metas
            .iter()
            .filter(|m| m.resolution_ms == 0)
            .all(|m| m.max_t > newest - 8 * HOUR_MS),
        "old raw blocks expired"
    );
    assert!(
        metas
            .iter()
            .filter(|m| m.resolution_ms == MINUTE_MS)
            .all(|m| m.max_t > newest - 24 * HOUR_MS)
    );
    let raw_from = metas
        .iter()
        .filter(|m| m.resolution_ms == 0)
        .map(|m| m.min_t)
        .min()
        .unwrap();

    let want = model.dump();
    for res in [MINUTE_MS, HOUR_MS] {
        // Data at `res` reaches back to the oldest block of `res` or finer.
        let cutoff = metas
            .iter()
            .filter(|m| m.resolution_ms <= res)
            .map(|m| m.min_t)
            .min()
            .unwrap();
        assert!(
            cutoff
                <= newest
                    - if res == MINUTE_MS {
                        24 * HOUR_MS
                    } else {
                        47 * HOUR_MS
                    },
            "{res}: nothing within retention went"
        );
        let got = points(&db, res);
        for (l, samples) in &want {
            let expect: Vec<AggrPoint> = downsample_raw(samples, res)
                .into_iter()
                .filter(|p| p.t >= cutoff)
                .collect();
            assert_eq!(got[l], expect, "{l} at {res} ms");
        }
    }
    let hour_points = &points(&db, HOUR_MS)[&series[0]];
    assert_eq!(
        hour_points.first().unwrap().t,
        HOUR_MS - 15_000,
        "the 1-hour data still covers hour 0"
    );
    // Raw samples before the retained raw blocks are gone…
    let early = db
        .select(&[Matcher::eq("room", "a")], 0, raw_from - 1)
        .unwrap();
    assert!(early.is_empty(), "raw data past retention is gone");
    // …and queries pick a resolution by step and age.
    let m = [Matcher::eq("room", "a")];
    assert!(matches!(
        db.query(&m, newest - HOUR_MS, newest, 15_000).unwrap(),
        QueryResult::Raw(_)
    ));
    assert!(matches!(
        db.query(&m, newest - HOUR_MS, newest, 10 * MINUTE_MS)
            .unwrap(),
        QueryResult::Downsampled {
            resolution_ms: MINUTE_MS,
            ..
        }
    ));
    assert!(matches!(
        db.query(&m, newest - 12 * HOUR_MS, newest, 15_000).unwrap(),
        QueryResult::Downsampled {
            resolution_ms: MINUTE_MS,
            ..
        }
    ));
    assert!(matches!(
        db.query(&m, 0, newest, 15_000).unwrap(),
        QueryResult::Downsampled {
            resolution_ms: HOUR_MS,
            ..
        }
    ));

    // avg/max over bucket-aligned windows: raw and 1-minute answers agree.
    let raw = db.select(&m, 44 * HOUR_MS, newest).unwrap().remove(0).1;
    let mins = db
        .select_downsampled(&m, 44 * HOUR_MS, newest, MINUTE_MS)
        .unwrap()
        .remove(0)
        .1;
    for w in 0..3 {
        let (a, b) = ((45 + w) * HOUR_MS, (46 + w) * HOUR_MS);
        let r: Vec<f64> = raw
            .iter()
            .filter(|s| s.0 >= a && s.0 < b)
            .map(|s| s.1)
            .collect();
        let p: Vec<&AggrPoint> = mins.iter().filter(|p| p.t >= a && p.t < b).collect();
        let raw_avg = r.iter().sum::<f64>() / r.len() as f64;
        let pts_avg = p.iter().map(|p| p.sum).sum::<f64>() / p.iter().map(|p| p.count).sum::<f64>();
        assert_eq!(raw_avg, pts_avg, "avg_over_time over window {w}");
        let raw_max = r.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(
            raw_max,
            p.iter().map(|p| p.max).fold(f64::MIN, f64::max),
            "max_over_time"
        );
    }
}

/// Two days of a counter and a gauge, maintained every 5 hours.
fn fill_two_days(db: &Db) {
    let (c, g) = (ls("reqs_total", &[]), ls("temp", &[("room", "a")]));
    let mut counter = 0.0;
    for hour in 0..48i64 {
        let mut cs = Vec::new();
        let mut gs = Vec::new();
        for k in 0..240i64 {
            let t = hour * HOUR_MS + k * 15_000;
            counter += ((k * 7 + hour) % 11) as f64;
            cs.push((t, counter));
            gs.push((t, ((t / 15_000 * 37) % 101) as f64));
        }
        db.append_wait(vec![(c.clone(), cs), (g.clone(), gs)])
            .unwrap();
        if hour % 5 == 4 {
            db.maintain().unwrap();
        }
    }
    db.maintain().unwrap();
}

fn instant(db: &Db, q: &str, t: i64) -> BTreeMap<String, f64> {
    use tsdb::promql::{QueryLimits, QueryValue, Value, instant_query};
    let QueryValue::Instant {
        value: Value::Vector(v),
        ..
    } = instant_query(db, q, t, &QueryLimits::default()).unwrap()
    else {
        panic!("{q}: not a vector");
    };
    v.into_iter()
        .map(|e| (format!("{:?}", e.metric), e.value))
        .collect()
}

/// PromQL over ranges past the raw retention reads 1-minute and 1-hour
/// points and agrees with the same query over raw data (a twin database
/// that keeps everything raw): exactly (to float rounding) for `count/sum/avg/min/max/last_over_time`
/// on bucket-aligned windows, within 2 % for `rate`/`increase` (the counter
/// is seen at bucket ends; the extrapolation covers the first bucket's part).
#[test]
fn promql_over_downsampled_ranges_agrees_with_raw() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let down = Db::open(d1.path(), opts()).unwrap();
    let raw = Db::open(
        d2.path(),
        Options {
            raw_retention_ms: 1000 * HOUR_MS,
            ..opts()
        },
    )
    .unwrap();
    fill_two_days(&down);
    fill_two_days(&raw);
    let (raw_from, minute_from) = (down.held_from(0), down.held_from(MINUTE_MS));
    assert!(raw_from > 32 * HOUR_MS, "raw data expired: {raw_from}");
    assert!(
        minute_from > 12 * HOUR_MS,
        "1-minute data expired: {minute_from}"
    );
    assert_eq!(raw.held_from(0), 0);
    // A window in the 1-minute region and one in the 1-hour region, each
    // ending 1 ms before a bucket edge (so both read the same samples).
    for (t, range) in [
        (35 * HOUR_MS - 1, "1h"),
        (30 * HOUR_MS - 1, "90m"),
        (10 * HOUR_MS - 1, "6h"),
    ] {
        for f in [
            "count_over_time",
            "sum_over_time",
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "last_over_time",
        ] {
            let q = format!("{f}(temp[{range}])");
            let (a, b) = (instant(&down, &q, t), instant(&raw, &q, t));
            assert!(!a.is_empty() && a.len() == b.len(), "{q} at {t}");
            for (k, v) in &a {
                // Exact but for float rounding (Σsum/Σcount vs a running mean).
                assert!(
                    (v - b[k]).abs() <= 1e-12 * b[k].abs(),
                    "{q} at {t}: {v} vs raw {}",
                    b[k]
                );
            }
        }
        for f in ["rate", "increase"] {
            let q = format!("{f}(reqs_total[{range}])");
            let (a, b) = (instant(&down, &q, t), instant(&raw, &q, t));
            assert_eq!(a.len(), 1, "{q} at {t}");
            for (k, v) in &a {
                let want = b[k];
                assert!(
                    (v - want).abs() <= 0.02 * want.abs(),
                    "{q} at {t}: {v} vs raw {want}"
                );
            }
        }
    }
    // Over raw data the ordinary path answers (no downsampled points read).
    let q = "avg_over_time(temp[1h])";
    let t = 47 * HOUR_MS;
    assert_eq!(instant(&down, q, t), instant(&raw, q, t));
}
