//! The scraper against real local HTTP targets (axum): samples land with the
//! target's labels, `up` and the scrape series are written, series that
//! vanish and targets that go down or leave file SD get staleness markers,
//! and the job's limits fail a scrape.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tsdb::scrape::{Config, Manager, Sharding};
use tsdb::{Db, Labels, Matcher, Sample};

use crate::support::small_opts;

/// A target whose body and health the test changes.
#[derive(Clone)]
struct Exposed {
    body: Arc<Mutex<String>>,
    healthy: Arc<Mutex<bool>>,
}

async fn start_target() -> (String, Exposed) {
    let exposed = Exposed {
        body: Arc::new(Mutex::new(String::new())),
        healthy: Arc::new(Mutex::new(true)),
    };
    let state = exposed.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let state = state.clone();
            async move {
                if *state.healthy.lock() {
                    (axum::http::StatusCode::OK, state.body.lock().clone())
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, exposed)
}

fn series(db: &Db, name: &str, job: &str) -> Vec<(Labels, Vec<Sample>)> {
    db.select(
        &[Matcher::eq("__name__", name), Matcher::eq("job", job)],
        i64::MIN,
        i64::MAX,
    )
    .unwrap()
}

fn last(db: &Db, name: &str, job: &str) -> Option<f64> {
    let got = series(db, name, job);
    got.first().and_then(|(_, s)| s.last()).map(|&(_, v)| v)
}

/// Polls `cond` for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_stale(v: Option<f64>) -> bool {
    v.is_some_and(tsdb::chunk::is_stale)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_report_health_mark_staleness_and_enforce_limits() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small_opts()).unwrap());
    let (addr, target) = start_target().await;
    *target.body.lock() = "# TYPE reqs_total counter\nreqs_total{code=\"200\"} 7\n\
                           reqs_total{code=\"500\"} 1\ntemp{job=\"mine\"} 3.5\n"
        .into();
    let sd_file = dir.path().join("targets.json");
    std::fs::write(
        &sd_file,
        format!(r#"[{{"targets":["{addr}"],"labels":{{"zone":"a"}}}}]"#),
    )
    .unwrap();
    let yaml = format!(
        r#"
global: {{scrape_interval: 100ms, scrape_timeout: 80ms}}
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: limited
    sample_limit: 2
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: few_labels
    label_limit: 2
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: nobody
    static_configs: [{{targets: ['127.0.0.1:{closed}']}}]
  - job_name: files
    file_sd_configs: [{{files: ['*.json'], refresh_interval: 100ms}}]
"#,
        closed = testkit::free_port()
    );
    let config = Config::parse(&yaml, dir.path().to_path_buf()).unwrap();
    let manager = Manager::new(db.clone(), config, Sharding::single()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(manager.run(async move {
        let _ = stopped.await;
    }));

    eventually("app is up", || last(&db, "up", "app") == Some(1.0)).await;
    eventually("app samples", || {
        series(&db, "reqs_total", "app").len() == 2
    })
    .await;
    let (labels, samples) = &series(&db, "temp", "app")[0];
    assert_eq!(labels.get("instance"), Some(addr.as_str()));
    assert_eq!(
        labels.get("exported_job"),
        Some("mine"),
        "clashing label renamed"
    );
    assert_eq!(samples.last().unwrap().1, 3.5);
    eventually("scrape_samples_scraped", || {
        last(&db, "scrape_samples_scraped", "app") == Some(3.0)
    })
    .await;
    let duration = last(&db, "scrape_duration_seconds", "app").unwrap();
    assert!(duration > 0.0 && duration < 0.08, "{duration}");
    // A target nobody listens on, and the limits, fail their scrapes.
    eventually("nobody is down", || last(&db, "up", "nobody") == Some(0.0)).await;
    eventually("sample_limit fails", || {
        last(&db, "up", "limited") == Some(0.0)
    })
    .await;
    assert!(series(&db, "reqs_total", "limited").is_empty());
    eventually("label_limit fails", || {
        last(&db, "up", "few_labels") == Some(0.0)
    })
    .await;
    // File SD: the file's target is scraped with its labels.
    eventually("files is up", || last(&db, "up", "files") == Some(1.0)).await;
    assert_eq!(series(&db, "temp", "files")[0].0.get("zone"), Some("a"));

    // A series that disappears from the body is marked stale.
    *target.body.lock() = "reqs_total{code=\"200\"} 8\ntemp 3.5\n".into();
    eventually("vanished series is stale", || {
        series(&db, "reqs_total", "app")
            .iter()
            .any(|(l, s)| l.get("code") == Some("500") && is_stale(s.last().map(|x| x.1)))
    })
    .await;

    // The target leaves file SD: all its series go stale, up included.
    std::fs::write(&sd_file, "[]").unwrap();
    eventually("removed target is stale", || {
        is_stale(last(&db, "up", "files")) && is_stale(last(&db, "temp", "files"))
    })
    .await;

    // The target goes down: up 0, its series stale.
    *target.healthy.lock() = false;
    eventually("app is down", || last(&db, "up", "app") == Some(0.0)).await;
    assert!(is_stale(last(&db, "temp", "app")));
    let stale_200 = series(&db, "reqs_total", "app")
        .iter()
        .all(|(_, s)| is_stale(s.last().map(|x| x.1)));
    assert!(stale_200, "every series of a failed scrape is stale");
    // And back.
    *target.healthy.lock() = true;
    eventually("app is up again", || last(&db, "up", "app") == Some(1.0)).await;
    let temp = series(&db, "temp", "app");
    let back = temp
        .iter()
        .find(|(l, _)| l.get("exported_job").is_none())
        .unwrap();
    assert_eq!(back.1.last().unwrap().1, 3.5);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_split_targets_so_each_is_scraped_once() {
    let mut targets = Vec::new();
    for _ in 0..6 {
        targets.push(start_target().await);
    }
    for (_, t) in &targets {
        *t.body.lock() = "x 1\n".into();
    }
    let list: Vec<String> = targets.iter().map(|(a, _)| format!("'{a}'")).collect();
    let yaml = format!(
        "global: {{scrape_interval: 100ms}}\nscrape_configs: [{{job_name: s, static_configs: [{{targets: [{}]}}]}}]",
        list.join(",")
    );
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small_opts()).unwrap());
    let mut owned = 0;
    let mut stops = Vec::new();
    for id in 0..3 {
        let config = Config::parse(&yaml, dir.path().to_path_buf()).unwrap();
        let mut manager = Manager::new(db.clone(), config, Sharding::new(id, 3).unwrap()).unwrap();
        manager.sync();
        owned += manager.targets().len();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(manager.run(async move {
            let _ = stopped.await;
        }));
    }
    assert_eq!(owned, 6, "the three collectors own every target once");
    eventually("every target is up", || series(&db, "up", "s").len() == 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Scraped by exactly one collector: one sample per ~100 ms interval, not
    // two or three (a second collector would double the rate).
    for (l, s) in series(&db, "up", "s") {
        let span_ms = s.last().unwrap().0 - s[0].0;
        let per_interval = (s.len() as f64 - 1.0) / (span_ms as f64 / 100.0);
        assert!(
            per_interval < 1.5,
            "{l:?}: {} samples in {span_ms} ms",
            s.len()
        );
    }
    drop(stops);
}
