//! The embedded API: appends and selects, each limit's error, out-of-order
//! samples, duplicates, WAL replay on reopen, and tickets as futures.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tsdb::{Db, Error, HOUR_MS, Limits, MINUTE_MS, MatchType, Matcher, Options};

use crate::support::{dump, ls, small_opts};

#[test]
fn appended_samples_read_back_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = ls("http_requests_total", &[("code", "200"), ("job", "api")]);
    let b = ls("http_requests_total", &[("code", "500"), ("job", "api")]);
    let c = ls("up", &[("job", "web")]);
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        db.append_wait(vec![
            (a.clone(), vec![(1000, 1.0), (2000, 2.0)]),
            (b.clone(), vec![(1000, 5.0)]),
            (c.clone(), vec![(1500, f64::NAN)]),
        ])
        .unwrap();
        db.append_wait(vec![(a.clone(), vec![(3000, 3.0)])])
            .unwrap();
        let got = db.select(&[Matcher::eq("job", "api")], 0, 2500).unwrap();
        assert_eq!(
            got,
            vec![
                (a.clone(), vec![(1000, 1.0), (2000, 2.0)]),
                (b.clone(), vec![(1000, 5.0)])
            ]
        );
        let re = Matcher::new(MatchType::NotRegex, "code", "5..").unwrap();
        let got = db
            .select(
                &[Matcher::eq("__name__", "http_requests_total"), re],
                0,
                9999,
            )
            .unwrap();
        assert_eq!(
            got,
            vec![(a.clone(), vec![(1000, 1.0), (2000, 2.0), (3000, 3.0)])]
        );
    }
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let all = dump(&db);
    assert_eq!(all.len(), 3, "the WAL replays every series");
    assert_eq!(all[&a], vec![(1000, 1.0), (2000, 2.0), (3000, 3.0)]);
    assert!(all[&c][0].1.is_nan());
    assert_eq!(db.series(&[Matcher::eq("job", "web")]), vec![c]);
}

#[test]
fn each_limit_is_its_own_error_and_refuses_the_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        limits: Limits {
            series_max: 2,
            samples_per_request_max: 3,
            future_tolerance_ms: Some(MINUTE_MS),
            ..Limits::default()
        },
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let now = clock::now_ms() as i64;
    let (x, y, z) = (ls("x", &[]), ls("y", &[]), ls("z", &[]));
    let e = db
        .append(vec![(x.clone(), vec![(now, 1.0); 4])])
        .unwrap_err();
    assert!(
        matches!(e, Error::TooManySamples { count: 4, limit: 3 }),
        "{e}"
    );
    db.append_wait(vec![
        (x.clone(), vec![(now, 1.0)]),
        (y.clone(), vec![(now, 1.0)]),
    ])
    .unwrap();
    let e = db
        .append(vec![
            (x.clone(), vec![(now + 1, 1.0)]),
            (z.clone(), vec![(now, 1.0)]),
        ])
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManySeries {
                active: 2,
                new: 1,
                limit: 2
            }
        ),
        "{e}"
    );
    assert_eq!(
        dump(&db)[&x].len(),
        1,
        "the refused request left nothing behind"
    );
    let e = db
        .append(vec![(x.clone(), vec![(now + HOUR_MS, 1.0)])])
        .unwrap_err();
    assert!(matches!(e, Error::TooFarInFuture { .. }), "{e}");
    assert!(e.is_bad_input());
    // Label limits come from the database's own options.
    assert!(matches!(
        db.labels([("__name__", "a"), ("b", "c".repeat(5000).as_str())]),
        Err(Error::LabelValueTooLong { .. })
    ));
}

/// A writer whose series lag another writer's by more than the
/// out-of-order window, but write each series in order, is accepted (as
/// Prometheus accepts in-order samples up to half a block range behind the
/// head); its out-of-order samples and those past half a block range are not.
#[test]
fn a_lagging_writer_in_order_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap(); // 1 h blocks, 10 min window
    let (fast, slow, new) = (ls("a", &[]), ls("b", &[]), ls("c", &[]));
    let t0 = 100 * HOUR_MS;
    db.append_wait(vec![(slow.clone(), vec![(t0 - 20 * MINUTE_MS, 1.0)])])
        .unwrap();
    db.append_wait(vec![(fast.clone(), vec![(t0, 1.0)])])
        .unwrap();
    // 15 min behind the newest sample, in order for its series: accepted.
    db.append_wait(vec![(slow.clone(), vec![(t0 - 15 * MINUTE_MS, 2.0)])])
        .unwrap();
    // A new series 25 min behind: in order too.
    db.append_wait(vec![(new.clone(), vec![(t0 - 25 * MINUTE_MS, 1.0)])])
        .unwrap();
    // Out of order for its series and past the window: refused.
    let e = db
        .append(vec![(slow.clone(), vec![(t0 - 16 * MINUTE_MS, 9.0)])])
        .unwrap_err();
    assert!(
        matches!(e, Error::OutOfBounds { min_ms, .. } if min_ms == t0 - 10 * MINUTE_MS),
        "{e}"
    );
    // In order but more than half a block range behind: refused.
    let e = db
        .append(vec![(slow.clone(), vec![(t0 - 31 * MINUTE_MS, 9.0)])])
        .unwrap_err();
    assert!(matches!(e, Error::OutOfBounds { .. }), "{e}");
    let e = db
        .append(vec![(ls("d", &[]), vec![(t0 - 31 * MINUTE_MS, 9.0)])])
        .unwrap_err();
    assert!(
        matches!(e, Error::OutOfBounds { min_ms, .. } if min_ms == t0 - 30 * MINUTE_MS),
        "{e}"
    );
    let got = db
        .select(&[Matcher::eq("__name__", "b")], 0, i64::MAX)
        .unwrap();
    assert_eq!(
        got[0].1,
        vec![(t0 - 20 * MINUTE_MS, 1.0), (t0 - 15 * MINUTE_MS, 2.0)]
    );
}

