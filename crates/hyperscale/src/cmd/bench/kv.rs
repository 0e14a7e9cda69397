//! `hyperscale bench kv`: a RESP load generator, for our server or any Redis.
//!
//! Like `redis-benchmark`, each of `--clients` connections sends `--pipeline`
//! commands, waits for as many replies, and repeats; a request's latency is
//! the time from its batch's send to the batch's last reply. The mix is GET
//! with probability `--read-ratio`, else SET of a `--value-size` value, over
//! `--keyspace` random keys. Results: throughput and p50/p99/p99.9 latency,
//! as a table or `--json`. Keep the load generator on other cores than the
//! server (`taskset`) or it measures their fight for the CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale bench kv`.
#[derive(clap::Args)]
pub struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Commands in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Total commands to send.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// Bytes per SET value.
    #[arg(long, default_value_t = 3)]
    value_size: usize,
    /// Fraction of commands that are GET (the rest are SET).
    #[arg(long, default_value_t = 0.5)]
    read_ratio: f64,
    /// Password to AUTH with.
    #[arg(long)]
    password: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What one run measured.
#[derive(serde::Serialize)]
struct Report {
    requests: u64,
    errors: u64,
    seconds: f64,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients >= 1 && args.pipeline >= 1,
        "--clients and --pipeline must be at least 1"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.read_ratio),
        "--read-ratio must be between 0 and 1"
    );
    anyhow::ensure!(args.keyspace >= 1, "--keyspace must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(bench(&args))?;
    if args.json {
        emit_json(&report)?;
    } else {
        let rows = [
            ("requests", report.requests.to_string()),
            ("errors", report.errors.to_string()),
            ("seconds", format!("{:.2}", report.seconds)),
            ("ops/s", format!("{:.0}", report.ops_per_sec)),
            ("p50", format!("{:.3} ms", report.p50_ms)),
            ("p99", format!("{:.3} ms", report.p99_ms)),
            ("p99.9", format!("{:.3} ms", report.p999_ms)),
        ]
        .map(|(name, value)| [name.to_owned(), value]);
        emit(&table::render(&rows))?;
    }
    anyhow::ensure!(report.errors == 0, "{} commands failed", report.errors);
    Ok(())
}

async fn bench(args: &Args) -> anyhow::Result<Report> {
    let done = Arc::new(AtomicU64::new(0));
    let per_client = args.requests.div_ceil(args.clients as u64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..args.clients {
        let stream = TcpStream::connect(&args.addr)
            .await
            .with_context(|| format!("cannot connect to {}", args.addr))?;
        let client = Client::new(stream, args, id as u64, done.clone());
        tasks.push(tokio::spawn(client.run(per_client)));
    }
    let progress = tokio::spawn(show_progress(
        done.clone(),
        per_client * args.clients as u64,
    ));
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (lat, err) = task.await.context("a client task failed")??;
        latencies_us.extend(lat);
        errors += err;
    }
    progress.abort();
    note("\n");
    let seconds = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let pct = |p: f64| clock::latency::percentile(&latencies_us, p).unwrap_or(0) as f64 / 1000.0;
    let requests = latencies_us.len() as u64;
    Ok(Report {
        requests,
        errors,
        seconds,
        ops_per_sec: requests as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        p999_ms: pct(0.999),
    })
}

async fn show_progress(done: Arc<AtomicU64>, total: u64) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let n = done.load(Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
        note(&format!(
            "\r{n}/{total} ({:.0}%), {rate:.0} ops/s   ",
            100.0 * n as f64 / total.max(1) as f64
        ));
    }
}

/// One connection's load loop.
struct Client {
    stream: TcpStream,
    pipeline: usize,
    keyspace: u64,
    value: Vec<u8>,
    read_ratio: f64,
    password: Option<String>,
    rng: fastrand::Rng,
    done: Arc<AtomicU64>,
}

impl Client {
    fn new(stream: TcpStream, args: &Args, id: u64, done: Arc<AtomicU64>) -> Self {
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            pipeline: args.pipeline,
            keyspace: args.keyspace,
            value: vec![b'x'; args.value_size],
            read_ratio: args.read_ratio,
            password: args.password.clone(),
            rng: fastrand::Rng::with_seed(id + 1),
            done,
        }
    }

    fn push_command(&mut self, out: &mut Vec<u8>) {
        let key = format!("key:{:012}", self.rng.u64(..self.keyspace));
        let read = self.rng.f64() < self.read_ratio;
        if read {
            out.extend_from_slice(
                format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes(),
            );
        } else {
            out.extend_from_slice(
                format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
                    key.len(),
                    self.value.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(&self.value);
            out.extend_from_slice(b"\r\n");
        }
    }

    async fn run(mut self, requests: u64) -> anyhow::Result<(Vec<u32>, u64)> {
        let mut input = Vec::with_capacity(64 * 1024);
        let mut errors = 0;
        if let Some(password) = self.password.clone() {
            let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n", password.len());
            self.stream.write_all(auth.as_bytes()).await?;
            errors += self.read_replies(&mut input, 1).await?;
            anyhow::ensure!(errors == 0, "AUTH failed: check --password");
        }
        let mut latencies = Vec::with_capacity(requests as usize);
        let mut sent = 0;
        let mut batch = Vec::new();
        while sent < requests {
            let n = (self.pipeline as u64).min(requests - sent) as usize;
            batch.clear();
            for _ in 0..n {
                self.push_command(&mut batch);
            }
            let started = Instant::now();
            self.stream.write_all(&batch).await?;
            errors += self.read_replies(&mut input, n).await?;
            let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            latencies.extend(std::iter::repeat_n(micros, n));
            sent += n as u64;
            self.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok((latencies, errors))
    }

    /// Reads `count` replies; returns how many were errors.
    async fn read_replies(&mut self, input: &mut Vec<u8>, count: usize) -> anyhow::Result<u64> {
        let (mut parsed, mut errors) = (0, 0);
        let mut pos = 0;
        while parsed < count {
            match reply_end(&input[pos..]) {
                Some((len, is_error)) => {
                    pos += len;
                    parsed += 1;
                    errors += u64::from(is_error);
                }
                None => {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = self.stream.read(&mut chunk).await?;
                    anyhow::ensure!(n > 0, "the server closed the connection");
                    input.extend_from_slice(&chunk[..n]);
                }
            }
        }
        input.drain(..pos);
        Ok(errors)
    }
}

/// The length of the first complete RESP reply in `buf` and whether it is an
/// error, or `None` if it has not fully arrived.
fn reply_end(buf: &[u8]) -> Option<(usize, bool)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf[0] {
        b'+' | b':' | b'_' | b',' | b'#' => Some((after, false)),
        b'-' => Some((after, true)),
        b'$' => {
            let len: i64 = line.parse().ok()?;
            if len < 0 {
                return Some((after, false));
            }
            let end = after + len as usize + 2;
            (buf.len() >= end).then_some((end, false))
        }
        b'*' | b'%' | b'~' | b'>' => {
            let items: i64 = line.parse().ok()?;
            let items = if buf[0] == b'%' { items * 2 } else { items };
            let mut pos = after;
            for _ in 0..items.max(0) {
                let (len, _) = reply_end(&buf[pos..])?;
                pos += len;
            }
            Some((pos, false))
        }
        _ => Some((after, true)),
    }
}
