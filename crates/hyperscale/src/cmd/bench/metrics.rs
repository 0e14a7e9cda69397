//! `hyperscale bench metrics`: remote-write ingestion and PromQL query
//! latency, for our `hyperscale metrics serve` or any Prometheus (2.42 with
//! `--web.enable-remote-write-receiver`), with the same load.
//!
//! Ingest: `--series` node-exporter-like series (`tsdb::workload`), each
//! with `--points` samples 15 s apart ending now, sent by `--writers`
//! concurrent writers in remote-write requests of `--samples-per-request`
//! samples. Each writer owns a share of the series and sends them in time
//! order, like one of Prometheus's remote-write shards (Prometheus rejects
//! out-of-order samples), and stays within [`LAG_ROUNDS`] scrapes of the
//! slowest writer, as shards sending live data do (a backfill at full speed
//! would otherwise leave a slow writer behind the servers' window for late
//! samples: 1 hour for Prometheus, `out_of_order_window_ms` for ours).
//! Request bodies are built before the clock starts, so the figure is the
//! server's, not the encoder's.
//!
//! Queries: a dashboard of 20 queries (10 expressions, each instant at the
//! last sample and as a range over the last hour at a 60 s step), each run
//! `--query-repeats` times; p50/p99 per query and over the dashboard, and
//! how many series each returned (equal counts from two servers say they
//! answered the same question). Keep the generator on another core than the
//! server (`taskset`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use tsdb::http::remote_write::{WireSeries, encode};
use tsdb::workload::{self, Kind};

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale bench metrics`.
#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the server (ours or Prometheus).
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    server: String,
    /// Distinct series.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Samples per series, 15 s apart, the last one now (1440 = 6 hours).
    #[arg(long, default_value_t = 1440)]
    points: usize,
    /// Samples per remote-write request (Prometheus sends up to 2000).
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    /// Concurrent writers (Prometheus's remote-write shards).
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Runs of each dashboard query.
    #[arg(long, default_value_t = 10)]
    query_repeats: usize,
    /// Only query (the data of an earlier run with the same --series/--points
    /// and the last sample at --end-ms).
    #[arg(long)]
    skip_ingest: bool,
    /// Only ingest.
    #[arg(long)]
    skip_queries: bool,
    /// Time of the last sample, unix ms [default: now, rounded to 15 s].
    #[arg(long)]
    end_ms: Option<i64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// How many scrape rounds a writer may run ahead of the slowest one.
const LAG_ROUNDS: usize = 8;

/// One request: the scrape rounds of its first and last samples, and its body.
type Body = (usize, usize, Vec<u8>);

/// Bounds on the flags (memory: every request body is built up front).
const SERIES_MAX: usize = 10_000_000;
const SAMPLES_MAX: usize = 200_000_000;
const SAMPLES_PER_REQUEST_MAX: usize = 100_000;
const WRITERS_MAX: usize = 1024;
const QUERY_REPEATS_MAX: usize = 10_000;

#[derive(serde::Serialize)]
struct Report {
    server: String,
    end_ms: i64,
    ingest: Option<Ingest>,
    queries: Vec<QueryReport>,
    dashboard_p50_ms: f64,
    dashboard_p99_ms: f64,
}

#[derive(serde::Serialize)]
struct Ingest {
    series: usize,
    samples: u64,
    requests: usize,
    request_bytes: u64,
    errors: usize,
    first_error: Option<String>,
    seconds: f64,
    samples_per_sec: f64,
    request_p50_ms: f64,
    request_p99_ms: f64,
}

#[derive(serde::Serialize)]
struct QueryReport {
    query: String,
    range: bool,
    series: usize,
    p50_ms: f64,
    p99_ms: f64,
}

/// The dashboard's expressions (each also run as a range query).
const DASHBOARD: [&str; 10] = [
    r#"count({job="node"})"#,
    "sum(node_filesystem_size_bytes)",
    "sum by (instance) (rate(node_network_receive_bytes_total[5m]))",
    "topk(5, rate(node_cpu_seconds_total[5m]))",
    "avg by (instance) (avg_over_time(node_memory_active_bytes[10m]))",
    "sum by (instance) (increase(node_network_receive_errs_total[15m]))",
    "max_over_time(node_memory_active_bytes[30m]) - min_over_time(node_memory_active_bytes[30m])",
    r#"sum by (instance) (rate({job="node"}[5m]))"#,
    "quantile(0.9, rate(node_cpu_seconds_total[5m]))",
    r#"count by (__name__) ({job="node"})"#,
];

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=SERIES_MAX).contains(&args.series) && args.points >= 1,
        "--series must be 1..={SERIES_MAX} and --points at least 1"
    );
    anyhow::ensure!(
        args.series.saturating_mul(args.points) <= SAMPLES_MAX,
        "--series × --points must be at most {SAMPLES_MAX} (request bodies are built up front)"
    );
    anyhow::ensure!(
        (1..=SAMPLES_PER_REQUEST_MAX).contains(&args.samples_per_request),
        "--samples-per-request must be 1..={SAMPLES_PER_REQUEST_MAX}"
    );
    anyhow::ensure!(
        (1..=WRITERS_MAX).contains(&args.writers),
        "--writers must be 1..={WRITERS_MAX}"
    );
    anyhow::ensure!(
        (1..=QUERY_REPEATS_MAX).contains(&args.query_repeats),
        "--query-repeats must be 1..={QUERY_REPEATS_MAX}"
    );
    let interval = workload::SCRAPE_INTERVAL_MS;
    let end_ms = args
        .end_ms
        .unwrap_or_else(|| clock::now_ms() as i64 / interval * interval);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let server = args.server.trim_end_matches('/').to_string();
    let client = reqwest::Client::new();
    let ingest = if args.skip_ingest {
        None
    } else {
        let start_ms = end_ms - (args.points as i64 - 1) * interval;
        note("building request bodies...\n");
        let bodies = build_bodies(&args, start_ms);
        Some(runtime.block_on(ingest(&client, &server, bodies, &args))?)
    };
    let mut queries = Vec::new();
    let mut all_us = Vec::new();
    if !args.skip_queries {
        for range in [false, true] {
            for query in DASHBOARD {
                let (report, lat) =
                    runtime.block_on(time_query(&client, &server, query, range, end_ms, &args))?;
                all_us.extend(lat);
                queries.push(report);
            }
        }
    }
    all_us.sort_unstable();
    let pct = |p: f64| ms(clock::latency::percentile(&all_us, p).unwrap_or(0));
    let report = Report {
        server,
        end_ms,
        ingest,
        queries,
        dashboard_p50_ms: pct(0.50),
        dashboard_p99_ms: pct(0.99),
    };
    if args.json {
        emit_json(&report)?;
    } else {
        print(&report)?;
    }
    if let Some(ingest) = &report.ingest {
        anyhow::ensure!(
            ingest.errors == 0,
            "{} requests failed; the first: {}",
            ingest.errors,
            ingest.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Every writer's request bodies, in the order it sends them.
fn build_bodies(args: &Args, start_ms: i64) -> Vec<Vec<Body>> {
    (0..args.writers)
        .map(|w| {
            let mine: Vec<usize> = (w..args.series).step_by(args.writers).collect();
            let labels: Vec<Vec<(String, String)>> =
                mine.iter().map(|&i| workload::labels(i)).collect();
            let mut rng = fastrand::Rng::with_seed(w as u64);
            let mut values: Vec<f64> = mine.iter().map(|&i| Kind::of(i).start()).collect();
            let mut bodies = Vec::new();
            // Samples of the request being filled, per series (index in `mine`).
            let mut batch: Vec<Vec<(i64, f64)>> = vec![Vec::new(); mine.len()];
            let (mut filled, mut first_round) = (0, 0);
            let flush = |batch: &mut Vec<Vec<(i64, f64)>>,
                         bodies: &mut Vec<Body>,
                         rounds: (usize, usize)| {
                let series: Vec<WireSeries> = batch
                    .iter_mut()
                    .zip(&labels)
                    .filter(|(samples, _)| !samples.is_empty())
                    .map(|(samples, labels)| (labels.clone(), std::mem::take(samples)))
                    .collect();
                if !series.is_empty() {
                    bodies.push((rounds.0, rounds.1, encode(&series)));
                }
            };
            for round in 0..args.points {
                let t = start_ms + round as i64 * workload::SCRAPE_INTERVAL_MS;
                for (k, &i) in mine.iter().enumerate() {
                    if filled == 0 {
                        first_round = round;
                    }
                    values[k] = Kind::of(i).next(&mut rng, values[k]);
                    batch[k].push((workload::jitter(&mut rng, t), values[k]));
                    filled += 1;
                    if filled == args.samples_per_request {
                        flush(&mut batch, &mut bodies, (first_round, round));
                        filled = 0;
                    }
                }
            }
            flush(&mut batch, &mut bodies, (first_round, args.points - 1));
            bodies
        })
        .collect()
}

async fn ingest(
    client: &reqwest::Client,
    server: &str,
    bodies: Vec<Vec<Body>>,
    args: &Args,
) -> anyhow::Result<Ingest> {
    let url = format!("{server}/api/v1/write");
    let requests: usize = bodies.iter().map(Vec::len).sum();
    let request_bytes: u64 = bodies.iter().flatten().map(|b| b.2.len() as u64).sum();
    // The round of the last sample each writer has had acknowledged (or
    // failed): a writer whose next request starts more than LAG_ROUNDS past
    // the slowest one's waits. The slowest writer's next request starts at
    // most one round past its last, so it never waits.
    let sent_rounds: Arc<Vec<AtomicUsize>> =
        Arc::new((0..bodies.len()).map(|_| AtomicUsize::new(0)).collect());
    let moved = Arc::new(tokio::sync::Notify::new());
    note(&format!(
        "sending {requests} requests ({:.1} MB) from {} writers...\n",
        request_bytes as f64 / 1e6,
        args.writers
    ));
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(w, bodies)| {
            let (client, url) = (client.clone(), url.clone());
            let (sent_rounds, moved) = (sent_rounds.clone(), moved.clone());
            tokio::spawn(async move {
                let mut lat_us = Vec::with_capacity(bodies.len());
                let mut errors = Vec::new();
                for (round, last_round, body) in bodies {
                    loop {
                        let notified = moved.notified();
                        let slowest = sent_rounds
                            .iter()
                            .map(|r| r.load(Ordering::Acquire))
                            .min()
                            .unwrap_or(0);
                        if round <= slowest + LAG_ROUNDS {
                            break;
                        }
                        notified.await;
                    }
                    let sent = Instant::now();
                    let reply = client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body)
                        .send()
                        .await;
                    match reply {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            errors.push(format!("{status}: {}", text.trim()));
                        }
                        Err(err) => errors.push(err.to_string()),
                    }
                    lat_us.push(sent.elapsed().as_micros() as u64);
                    sent_rounds[w].store(last_round, Ordering::Release);
                    moved.notify_waiters();
                }
                sent_rounds[w].store(usize::MAX / 2, Ordering::Release);
                moved.notify_waiters();
                (lat_us, errors)
            })
        })
        .collect();
    let mut lat_us = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (lat, errs) = task.await.context("a writer task failed")?;
        lat_us.extend(lat);
        errors.extend(errs);
    }
    let seconds = started.elapsed().as_secs_f64();
    lat_us.sort_unstable();
    let pct = |p: f64| ms(clock::latency::percentile(&lat_us, p).unwrap_or(0));
    let samples = (args.series * args.points) as u64;
    Ok(Ingest {
        series: args.series,
        samples,
        requests,
        request_bytes,
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        seconds,
        samples_per_sec: samples as f64 / seconds,
        request_p50_ms: pct(0.50),
        request_p99_ms: pct(0.99),
    })
}

/// Runs `query` `--query-repeats` times; its report and latencies (µs).
async fn time_query(
    client: &reqwest::Client,
    server: &str,
    query: &str,
    range: bool,
    end_ms: i64,
    args: &Args,
) -> anyhow::Result<(QueryReport, Vec<u64>)> {
    let end = format!("{:.3}", end_ms as f64 / 1000.0);
    let start = format!("{:.3}", (end_ms - 3_600_000) as f64 / 1000.0);
    let (path, params): (&str, Vec<(&str, &str)>) = if range {
        let p = vec![
            ("query", query),
            ("start", &start),
            ("end", &end),
            ("step", "60"),
        ];
        ("query_range", p)
    } else {
        ("query", vec![("query", query), ("time", &end)])
    };
    let url = format!("{server}/api/v1/{path}");
    let mut lat_us = Vec::with_capacity(args.query_repeats);
    let mut series = 0;
    for _ in 0..args.query_repeats {
        let sent = Instant::now();
        let reply = client
            .post(&url)
            .form(&params)
            .send()
            .await
            .with_context(|| format!("{url} did not answer"))?;
        let status = reply.status();
        let body: serde_json::Value = reply
            .json()
            .await
            .with_context(|| format!("{url}: not JSON"))?;
        lat_us.push(sent.elapsed().as_micros() as u64);
        anyhow::ensure!(
            status.is_success() && body["status"] == "success",
            "{query}: {status} {body}"
        );
        series = body["data"]["result"].as_array().map_or(0, Vec::len);
    }
    let mut sorted = lat_us.clone();
    sorted.sort_unstable();
    let pct = |p: f64| ms(clock::latency::percentile(&sorted, p).unwrap_or(0));
    let report = QueryReport {
        query: query.to_string(),
        range,
        series,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    };
    Ok((report, lat_us))
}

fn print(report: &Report) -> anyhow::Result<()> {
    let mut text = format!("server {}\n", report.server);
    if let Some(i) = &report.ingest {
        let rows = [
            ("series", i.series.to_string()),
            ("samples", i.samples.to_string()),
            ("requests", i.requests.to_string()),
            ("request MB", format!("{:.1}", i.request_bytes as f64 / 1e6)),
            ("errors", i.errors.to_string()),
            ("seconds", format!("{:.2}", i.seconds)),
            ("samples/s", format!("{:.0}", i.samples_per_sec)),
            ("request p50", format!("{:.2} ms", i.request_p50_ms)),
            ("request p99", format!("{:.2} ms", i.request_p99_ms)),
        ]
        .map(|(name, value)| [name.to_owned(), value]);
        text.push_str(&table::render(&rows));
        text.push('\n');
    }
    if !report.queries.is_empty() {
        let mut rows = vec![[
            "QUERY".to_string(),
            "KIND".into(),
            "SERIES".into(),
            "P50 MS".into(),
            "P99 MS".into(),
        ]];
        for q in &report.queries {
            rows.push([
                q.query.clone(),
                if q.range { "range 1h/60s" } else { "instant" }.into(),
                q.series.to_string(),
                format!("{:.2}", q.p50_ms),
                format!("{:.2}", q.p99_ms),
            ]);
        }
        text.push_str(&table::render(&rows));
        text.push_str(&format!(
            "\ndashboard of {} queries: p50 {:.2} ms, p99 {:.2} ms\n",
            report.queries.len(),
            report.dashboard_p50_ms,
            report.dashboard_p99_ms
        ));
    }
    emit(&text)
}
