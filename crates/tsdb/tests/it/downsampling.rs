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