#[test]
fn out_of_order_within_the_window_is_accepted_beyond_it_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let s = ls("temp", &[]);
    let t0 = 100 * HOUR_MS;
    db.append_wait(vec![(
        s.clone(),
        vec![(t0, 1.0), (t0 + 20 * MINUTE_MS, 3.0)],
    )])
    .unwrap();
    db.append_wait(vec![(s.clone(), vec![(t0 + 15 * MINUTE_MS, 2.0)])])
        .unwrap();
    let e = db
        .append(vec![(s.clone(), vec![(t0 + 5 * MINUTE_MS, 9.0)])])
        .unwrap_err();
    assert!(
        matches!(e, Error::OutOfBounds { min_ms, .. } if min_ms == t0 + 10 * MINUTE_MS),
        "{e}"
    );
    // An identical duplicate is a no-op; a different value is refused.
    db.append_wait(vec![(s.clone(), vec![(t0 + 15 * MINUTE_MS, 2.0)])])
        .unwrap();
    let e = db
        .append(vec![(s.clone(), vec![(t0 + 15 * MINUTE_MS, 2.5)])])
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateSample { .. }), "{e}");
    let e = db
        .append(vec![(
            s.clone(),
            vec![(t0 + 30 * MINUTE_MS, 1.0), (t0 + 30 * MINUTE_MS, 2.0)],
        )])
        .unwrap_err();
    assert!(
        matches!(e, Error::DuplicateSample { .. }),
        "duplicates inside one request: {e}"
    );
    let got = &dump(&db)[&s];
    assert_eq!(
        got,
        &vec![
            (t0, 1.0),
            (t0 + 15 * MINUTE_MS, 2.0),
            (t0 + 20 * MINUTE_MS, 3.0)
        ]
    );
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(
        &dump(&db)[&s],
        got,
        "out-of-order samples replay from the WAL"
    );
}

struct Flag(std::sync::atomic::AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A ticket is a future: polled, it registers a waker, which the commit
/// thread wakes once the append is durable.
#[test]
fn a_ticket_resolves_as_a_future() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let mut ticket = db.append(vec![(ls("x", &[]), vec![(1, 1.0)])]).unwrap();
    let flag = Arc::new(Flag(false.into()));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::pin::Pin::new(&mut ticket).poll(&mut cx) {
            Poll::Ready(r) => break r.unwrap(),
            Poll::Pending => {
                while !flag.0.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    assert!(std::time::Instant::now() < deadline, "never woken");
                    std::thread::yield_now();
                }
            }
        }
    }
    assert!(db.stats().wal_fsyncs >= 1);
}

use std::future::Future;

/// Label names and values, as `/api/v1/labels` and
/// `/api/v1/label/<name>/values` will serve them: from the head and blocks
/// overlapping the range, optionally restricted by matchers.
#[test]
fn label_names_and_values_span_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let old = ls("cpu", &[("host", "a"), ("mode", "idle")]);
    let new = ls("mem", &[("host", "b"), ("zone", "z1")]);
    for t in (0..3 * HOUR_MS).step_by(MINUTE_MS as usize) {
        db.append_wait(vec![(old.clone(), vec![(t, 1.0)])]).unwrap();
    }
    db.append_wait(vec![(new.clone(), vec![(3 * HOUR_MS, 1.0)])])
        .unwrap();
    assert!(
        db.maintain().unwrap().cut >= 1,
        "the old series is (partly) in a block"
    );
    let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        db.label_names(&[], i64::MIN, i64::MAX),
        all(&["__name__", "host", "mode", "zone"])
    );
    assert_eq!(
        db.label_values("host", &[], i64::MIN, i64::MAX),
        all(&["a", "b"])
    );
    assert_eq!(
        db.label_values("host", &[], 0, HOUR_MS / 2),
        all(&["a"]),
        "only the first block overlaps"
    );
    let mem = [Matcher::eq("__name__", "mem")];
    assert_eq!(
        db.label_names(&mem, i64::MIN, i64::MAX),
        all(&["__name__", "host", "zone"])
    );
    assert_eq!(
        db.label_values("zone", &mem, i64::MIN, i64::MAX),
        all(&["z1"])
    );
    assert!(db.label_values("nope", &[], i64::MIN, i64::MAX).is_empty());
}

/// Timestamps at the ends of the i64 range (no wall-clock bound) are stored
/// and read back, and maintenance neither overflows nor loops on them.
#[test]
fn extreme_timestamps_neither_overflow_nor_loop() {
    let ends = [
        vec![
            (i64::MIN, 1.0),
            (i64::MIN + 1, 2.0),
            (i64::MIN + 3 * HOUR_MS, 3.0),
        ],
        vec![
            (i64::MAX - 3 * HOUR_MS, 1.0),
            (i64::MAX - 1, 2.0),
            (i64::MAX, 3.0),
        ],
    ];
    for samples in ends {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            out_of_order_window_ms: 0,
            ..small_opts()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        let s = ls("edge", &[]);
        db.append_wait(vec![(s.clone(), samples.clone())]).unwrap();
        db.maintain().unwrap();
        db.maintain().unwrap();
        assert_eq!(&dump(&db)[&s], &samples);
    }
}
