//! `hyperscale bench s3`: an S3 load generator, for our object store or any S3
//! endpoint (Garage, MinIO, AWS).
//!
//! For each `--sizes` entry it runs two phases: `--clients` concurrent tasks PUT
//! `objects` distinct objects of that size (`--objects`, capped so one phase moves at
//! most `--max-bytes`), then GET them all back, checking each length. Every request is
//! path-style and SigV4-signed with its payload's SHA-256 (computed once per size: the
//! body is the same random bytes for every object), which is what aws-cli sends over
//! plain HTTP, so the server does verify the payload. A request's latency is the time
//! from its send to its last body byte. Reports per phase: objects/s, MiB/s and p50/p99
//! latency, as a table or `--json`; progress goes to stderr. Keep the load generator on
//! other cores than the server (`taskset`), as `scripts/bench-garage` does.

mod sigv4;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;

use crate::output::{emit, emit_json, note};
use crate::table;
use sigv4::{EMPTY_SHA256, Signer};

/// The most concurrent clients (each holds one connection).
const MAX_CLIENTS: usize = 1024;
/// The largest object: S3's single-PUT limit.
const MAX_OBJECT_BYTES: u64 = 5 << 30;
/// The most objects per phase.
const MAX_OBJECTS: u64 = 10_000_000;

/// Arguments of `hyperscale bench s3`.
#[derive(clap::Args)]
pub struct Args {
    /// The S3 endpoint (path-style requests go to `ENDPOINT/BUCKET/KEY`).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// Access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    /// Secret key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    /// Region of the signature's scope.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Bucket to write to (created if missing).
    #[arg(long, default_value = "bench")]
    bucket: String,
    /// Object sizes, comma-separated (`4KiB`, `1MiB`, `8MiB`, or bytes).
    #[arg(long, default_value = "4KiB,8MiB", value_delimiter = ',')]
    sizes: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Objects per phase (fewer for large sizes: see `--max-bytes`).
    #[arg(long, default_value_t = 2000)]
    objects: u64,
    /// Bytes one phase moves at most (objects = min(--objects, this / size)).
    #[arg(long, default_value = "1GiB")]
    max_bytes: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What one phase (an operation at one size) measured.
#[derive(serde::Serialize)]
struct Phase {
    op: &'static str,
    size_bytes: u64,
    objects: u64,
    errors: u64,
    seconds: f64,
    objects_per_sec: f64,
    mib_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(serde::Serialize)]
struct Report {
    endpoint: String,
    bucket: String,
    clients: usize,
    phases: Vec<Phase>,
}

/// Parses `4KiB`, `8MiB`, `1GiB`, `4096` (also `k`/`m`/`g`, `KB`/`MB`/`GB` as powers of 2).
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .with_context(|| format!("bad size {text:?}"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => anyhow::bail!("bad size unit in {text:?} (use KiB, MiB or GiB)"),
    };
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .with_context(|| format!("size {text:?} is too large"))
}

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_CLIENTS).contains(&args.clients),
        "--clients must be between 1 and {MAX_CLIENTS}"
    );
    anyhow::ensure!(
        (1..=MAX_OBJECTS).contains(&args.objects),
        "--objects must be between 1 and {MAX_OBJECTS}"
    );
    let max_bytes = parse_size(&args.max_bytes)?;
    let mut sizes = Vec::new();
    for s in &args.sizes {
        let size = parse_size(s)?;
        anyhow::ensure!(
            (1..=MAX_OBJECT_BYTES).contains(&size),
            "object size {s} must be between 1 byte and 5 GiB"
        );
        sizes.push(size);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(bench(&args, &sizes, max_bytes))?;
    let errors: u64 = report.phases.iter().map(|p| p.errors).sum();
    if args.json {
        emit_json(&report)?;
    } else {
        let mut rows = vec![
            [
                "op",
                "size",
                "objects",
                "errors",
                "objects/s",
                "MiB/s",
                "p50",
                "p99",
            ]
            .map(String::from),
        ];
        rows.extend(report.phases.iter().map(|p| {
            [
                p.op.to_string(),
                human_size(p.size_bytes),
                p.objects.to_string(),
                p.errors.to_string(),
                format!("{:.0}", p.objects_per_sec),
                format!("{:.1}", p.mib_per_sec),
                format!("{:.2} ms", p.p50_ms),
                format!("{:.2} ms", p.p99_ms),
            ]
        }));
        emit(&table::render(&rows))?;
    }
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}

/// The shared state of one run's clients.
struct Target {
    http: reqwest::Client,
    base: reqwest::Url,
    host: String,
    bucket: String,
    signer: Signer,
}

impl Target {
    /// Sends one signed request; `body` is `(bytes, their sha256)` for a PUT.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&Bytes, &str)>,
    ) -> anyhow::Result<reqwest::Response> {
        let path = sigv4::encode_path(path);
        let date = sigv4::amz_date(time::OffsetDateTime::now_utc());
        let sha = body.map_or(EMPTY_SHA256, |(_, sha)| sha);
        let auth = self
            .signer
            .authorization(method.as_str(), &path, &self.host, &[], sha, &date);
        let url = self.base.join(&path).context("bad endpoint URL")?;
        let mut request = self
            .http
            .request(method, url)
            .header("x-amz-date", &date)
            .header("x-amz-content-sha256", sha)
            .header("authorization", auth);
        if let Some((bytes, _)) = body {
            request = request.body(bytes.clone());
        }
        Ok(request.send().await?)
    }

    async fn create_bucket(&self) -> anyhow::Result<()> {
        let path = format!("/{}", self.bucket);
        let response = self
            .send(reqwest::Method::PUT, &path, None)
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        anyhow::bail!("cannot create bucket {}: {status} {text}", self.bucket)
    }
}

