//! Head + WAL + blocks + compaction + retention against a model: random
//! appends (some out of order) over many hours, maintenance passes and
//! reopens in between; the database always holds exactly the model's samples,
//! matchers select what a scan of the model selects, and blocks never overlap.

use tsdb::{Db, Error, HOUR_MS, MINUTE_MS, MatchType, Matcher};

use crate::support::{Model, assert_same, dump, ls, small_opts};

#[test]
fn head_blocks_and_compaction_agree_with_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut db = Db::open(dir.path(), small_opts()).unwrap();
    let mut model = Model::default();
    let series: Vec<_> = (0..12)
        .map(|i| {
            ls(
                if i % 3 == 0 { "up" } else { "reqs" },
                &[
                    ("job", ["api", "web", "db"][i % 3]),
                    ("inst", &format!("i{}", i / 3)),
                ],
            )
        })
        .collect();
    let mut t = 0i64;
    let mut cuts = 0;
    let mut compactions = 0;
    for step in 0..1500 {
        t += rng.i64(1..60) * 1000;
        let mut batch = Vec::new();
        for s in &series {
            if rng.u8(0..3) == 0 {
                continue;
            }
            let mut samples = vec![(t, rng.u32(0..1000) as f64)];
            if rng.u8(0..5) == 0 {
                samples.push((t - rng.i64(1..9 * MINUTE_MS / 1000) * 1000, rng.f64()));
            }
            batch.push((s.clone(), samples));
        }
        match db.append_wait(batch.clone()) {
            Ok(()) => batch.iter().for_each(|(l, s)| model.add(l, s)),
            // A random out-of-order timestamp may hit an existing one.
            Err(Error::DuplicateSample { .. }) => {}
            Err(e) => panic!("step {step}: {e}"),
        }
        if step % 50 == 49 {
            let r = db.maintain().unwrap();
            cuts += r.cut;
            compactions += r.compacted;
        }
        if step % 300 == 299 {
            drop(db);
            db = Db::open(dir.path(), small_opts()).unwrap();
        }
        if step % 100 == 99 {
            assert_same(&dump(&db), &model.dump(), &format!("step {step}"));
        }
    }
    assert!(
        cuts >= 10 && compactions >= 2,
        "cuts {cuts}, compactions {compactions}"
    );
    let metas = db.blocks();
    assert!(
        metas.iter().any(|m| m.range_ms() == 4 * HOUR_MS),
        "{metas:?}"
    );
    for w in metas.windows(2) {
        assert!(w[0].max_t <= w[1].min_t, "blocks overlap: {w:?}");
    }
    db.verify().unwrap();
    // Matchers over blocks and head together equal a scan of the model.
    let all = model.dump();
    let cases = [
        vec![Matcher::eq("job", "api")],
        vec![
            Matcher::new(MatchType::Regex, "inst", "i[12]").unwrap(),
            Matcher::new(MatchType::NotEqual, "__name__", "up").unwrap(),
        ],
        vec![Matcher::new(MatchType::NotRegex, "job", "api|db").unwrap()],
    ];
    let (lo, hi) = (t / 3, 2 * t / 3);
    for ms in cases {
        let got: Vec<_> = db.select(&ms, lo, hi).unwrap();
        let want: Vec<_> = all
            .iter()
            .filter(|(l, _)| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .map(|(l, s)| {
                (
                    l.clone(),
                    s.iter()
                        .copied()
                        .filter(|&(t, _)| t >= lo && t <= hi)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        assert_eq!(got.len(), want.len(), "{ms:?}");
        for ((gl, gs), (wl, ws)) in got.iter().zip(&want) {
            assert_eq!(gl, wl);
            assert_eq!(
                gs.iter().map(|s| s.0).collect::<Vec<_>>(),
                ws.iter().map(|s| s.0).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn retention_deletes_whole_old_blocks_and_queries_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tsdb::Options {
        raw_retention_ms: 6 * HOUR_MS,
        limits: tsdb::Limits {
            query_samples_max: 1000,
            future_tolerance_ms: None,
            ..tsdb::Limits::default()
        },
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let s = ls("load", &[]);
    let mut model = Model::default();
    let end = 30 * HOUR_MS;
    for t in (0..end).step_by(MINUTE_MS as usize) {
        db.append_wait(vec![(s.clone(), vec![(t, t as f64)])])
            .unwrap();
        model.add(&s, &[(t, t as f64)]);
    }
    let r = db.maintain().unwrap();
    assert!(r.expired > 0, "{r:?}");
    let newest = db.newest_t();
    let oldest_kept = db.blocks().iter().map(|m| m.min_t).min().unwrap();
    assert!(
        db.blocks().iter().all(|m| m.max_t > newest - 6 * HOUR_MS),
        "{:?}",
        db.blocks()
    );
    assert!(
        oldest_kept <= newest - 6 * HOUR_MS,
        "nothing younger than the retention went"
    );
    let got = db
        .select(&[Matcher::eq("__name__", "load")], oldest_kept, i64::MAX)
        .unwrap();
    let want: Vec<_> = model.dump()[&s]
        .iter()
        .copied()
        .filter(|&(t, _)| t >= oldest_kept)
        .collect();
    assert_eq!(got[0].1, want);
    assert!(
        db.select(&[Matcher::eq("__name__", "load")], 0, oldest_kept - 1)
            .unwrap()
            .is_empty()
    );
    let mut many = tsdb::Options {
        ..db.options().clone()
    };
    many.limits.query_samples_max = 10;
    drop(db);
    let db = Db::open(dir.path(), many).unwrap();
    let e = db
        .select(&[Matcher::eq("__name__", "load")], 0, i64::MAX)
        .unwrap_err();
    assert!(matches!(e, Error::QueryTooLarge { limit: 10 }), "{e}");
}

/// Queries racing cuts and compactions see one consistent store: while a
/// writer appends a series in order and another thread runs maintenance in a
/// loop, every query returns exactly the first n samples (no gap where a
/// range moves from the head to a block, no duplicate), with n at least what
/// was acknowledged before the query started.
#[test]
fn queries_racing_cuts_see_no_gap() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let s = ls("race", &[]);
    let acked = AtomicI64::new(0);
    let done = AtomicBool::new(false);
    let queries = std::thread::scope(|sc| {
        sc.spawn(|| {
            for i in 0..3000i64 {
                db.append_wait(vec![(s.clone(), vec![(i * MINUTE_MS, i as f64)])])
                    .unwrap();
                acked.store(i + 1, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        });
        sc.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                db.maintain().unwrap();
            }
        });
        let reader = sc.spawn(|| {
            let mut queries = 0;
            while !done.load(Ordering::SeqCst) {
                let before = acked.load(Ordering::SeqCst);
                let got = db
                    .select(&[Matcher::eq("__name__", "race")], i64::MIN, i64::MAX)
                    .unwrap();
                let samples = got.first().map(|g| g.1.clone()).unwrap_or_default();
                assert!(
                    samples.len() as i64 >= before,
                    "query lost acknowledged samples: {} < {before}",
                    samples.len()
                );
                for (i, &(t, v)) in samples.iter().enumerate() {
                    assert_eq!(
                        (t, v),
                        (i as i64 * MINUTE_MS, i as f64),
                        "gap or duplicate at {i}"
                    );
                }
                queries += 1;
            }
            queries
        });
        reader.join().unwrap()
    });
    assert!(queries > 0);
    assert!(
        db.blocks().len() >= 2,
        "cuts happened during the race: {:?}",
        db.blocks()
    );
}
