//! Cold storage end to end against our own S3 server (`objstore`, started
//! once in this process on a free port, real SigV4 over HTTP): old blocks
//! move, their local chunks go, and PromQL over the moved range answers
//! exactly as before the move, after a restart too; the crash states of a
//! move (uploaded but unmarked; marked but local chunks left) each open with
//! every block counted once; an unreachable store leaves blocks local.

use std::sync::OnceLock;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tsdb::cold::{ColdOptions, ColdTarget, ColdTier};
use tsdb::promql::{QueryLimits, QueryValue, instant_query, range_query};
use tsdb::{Db, HOUR_MS, MINUTE_MS, Options};

use crate::support::{dump, ls, small_opts};

/// Endpoint and key of the S3 server shared by this binary's tests.
struct S3 {
    endpoint: String,
    key: String,
    secret: String,
    _dir: tempfile::TempDir,
}

fn s3() -> &'static S3 {
    static S3: OnceLock<S3> = OnceLock::new();
    S3.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = objstore::s3::S3Store::open(dir.path(), Default::default()).unwrap();
        let key = store.keys().create().unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", std_listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                store
                    .serve(listener, std::future::pending::<()>())
                    .await
                    .unwrap();
            });
        });
        S3 {
            endpoint,
            key: key.id,
            secret: key.secret,
            _dir: dir,
        }
    })
}

/// Creates `bucket` on the shared server (by the S3 protocol).
fn create_bucket(bucket: &str) {
    let s = s3();
    let b = Bucket::new(
        s.endpoint.parse().unwrap(),
        UrlStyle::Path,
        bucket.to_string(),
        "us-east-1",
    )
    .unwrap();
    let creds = Credentials::new(&s.key, &s.secret);
    let url = b.create_bucket(&creds).sign(Duration::from_secs(60));
    let r = reqwest::blocking::Client::new().put(url).send().unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
}

fn cold_opts(bucket: &str, endpoint: &str) -> ColdOptions {
    let s = s3();
    ColdOptions {
        target: ColdTarget {
            url: format!("s3://{bucket}/tsdb/blocks"),
            endpoint: endpoint.to_string(),
            region: "us-east-1".into(),
            access_key: s.key.clone(),
            secret_key: s.secret.clone(),
            session_token: None,
            timeout_ms: 5_000,
        },
        after_ms: 4 * HOUR_MS,
        cache_bytes_max: 1 << 20,
    }
}

fn with_cold(bucket: &str) -> Options {
    Options {
        cold: Some(cold_opts(bucket, &s3().endpoint)),
        ..small_opts()
    }
}

/// Twelve hours of 15 s samples of a counter and two gauges.
fn fill(db: &Db) {
    let series = [
        ls("reqs_total", &[("job", "api")]),
        ls("temp", &[("room", "a")]),
        ls("temp", &[("room", "b")]),
    ];
    let mut counter = 0.0;
    for hour in 0..12i64 {
        let batch = series
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let samples = (0..240)
                    .map(|k| {
                        let t = hour * HOUR_MS + k * 15_000;
                        counter += (k % 7) as f64;
                        let v = if i == 0 {
                            counter
                        } else {
                            20.0 + ((t / 60_000) % 13) as f64 * 0.25
                        };
                        (t, v)
                    })
                    .collect();
                (l.clone(), samples)
            })
            .collect();
        db.append_wait(batch).unwrap();
    }
    db.maintain().unwrap();
}

/// PromQL answers over the whole range, the old part in particular.
fn answers(db: &Db) -> Vec<QueryValue> {
    let limits = QueryLimits::default();
    let mut out = Vec::new();
    for q in [
        "rate(reqs_total[5m])",
        "avg_over_time(temp[30m])",
        "sum by (job) (increase(reqs_total[1h]))",
        "max_over_time(temp[2h])",
    ] {
        out.push(range_query(db, q, 0, 12 * HOUR_MS, 5 * MINUTE_MS, &limits).unwrap());
        out.push(instant_query(db, q, 3 * HOUR_MS, &limits).unwrap());
    }
    out
}

fn chunk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("chunks").exists())
        .count()
}