async fn bench(args: &Args, sizes: &[u64], max_bytes: u64) -> anyhow::Result<Report> {
    let base = reqwest::Url::parse(&args.endpoint)
        .with_context(|| format!("bad --endpoint {:?}", args.endpoint))?;
    let host = match (base.host_str(), base.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => anyhow::bail!("--endpoint {:?} has no host", args.endpoint),
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(600))
        .build()?;
    let target = Arc::new(Target {
        http,
        base,
        host,
        bucket: args.bucket.clone(),
        signer: Signer {
            access_key: args.access_key.clone(),
            secret_key: args.secret_key.clone(),
            region: args.region.clone(),
        },
    });
    target.create_bucket().await?;
    let mut phases = Vec::new();
    for &size in sizes {
        let objects = args.objects.min((max_bytes / size).max(1));
        let mut body = vec![0u8; usize::try_from(size).context("object size too large")?];
        fastrand::Rng::with_seed(size).fill(&mut body);
        let sha = sigv4::sha256_hex(&body);
        let body = Bytes::from(body);
        for op in ["PUT", "GET"] {
            let phase = Arc::new(PhaseSpec {
                op,
                size,
                objects,
                body: body.clone(),
                sha: sha.clone(),
                next: AtomicU64::new(0),
                done: AtomicU64::new(0),
            });
            phases.push(run_phase(&target, &phase, args.clients).await?);
        }
    }
    Ok(Report {
        endpoint: args.endpoint.clone(),
        bucket: args.bucket.clone(),
        clients: args.clients,
        phases,
    })
}

/// One phase's work list, shared by its clients.
struct PhaseSpec {
    op: &'static str,
    size: u64,
    objects: u64,
    body: Bytes,
    sha: String,
    next: AtomicU64,
    done: AtomicU64,
}

async fn run_phase(
    target: &Arc<Target>,
    phase: &Arc<PhaseSpec>,
    clients: usize,
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(target.clone(), phase.clone())))
        .collect();
    let progress = tokio::spawn(show_progress(phase.clone()));
    let mut latencies_us = Vec::with_capacity(phase.objects as usize);
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        let (lat, err, first) = task.await.context("a client task failed")?;
        latencies_us.extend(lat);
        errors += err;
        first_error = first_error.or(first);
    }
    progress.abort();
    note("\n");
    if let Some(first) = first_error {
        note(&format!(
            "{} {}: first error: {first}\n",
            phase.op,
            human_size(phase.size)
        ));
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let pct = |p: f64| clock::latency::percentile(&latencies_us, p).unwrap_or(0) as f64 / 1000.0;
    let ok = latencies_us.len() as u64;
    Ok(Phase {
        op: phase.op,
        size_bytes: phase.size,
        objects: ok,
        errors,
        seconds,
        objects_per_sec: ok as f64 / seconds,
        mib_per_sec: (ok * phase.size) as f64 / (1 << 20) as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

/// One client's loop: takes the next object index until the phase is done; returns
/// the latencies of its successful requests, its error count and its first error.
async fn client(target: Arc<Target>, phase: Arc<PhaseSpec>) -> (Vec<u64>, u64, Option<String>) {
    let (mut latencies, mut errors, mut first) = (Vec::new(), 0, None);
    loop {
        let i = phase.next.fetch_add(1, Ordering::Relaxed);
        if i >= phase.objects {
            break;
        }
        let path = format!("/{}/bench-{}/{i:08}", target.bucket, phase.size);
        let started = Instant::now();
        match one_request(&target, &phase, &path).await {
            Ok(()) => latencies.push(started.elapsed().as_micros() as u64),
            Err(err) => {
                errors += 1;
                first.get_or_insert_with(|| format!("{path}: {err:#}"));
            }
        }
        phase.done.fetch_add(1, Ordering::Relaxed);
    }
    (latencies, errors, first)
}

async fn one_request(target: &Target, phase: &PhaseSpec, path: &str) -> anyhow::Result<()> {
    let (method, body) = match phase.op {
        "PUT" => (
            reqwest::Method::PUT,
            Some((&phase.body, phase.sha.as_str())),
        ),
        _ => (reqwest::Method::GET, None),
    };
    let mut response = target.send(method, path, body).await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        anyhow::bail!("{status}: {}", text.chars().take(300).collect::<String>());
    }
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await? {
        received += chunk.len() as u64;
    }
    if phase.op == "GET" {
        anyhow::ensure!(
            received == phase.size,
            "GET returned {received} bytes, expected {}",
            phase.size
        );
    }
    Ok(())
}

async fn show_progress(phase: Arc<PhaseSpec>) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let n = phase.done.load(Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
        note(&format!(
            "\r{} {}: {n}/{} ({rate:.0} objects/s)   ",
            phase.op,
            human_size(phase.size),
            phase.objects
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bound() {
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("17179869184GiB").is_err());
        assert_eq!(human_size(8 << 20), "8MiB");
        assert_eq!(human_size(4097), "4097B");
    }
}
