//! The alert manager: delivery with retries (a webhook that fails N times
//! receives each notification once), no re-send of a flapping alert inside
//! `repeat_interval`, inhibition, silences surviving a restart, history,
//! and `amtool` (Debian's `prometheus-alertmanager`) against ours.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alerting::am::notify::RetryPolicy;
use alerting::am::{AlertManager, AmOptions, Role, parse_config};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value as Json, json};

/// A webhook sink: fails the first `fail_first` requests per path with 500.
#[derive(Clone, Default)]
struct Sink {
    got: Arc<Mutex<Vec<(String, Json)>>>,
    calls: Arc<AtomicUsize>,
    fail_first: usize,
}

async fn start_sink(fail_first: usize) -> (Sink, u16) {
    let sink = Sink {
        fail_first,
        ..Default::default()
    };
    let s = sink.clone();
    let app = axum::Router::new().route(
        "/{path}",
        post(
            move |axum::extract::Path(path): axum::extract::Path<String>,
                  body: axum::Json<Json>| {
                let s = s.clone();
                async move {
                    let n = s.calls.fetch_add(1, Ordering::SeqCst);
                    if path == "hook" && n < s.fail_first {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    s.got.lock().push((path, body.0));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(axum::serve(l, app).into_future());
    (sink, port)
}

fn config(sink_port: u16) -> String {
    format!(
        r#"route:
  receiver: web
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 400ms
  repeat_interval: 1h
  routes:
  - matchers: ['severity="quiet"']
    receiver: quiet
receivers:
- name: web
  webhook_configs:
  - url: http://127.0.0.1:{sink_port}/hook
- name: quiet
  webhook_configs:
  - url: http://127.0.0.1:{sink_port}/quiet
    send_resolved: false
inhibit_rules:
- source_matchers: ['severity="critical"']
  target_matchers: ['severity="warning"']
  equal: [instance]
"#
    )
}

async fn start_am(
    dir: &std::path::Path,
    sink_port: u16,
    tokens: BTreeMap<String, Role>,
) -> (AlertManager, u16) {
    let opts = AmOptions {
        data_dir: dir.to_path_buf(),
        tokens,
        retry: RetryPolicy {
            initial_backoff_ms: 50,
            max_backoff_ms: 200,
            max_attempts: 10,
            timeout_ms: 2000,
        },
        tick_ms: 20,
        ..AmOptions::default()
    };
    let am = AlertManager::open(parse_config(&config(sink_port)).unwrap(), opts).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(axum::serve(l, alerting::am::api::router(am.clone())).into_future());
    tokio::spawn(am.clone().run(std::future::pending()));
    (am, port)
}

async fn post_alerts(port: u16, alerts: Json) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn get(port: u16, path: &str) -> Json {
    reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_webhook_gets_each_notification_once_and_flapping_is_not_resent() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, sink_port) = start_sink(3).await;
    let (_am, port) = start_am(dir.path(), sink_port, BTreeMap::new()).await;
    post_alerts(port, json!([{"labels": {"alertname": "Down", "instance": "x"}, "annotations": {"summary": "x is down"}}])).await;
    // group_wait 200 ms, then 3 failures with 50/100/200 ms backoff, then success;
    // several group_intervals pass meanwhile and after.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let hooks: Vec<Json> = sink
        .got
        .lock()
        .iter()
        .filter(|(p, _)| p == "hook")
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(sink.calls.load(Ordering::SeqCst), 4);
    let h = &hooks[0];
    assert_eq!(h["version"], "4");
    assert_eq!(h["status"], "firing");
    assert_eq!(h["receiver"], "web");
    assert_eq!(h["groupLabels"], json!({"alertname": "Down"}));
    assert_eq!(h["alerts"][0]["annotations"]["summary"], "x is down");
    // History: three failed attempts and one success, in order.
    let hist = get(port, "/api/v1/history?kind=notify").await;
    let whats: Vec<String> = hist["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["what"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(whats, ["failed", "failed", "failed", "ok"]);

    // Flapping on a receiver without send_resolved: fires, resolves, fires again.
    let quiet = json!({"alertname": "Flap", "severity": "quiet"});
    post_alerts(port, json!([{"labels": quiet}])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = alerting::http::rfc3339(Some(i64::try_from(clock::now_ms()).unwrap()));
    post_alerts(port, json!([{"labels": quiet, "endsAt": now}])).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    post_alerts(port, json!([{"labels": quiet}])).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let quiet_hooks = sink.got.lock().iter().filter(|(p, _)| p == "quiet").count();
    assert_eq!(
        quiet_hooks, 1,
        "a flapping alert was re-sent inside repeat_interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inhibition_silences_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_sink, sink_port) = start_sink(0).await;
    let tokens: BTreeMap<String, Role> = [("s3cret".to_string(), Role::Silencer)].into();
    let (am, port) = start_am(dir.path(), sink_port, tokens.clone()).await;
    post_alerts(
        port,
        json!([
            {"labels": {"alertname": "Disk", "severity": "warning", "instance": "x"}},
            {"labels": {"alertname": "Disk", "severity": "warning", "instance": "y"}},
            {"labels": {"alertname": "HostDown", "severity": "critical", "instance": "x"}},
        ]),
    )
    .await;
    let alerts = get(port, "/api/v2/alerts?inhibited=false").await;
    let names: Vec<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{}",
                a["labels"]["alertname"].as_str().unwrap(),
                a["labels"]["instance"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names.len(),
        2,
        "Disk/x is inhibited by HostDown/x: {names:?}"
    );
    assert!(!names.contains(&"Disk/x".to_string()));
    // Silences need a token.
    let body = json!({"matchers": [{"name": "instance", "value": "y", "isRegex": false, "isEqual": true}], "startsAt": alerting::http::rfc3339(Some(0)), "endsAt": "2999-01-01T00:00:00Z", "createdBy": "t", "comment": "maint"});
    let c = reqwest::Client::new();
    let r = c
        .post(format!("http://127.0.0.1:{port}/api/v2/silences"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("http://127.0.0.1:{port}/api/v2/silences"))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r: Json = c
        .post(format!("http://127.0.0.1:{port}/api/v2/silences"))
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["silenceID"].as_str().unwrap().to_string();
    let silenced = get(port, "/api/v2/alerts?active=false&inhibited=false").await;
    assert_eq!(silenced.as_array().unwrap().len(), 1);
    assert_eq!(silenced[0]["status"]["silencedBy"][0], id);
    // Bad input gets a 400, not a panic.
    let r = c
        .post(format!("http://127.0.0.1:{port}/api/v2/silences"))
        .bearer_auth("s3cret")
        .json(&json!({"matchers": [], "endsAt": "2999-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .body("[{\"labels\": 5}]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    drop(am);
    // A new manager on the same directory has the silence (journal replay).
    let (_am2, port2) = start_am(dir.path(), sink_port, tokens).await;
    let s = get(port2, &format!("/api/v2/silence/{id}")).await;
    assert_eq!(s["status"]["state"], "active");
    assert_eq!(s["comment"], "maint");
    let hist = get(port2, "/api/v1/history?kind=alert").await;
    assert_eq!(hist["events"].as_array().unwrap().len(), 3, "{hist}");
}

fn amtool(port: u16, args: &[&str], extra: &[&str]) -> (bool, String) {
    let out = Command::new("amtool")
        .args(args)
        .arg(format!("--alertmanager.url=http://127.0.0.1:{port}"))
        .args(extra)
        .output()
        .expect("amtool is not installed (scripts/test installs Debian's prometheus-alertmanager)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_add_query_silence_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (_sink, sink_port) = start_sink(0).await;
    let tokens: BTreeMap<String, Role> = [("tok".to_string(), Role::Admin)].into();
    let (_am, port) = start_am(dir.path(), sink_port, tokens).await;
    let http_cfg = dir.path().join("http.yml");
    std::fs::write(
        &http_cfg,
        "authorization:\n  type: Bearer\n  credentials: tok\n",
    )
    .unwrap();
    let auth = format!("--http.config.file={}", http_cfg.display());
    let port2 = port;
    let run = move |args: Vec<String>, extra: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let e: Vec<&str> = extra.iter().map(String::as_str).collect();
            amtool(port2, &a, &e)
        })
    };
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (ok, out) = run(
        v(&[
            "alert",
            "add",
            "alertname=Amtool",
            "instance=z",
            "--annotation=summary=from amtool",
        ]),
        vec![],
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(v(&["alert", "query", "-o", "json"]), vec![])
        .await
        .unwrap();
    assert!(ok, "{out}");
    // stdout's JSON comes first (stderr, if any, follows it).
    let listed: Json = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(listed[0]["labels"]["alertname"], "Amtool");
    assert_eq!(listed[0]["annotations"]["summary"], "from amtool");
    // Without the token, adding a silence is refused; with it, it works.
    let (ok, out) = run(
        v(&[
            "silence",
            "add",
            "alertname=Amtool",
            "--comment=maint",
            "--duration=1h",
            "-a",
            "tester",
        ]),
        vec![],
    )
    .await
    .unwrap();
    assert!(!ok, "silence added without a token: {out}");
    let (ok, out) = run(
        v(&[
            "silence",
            "add",
            "alertname=Amtool",
            "--comment=maint",
            "--duration=1h",
            "-a",
            "tester",
        ]),
        vec![auth.clone()],
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    // The id is stdout's first line (amtool warns on stderr that our version differs from its own).
    let id = out.lines().next().unwrap().trim().to_string();
    assert_eq!(id.len(), 36, "{out}");
    let (ok, out) = run(v(&["silence", "query", "-q"]), vec![]).await.unwrap();
    assert!(ok && out.contains(&id), "{out}");
    let (_, out) = run(v(&["alert", "query", "-o", "json"]), vec![])
        .await
        .unwrap();
    assert!(
        !out.contains("Amtool"),
        "a silenced alert is not active: {out}"
    );
    let (_, out) = run(
        v(&["alert", "query", "-s", "-o", "json", "alertname=Amtool"]),
        vec![],
    )
    .await
    .unwrap();
    assert!(out.contains("Amtool"), "{out}");
    let (ok, out) = run(v(&["silence", "expire", &id]), vec![auth])
        .await
        .unwrap();
    assert!(ok, "{out}");
    let (_, out) = run(v(&["silence", "query", "-q"]), vec![]).await.unwrap();
    assert!(
        !out.contains(&id),
        "expired silences are not listed by default: {out}"
    );
    let (_, out) = run(v(&["alert", "query", "-o", "json"]), vec![])
        .await
        .unwrap();
    assert!(out.contains("Amtool"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_delivers_alerts_to_our_alert_manager() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, sink_port) = start_sink(0).await;
    let (_am, am_port) = start_am(&dir.path().join("am"), sink_port, BTreeMap::new()).await;
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: AlwaysOn\n    expr: vector(1)\n    labels:\n      severity: page\n    annotations:\n      summary: 'value {{ $value }}'\n",
    )
    .unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n    api_version: v2\n"
        ),
    )
    .unwrap();
    let prom_port = testkit::free_port();
    let _prom = testkit::ChildGuard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            // Its first send races the discovery of the alert manager; resend soon.
            .arg("--rules.alert.resend-delay=1s")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus is not installed (scripts/test installs Debian's package)"),
    );
    // Prometheus evaluates, sends to our API v2, we route and notify the webhook.
    let mut got = None;
    for _ in 0..300 {
        if let Some((_, body)) = sink.got.lock().iter().find(|(p, _)| p == "hook") {
            got = Some(body.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = got.expect("no notification from Prometheus's alert within 30 s");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "AlwaysOn");
    assert_eq!(body["alerts"][0]["annotations"]["summary"], "value 1");
    let listed = get(am_port, "/api/v2/alerts").await;
    assert!(
        listed[0]["generatorURL"]
            .as_str()
            .unwrap()
            .contains(&prom_port.to_string())
    );
}
