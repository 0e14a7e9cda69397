//! Differential test against real Prometheus (Debian's `prometheus`): both
//! receive the same remote-write payloads, then answer the same PromQL over
//! `/api/v1/query` and `/api/v1/query_range`; results must agree (same
//! series, same timestamps, values within 1e-9 relative).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use testkit::{ChildGuard, free_port, wait_for_port};
use tsdb::http::{Api, remote_write};
use tsdb::promql::QueryLimits;
use tsdb::{Db, Options};

const STEP_MS: i64 = 15_000;

type Wire = Vec<remote_write::WireSeries>;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// 40 minutes of counters (with a reset), gauges, histogram buckets and a
/// series that goes stale, every 15 s, ending at `end_ms`.
fn dataset(end_ms: i64) -> Wire {
    let mut rng = fastrand::Rng::with_seed(14);
    let n = 160;
    let start = end_ms - n * STEP_MS;
    let ts = |i: i64| start + i * STEP_MS;
    let mut out: Wire = Vec::new();
    for inst in ["a", "b"] {
        for method in ["GET", "POST"] {
            for code in ["200", "500"] {
                let mut v = 0.0;
                let samples = (0..n)
                    .map(|i| {
                        v += f64::from(rng.u32(0..20));
                        if inst == "b" && method == "GET" && code == "200" && i == 90 {
                            v = 3.0; // a counter reset
                        }
                        (ts(i), v)
                    })
                    .collect();
                out.push((
                    labels(&[
                        ("__name__", "http_requests_total"),
                        ("job", "api"),
                        ("instance", inst),
                        ("method", method),
                        ("code", code),
                    ]),
                    samples,
                ));
            }
        }
    }
    for cpu in ["0", "1"] {
        for mode in ["idle", "user"] {
            let samples = (0..n)
                .map(|i| (ts(i), (rng.f64() * 100.0).round() / 4.0))
                .collect();
            out.push((
                labels(&[
                    ("__name__", "node_cpu"),
                    ("cpu", cpu),
                    ("mode", mode),
                    ("instance", "a"),
                ]),
                samples,
            ));
        }
    }
    let mut counts = [0.0f64; 4];
    let les = ["0.1", "0.5", "1", "+Inf"];
    let mut hist: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 4];
    for i in 0..n {
        let mut add = 0.0;
        for (b, c) in counts.iter_mut().enumerate() {
            add += f64::from(rng.u32(0..5)) + b as f64;
            *c += add;
            hist[b].push((ts(i), *c));
        }
    }
    for (b, le) in les.iter().enumerate() {
        out.push((
            labels(&[
                ("__name__", "req_duration_seconds_bucket"),
                ("job", "api"),
                ("le", le),
            ]),
            hist[b].clone(),
        ));
    }
    // `up` of a batch job that stops at i = 100 with a staleness marker.
    let mut up: Vec<(i64, f64)> = (0..100).map(|i| (ts(i), 1.0)).collect();
    up.push((ts(100), f64::from_bits(tsdb::chunk::STALE_NAN_BITS)));
    out.push((labels(&[("__name__", "up"), ("job", "batch")]), up));
    out.push((
        labels(&[("__name__", "up"), ("job", "api")]),
        (0..n).map(|i| (ts(i), 1.0)).collect(),
    ));
    out
}

