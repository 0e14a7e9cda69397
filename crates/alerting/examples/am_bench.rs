//! Alert manager benchmark: alerts/s through grouping and de-duplication,
//! ours against Alertmanager (Debian `prometheus-alertmanager`) on the same
//! workload, one after the other in one run (so the machine's load is the
//! same for both): 10,000 distinct alerts in 100 groups, each alert posted
//! 5 times (50,000 alert posts, in batches of 500 through `POST
//! /api/v2/alerts`, 4 clients at once, as Prometheus sends them). Timed:
//! the posts (alerts/s accepted) and until the webhook has one notification
//! per group holding all its alerts (de-duplication: exactly 100
//! notifications). Three rounds each; medians.
//!
//! `cargo run --release -p alerting --example am_bench [-- --alertmanager BIN]`
// A benchmark may unwrap: a failure ends it with the reason.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alerting::am::{AlertManager, AmOptions, parse_config};
use serde_json::{Value, json};

const ALERTS: usize = 10_000;
const GROUPS: usize = 100;
const REPEATS: usize = 5;
const BATCH: usize = 500;
const CLIENTS: usize = 4;
const ROUNDS: usize = 3;

/// The webhook sink: counts notifications and the alerts in them.
#[derive(Clone, Default)]
struct Sink {
    notifications: Arc<AtomicUsize>,
    alerts: Arc<AtomicUsize>,
}

async fn start_sink() -> (Sink, u16) {
    let sink = Sink::default();
    let s = sink.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let s = s.clone();
            async move {
                s.notifications.fetch_add(1, Ordering::SeqCst);
                let n = body.0["alerts"].as_array().map_or(0, Vec::len);
                s.alerts.fetch_add(n, Ordering::SeqCst);
                axum::http::StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(axum::serve(l, app).into_future());
    (sink, port)
}

fn config(sink_port: u16) -> String {
    format!(
        "route:\n  receiver: web\n  group_by: [alertname, service]\n  group_wait: 1s\n  group_interval: 1m\n  \
         repeat_interval: 1h\nreceivers:\n- name: web\n  webhook_configs:\n  - url: http://127.0.0.1:{sink_port}/hook\n"
    )
}

/// The batches of one round: every alert `REPEATS` times, interleaved.
fn batches(round: usize) -> Vec<Value> {
    let ends = "2099-01-01T00:00:00Z";
    let all: Vec<Value> = (0..REPEATS)
        .flat_map(|_| 0..ALERTS)
        .map(|i| {
            json!({
                "labels": {"alertname": format!("Bench{round}"), "service": format!("s{}", i % GROUPS), "instance": format!("i{i}")},
                "annotations": {"summary": "benchmark alert"},
                "endsAt": ends,
            })
        })
        .collect();
    all.chunks(BATCH)
        .map(|c| Value::Array(c.to_vec()))
        .collect()
}

/// Posts a round to `url`; returns (posting time, time until every group
/// was notified with all its alerts).
async fn round(url: &str, sink: &Sink, round: usize) -> (Duration, Duration) {
    let client = reqwest::Client::new();
    let work = Arc::new(parking_lot::Mutex::new(batches(round)));
    let (n0, a0) = (
        sink.notifications.load(Ordering::SeqCst),
        sink.alerts.load(Ordering::SeqCst),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, work, url) = (client.clone(), work.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(batch) = work.lock().pop() else {
                    return;
                };
                let r = client
                    .post(format!("{url}/api/v2/alerts"))
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let posted = started.elapsed();
    loop {
        let n = sink.notifications.load(Ordering::SeqCst) - n0;
        let a = sink.alerts.load(Ordering::SeqCst) - a0;
        if n >= GROUPS && a >= ALERTS {
            assert_eq!(
                (n, a),
                (GROUPS, ALERTS),
                "de-duplicated into one notification per group"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {n} notifications, {a} alerts"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (posted, started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run_rounds(name: &str, url: &str, sink: &Sink) -> (Duration, Duration) {
    let (mut posts, mut totals) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        let (p, t) = round(url, sink, r).await;
        println!(
            "{name} round {}: posted {} alerts in {:.2} s ({:.0} alerts/s); all {GROUPS} groups notified after {:.2} s",
            r + 1,
            ALERTS * REPEATS,
            p.as_secs_f64(),
            (ALERTS * REPEATS) as f64 / p.as_secs_f64(),
            t.as_secs_f64()
        );
        posts.push(p);
        totals.push(t);
    }
    (median(posts), median(totals))
}

async fn wait_ready(url: &str) {
    let started = Instant::now();
    while reqwest::get(format!("{url}/-/ready")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{url} never ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = std::env::args()
        .skip_while(|a| a != "--alertmanager")
        .nth(1)
        .unwrap_or_else(|| "prometheus-alertmanager".into());
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();

    let (sink, port) = start_sink().await;
    let am = AlertManager::open(
        parse_config(&config(port)).unwrap(),
        AmOptions {
            data_dir: dir.path().join("ours"),
            ..AmOptions::default()
        },
    )
    .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(axum::serve(l, alerting::am::api::router(am.clone())).into_future());
    tokio::spawn(am.run(std::future::pending()));
    results.push(("ours", run_rounds("ours", &url, &sink).await));

    let (sink, port) = start_sink().await;
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(&file, config(port)).unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let am_port = free.local_addr().unwrap().port();
    drop(free);
    let mut child = std::process::Command::new(&bin)
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e} (Debian prometheus-alertmanager)"));
    let url = format!("http://127.0.0.1:{am_port}");
    wait_ready(&url).await;
    results.push((
        "alertmanager",
        run_rounds("alertmanager", &url, &sink).await,
    ));
    let _ = child.kill();
    let _ = child.wait();

    let anchor = results[1].1;
    println!(
        "\n| server | median post time | alerts/s | median until all groups notified | ratio alerts/s (ours / Alertmanager) |"
    );
    println!("|---|---|---|---|---|");
    for (name, (post, total)) in &results {
        println!(
            "| {name} | {:.2} s | {:.0} | {:.2} s | {:.2} |",
            post.as_secs_f64(),
            (ALERTS * REPEATS) as f64 / post.as_secs_f64(),
            total.as_secs_f64(),
            anchor.0.as_secs_f64() / post.as_secs_f64()
        );
    }
}