#[test]
fn old_blocks_move_and_answer_as_before() {
    create_bucket("cold-move");
    let dir = tempfile::tempdir().unwrap();
    let (before, raw) = {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db);
        (answers(&db), dump(&db))
    };
    let db = Db::open(dir.path(), with_cold("cold-move")).unwrap();
    let local_before = chunk_files(dir.path());
    let report = db.maintain().unwrap();
    assert!(report.moved_cold >= 1, "{report:?}");
    let stats = db.stats();
    assert_eq!(stats.cold_blocks, report.moved_cold);
    assert_eq!(chunk_files(dir.path()), local_before - report.moved_cold);
    // Everything that ends 4 h before the newest sample moved.
    for m in db.blocks() {
        assert_eq!(
            m.cold,
            m.max_t <= 12 * HOUR_MS - 15_000 - 4 * HOUR_MS,
            "{m:?}"
        );
    }
    assert_eq!(answers(&db), before);
    assert_eq!(dump(&db), raw);
    db.verify().unwrap();
    drop(db);
    // After a restart, too; and a second pass moves nothing more.
    let db = Db::open(dir.path(), with_cold("cold-move")).unwrap();
    assert_eq!(db.maintain().unwrap().moved_cold, 0);
    assert_eq!(answers(&db), before);
    assert_eq!(dump(&db), raw);
    drop(db);
    // Without the cold tier configured, opening says what to do.
    let e = Db::open(dir.path(), small_opts())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--cold-storage"), "{e}");
}

#[test]
fn a_crash_mid_move_leaves_each_block_counted_once() {
    create_bucket("cold-crash");
    let dir = tempfile::tempdir().unwrap();
    let (before, raw) = {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db);
        (answers(&db), dump(&db))
    };
    let metas = Db::open(dir.path(), small_opts()).unwrap().blocks();
    let oldest = metas.iter().min_by_key(|m| m.min_t).unwrap().clone();
    let block_dir = dir.path().join("blocks").join(&oldest.id);
    let tier = ColdTier::new(&cold_opts("cold-crash", &s3().endpoint)).unwrap();
    // 1. A crash after the upload, before the marker: the block is still local.
    tier.upload(&block_dir, &oldest.id).unwrap();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        assert_eq!(db.stats().cold_blocks, 0);
        assert_eq!(answers(&db), before);
    }
    // 2. A crash after the marker, before the local chunks went: the block
    //    opens cold, its leftover chunks are removed, counted once.
    let chunks = std::fs::read(block_dir.join("chunks")).unwrap();
    tier.write_marker(&block_dir).unwrap();
    {
        let db = Db::open(dir.path(), with_cold("cold-crash")).unwrap();
        assert!(!block_dir.join("chunks").exists());
        assert_eq!(db.stats().cold_blocks, 1);
        assert_eq!(db.blocks().len(), metas.len());
        assert_eq!(answers(&db), before);
        assert_eq!(dump(&db), raw);
        // A pass finds it already moved: nothing more to do, same answers.
        assert_eq!(db.maintain().unwrap().moved_cold, 0);
        assert_eq!(db.stats().cold_blocks, 1);
        assert_eq!(answers(&db), before);
    }
    // 3. Put the local chunks back over a cold block (as a crash between the
    //    marker and the unlink leaves it): still once.
    std::fs::write(block_dir.join("chunks"), &chunks).unwrap();
    let db = Db::open(dir.path(), with_cold("cold-crash")).unwrap();
    assert_eq!(dump(&db), raw);
}

#[test]
fn an_unreachable_store_leaves_blocks_local_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db);
        answers(&db)
    };
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = Options {
        cold: Some(cold_opts("nowhere", &format!("http://127.0.0.1:{port}"))),
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let e = db.maintain().unwrap_err().to_string();
    assert!(e.contains("cold storage"), "{e}");
    assert_eq!(db.stats().cold_blocks, 0);
    assert_eq!(answers(&db), before);
}

#[test]
fn cold_reads_are_cached_within_the_bound() {
    create_bucket("cold-cache");
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), small_opts()).unwrap();
        fill(&db);
    }
    let mut opts = with_cold("cold-cache");
    opts.cold.as_mut().unwrap().cache_bytes_max = 2048;
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    db.maintain().unwrap();
    let tier = ColdTier::new(opts.cold.as_ref().unwrap()).unwrap();
    let id = db.blocks().into_iter().find(|m| m.cold).unwrap().id;
    let id: std::sync::Arc<str> = id.into();
    let a = tier.read(&id, 8, 64).unwrap();
    let b = tier.read(&id, 8, 64).unwrap();
    assert_eq!(a, b);
    let s = tier.cache_stats();
    assert_eq!((s.hits, s.misses), (1, 1));
    for off in 0..100 {
        tier.read(&id, 8 + off, 64).unwrap();
    }
    assert!(tier.cache_stats().bytes <= 2048);
}