const INSTANT: &[&str] = &[
    "http_requests_total",
    "http_requests_total{method=\"GET\"}",
    "http_requests_total{code=~\"5..\"}",
    "http_requests_total{instance!=\"a\",method!~\"P.*\"}",
    "http_requests_total offset 5m",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "delta(node_cpu[5m])",
    "deriv(node_cpu[5m])",
    "idelta(node_cpu[2m])",
    "predict_linear(node_cpu[10m], 600)",
    "resets(http_requests_total[20m])",
    "changes(node_cpu[5m])",
    "avg_over_time(node_cpu[5m])",
    "sum_over_time(node_cpu[5m])",
    "min_over_time(node_cpu[5m])",
    "max_over_time(node_cpu[5m])",
    "count_over_time(node_cpu[5m])",
    "last_over_time(node_cpu[5m])",
    "stddev_over_time(node_cpu[5m])",
    "stdvar_over_time(node_cpu[5m])",
    "quantile_over_time(0.9, node_cpu[10m])",
    "sum(rate(http_requests_total[5m]))",
    "sum by (method) (rate(http_requests_total[5m]))",
    "sum without (instance, code) (http_requests_total)",
    "avg by (mode) (node_cpu)",
    "min(node_cpu)",
    "max by (cpu) (node_cpu)",
    "count(http_requests_total)",
    "group by (code) (http_requests_total)",
    "stddev(node_cpu)",
    "stdvar by (mode) (node_cpu)",
    "topk(3, http_requests_total)",
    "bottomk(2, node_cpu)",
    "topk by (method) (1, http_requests_total)",
    // Ties at the k-th place: Prometheus's heap keeps the later of equal values here.
    "topk(2, (node_cpu{cpu=\"0\"} * 0 + 3) or (node_cpu{cpu=\"1\",mode=\"idle\"} * 0 + 5))",
    "bottomk(2, (node_cpu{cpu=\"0\"} * 0 + 3) or (node_cpu{cpu=\"1\",mode=\"idle\"} * 0 + 1))",
    "quantile(0.5, node_cpu)",
    "quantile by (mode) (0.25, node_cpu)",
    "count_values(\"value\", node_cpu)",
    "histogram_quantile(0.9, rate(req_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(req_duration_seconds_bucket[5m])))",
    "abs(node_cpu - 10)",
    "ceil(node_cpu / 3)",
    "floor(node_cpu / 3)",
    "round(node_cpu / 3)",
    "round(node_cpu, 5)",
    "clamp(node_cpu, 5, 20)",
    "clamp_min(node_cpu, 10)",
    "clamp_max(node_cpu, 10)",
    "label_replace(node_cpu, \"core\", \"c$1\", \"cpu\", \"(.*)\")",
    "label_join(node_cpu, \"both\", \"-\", \"cpu\", \"mode\")",
    "time()",
    "vector(7)",
    "scalar(sum(node_cpu))",
    "sort(node_cpu)",
    "sort_desc(node_cpu)",
    "absent(nonexistent{job=\"x\"})",
    "absent(node_cpu)",
    "up",
    "up == 1",
    "node_cpu > 10",
    "node_cpu > bool 10",
    "2 * node_cpu + 1",
    "1 - node_cpu / 100",
    "node_cpu % 7",
    "node_cpu ^ 2",
    "2 ^ 3 ^ 2",
    "-node_cpu",
    "http_requests_total{code=\"200\"} / ignoring(code) http_requests_total{code=\"500\"}",
    "sum by (instance) (http_requests_total) / on(instance) group_left sum by (instance, method) (http_requests_total)",
    "sum by (instance, method) (http_requests_total) / on(instance) group_left sum by (instance) (http_requests_total)",
    "sum by (instance) (http_requests_total) / on(instance) group_right sum by (instance, method) (http_requests_total)",
    "node_cpu{mode=\"idle\"} > on(cpu) node_cpu{mode=\"user\"}",
    "node_cpu{mode=\"idle\"} > bool on(cpu) node_cpu{mode=\"user\"}",
    "http_requests_total and http_requests_total{method=\"GET\"}",
    "http_requests_total unless http_requests_total{code=\"500\"}",
    "node_cpu or up",
    "max_over_time(rate(http_requests_total[2m])[10m:1m])",
    "avg_over_time(node_cpu[10m:30s])",
    "node_cpu @ end()",
];

const RANGE: &[&str] = &[
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "sum by (method) (increase(http_requests_total[5m]))",
    "avg_over_time(node_cpu[3m])",
    "up",
    "histogram_quantile(0.9, rate(req_duration_seconds_bucket[5m]))",
    "topk(2, node_cpu)",
    "node_cpu > 12",
    "time()",
    "node_cpu offset 1m",
    "node_cpu @ start()",
    "max_over_time(rate(http_requests_total[2m])[5m:1m])",
];

/// Parses a result into `metric → [(t, value)]` for comparison.
fn normalise(body: &Json) -> (String, BTreeMap<String, Vec<(f64, f64)>>) {
    assert_eq!(body["status"], "success", "{body}");
    let data = &body["data"];
    let kind = data["resultType"].as_str().unwrap().to_string();
    let pt = |p: &Json| {
        (
            p[0].as_f64().unwrap(),
            p[1].as_str().unwrap().parse::<f64>().unwrap(),
        )
    };
    let mut out = BTreeMap::new();
    match kind.as_str() {
        "scalar" => drop(out.insert(String::new(), vec![pt(&data["result"])])),
        "vector" => {
            for e in data["result"].as_array().unwrap() {
                out.insert(e["metric"].to_string(), vec![pt(&e["value"])]);
            }
        }
        "matrix" => {
            for e in data["result"].as_array().unwrap() {
                out.insert(
                    e["metric"].to_string(),
                    e["values"].as_array().unwrap().iter().map(pt).collect(),
                );
            }
        }
        other => panic!("unexpected resultType {other}"),
    }
    (kind, out)
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

async fn get(
    client: &reqwest::Client,
    port: u16,
    path: &str,
    params: &[(&str, String)],
) -> (u16, Json) {
    let resp = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[test]
fn promql_matches_prometheus() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("prometheus is not installed (scripts/test installs Debian's package)");
    }
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
    let _prom = ChildGuard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let opts = Options {
        maintenance_interval_ms: 0,
        // Each payload carries 40 minutes of a few series, as a backfill does.
        out_of_order_window_ms: 2 * tsdb::HOUR_MS,
        ..Options::default()
    };
    let db = Arc::new(Db::open(dir.path().join("ours"), opts).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let our_port = listener.local_addr().unwrap().port();
    rt.spawn(tsdb::http::serve(
        listener,
        Api {
            db,
            limits: QueryLimits::default(),
        },
    ));
    wait_for_port(prom_port, Duration::from_secs(20), "prometheus");

    let now = i64::try_from(clock::now_ms()).unwrap() / 1000 * 1000;
    let end = now - 60_000;
    let data = dataset(end);
    let client = reqwest::Client::new();
    rt.block_on(async {
        // Prometheus answers 503 until its storage is ready.
        for _ in 0..200 {
            let ok = client
                .get(format!("http://127.0.0.1:{prom_port}/-/ready"))
                .send()
                .await
                .map(|r| r.status().is_success());
            if matches!(ok, Ok(true)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for chunk in data.chunks(4) {
            let body = remote_write::encode(chunk);
            for port in [prom_port, our_port] {
                let r = client
                    .post(format!("http://127.0.0.1:{port}/api/v1/write"))
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status().as_u16(),
                    204,
                    "write to {port}: {}",
                    r.text().await.unwrap()
                );
            }
        }
        let t = (end - 10 * 60_000) as f64 / 1000.0;
        let mut failures = Vec::new();
        let mut non_empty = 0usize;
        let mut check = |what: String, a: (u16, Json), b: (u16, Json)| {
            if a.0 != b.0 {
                failures.push(format!(
                    "{what}: status prometheus {} ours {}: {} / {}",
                    a.0, b.0, a.1, b.1
                ));
                return;
            }
            if a.1["status"] == "error" || b.1["status"] == "error" {
                if a.1["errorType"] != b.1["errorType"] {
                    failures.push(format!(
                        "{what}:\n  prometheus {}\n  ours       {}",
                        a.1, b.1
                    ));
                }
                return;
            }
            let (ka, ma) = normalise(&a.1);
            let (kb, mb) = normalise(&b.1);
            let same = ka == kb
                && ma.len() == mb.len()
                && ma.iter().zip(&mb).all(|((la, va), (lb, vb))| {
                    la == lb
                        && va.len() == vb.len()
                        && va
                            .iter()
                            .zip(vb)
                            .all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
                });
            non_empty += usize::from(!ma.is_empty());
            if !same {
                failures.push(format!(
                    "{what}:\n  prometheus {}\n  ours       {}",
                    a.1, b.1
                ));
            }
        };
        for q in INSTANT {
            let params = [("query", q.to_string()), ("time", t.to_string())];
            let a = get(&client, prom_port, "/api/v1/query", &params).await;
            let b = get(&client, our_port, "/api/v1/query", &params).await;
            check(format!("instant {q}"), a, b);
        }
        let (start, stop) = (
            (end - 35 * 60_000) as f64 / 1000.0,
            (end - 60_000) as f64 / 1000.0,
        );
        for q in RANGE {
            let params = [
                ("query", q.to_string()),
                ("start", start.to_string()),
                ("end", stop.to_string()),
                ("step", "60".to_string()),
            ];
            let a = get(&client, prom_port, "/api/v1/query_range", &params).await;
            let b = get(&client, our_port, "/api/v1/query_range", &params).await;
            check(format!("range {q}"), a, b);
        }
        eprintln!("{non_empty} non-empty results compared");
        assert!(
            non_empty >= 80,
            "only {non_empty} queries returned data: the dataset or the writes are broken"
        );
        assert!(
            failures.is_empty(),
            "{} of {} queries differ:\n{}",
            failures.len(),
            INSTANT.len() + RANGE.len(),
            failures.join("\n")
        );
    });
}
