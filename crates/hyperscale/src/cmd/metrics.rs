//! `hyperscale metrics`: the metrics monitoring system (vol. 2) — `serve`
//! runs the time-series database behind the Prometheus HTTP API and its
//! remote-write receiver, and with `--scrape-config` pulls the targets of a
//! `prometheus.yml` (its share of them with `--collector-id/--collectors`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use service::{Supervisor, SystemInfo};
use tsdb::http::Api;
use tsdb::promql::QueryLimits;

use crate::output::emit;

/// Arguments of `hyperscale metrics`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Serve the Prometheus HTTP API (PromQL) and remote write.
    Serve(Box<ServeArgs>),
    /// Run a PromQL query against a Prometheus HTTP API and print a table.
    Query(super::metrics_query::QueryArgs),
    /// Scrape targets and publish the samples to the `metrics` topic of a broker.
    Collect(super::metrics_pipeline::CollectArgs),
    /// Consume the `metrics` topic into the database (commit after fsync).
    Ingest(super::metrics_pipeline::IngestArgs),
}

/// Flags of `serve` (each overrides `--config` and `HYPERSCALE_METRICS_*`).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML file with the settings below (same names, `retention_raw = "7d"`).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (Prometheus's port) [default: 127.0.0.1:9090].
    #[arg(long)]
    pub(crate) bind: Option<SocketAddr>,
    /// Directory of the database [default: ./data/metrics].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// How long raw samples are kept (`7d`, `12h`, `90m`) [default: 7d].
    #[arg(long)]
    pub(crate) retention_raw: Option<String>,
    /// How long 1-minute downsampled points are kept [default: 30d].
    #[arg(long)]
    pub(crate) retention_1m: Option<String>,
    /// How long 1-hour downsampled points are kept [default: 365d].
    #[arg(long)]
    pub(crate) retention_1h: Option<String>,
    /// Longest a query may run (Prometheus's `--query.timeout`) [default: 2m].
    #[arg(long)]
    pub(crate) query_timeout: Option<String>,
    /// Samples a query may load (Prometheus's `--query.max-samples`)
    /// [default: 50000000].
    #[arg(long)]
    pub(crate) query_max_samples: Option<usize>,
    /// Address of `/metrics` and `/healthz` [default: none].
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// A `prometheus.yml` whose `scrape_configs` (static and file SD
    /// targets) this server scrapes [default: scrape nothing].
    #[arg(long)]
    pub(crate) scrape_config: Option<PathBuf>,
    /// This collector's number, `0..collectors`: it scrapes only the targets
    /// the consistent-hash ring gives it [default: 0].
    #[arg(long)]
    pub(crate) collector_id: Option<usize>,
    /// How many collectors share the targets of `--scrape-config` [default: 1].
    #[arg(long)]
    pub(crate) collectors: Option<usize>,
    /// A Prometheus rule file (recording and alerting rules) to evaluate;
    /// repeat for more. Their state is at `/api/v1/rules` and `/api/v1/alerts`.
    #[arg(long = "rule-file")]
    pub(crate) rule_files: Vec<PathBuf>,
    /// Base URL of an alert manager (`hyperscale alerts serve` or
    /// Alertmanager) that firing and resolved alerts are sent to; repeat for more.
    #[arg(long = "alertmanager-url")]
    pub(crate) alertmanager_urls: Vec<String>,
    /// Interval of rule groups without their own `interval` [default: 1m].
    #[arg(long, default_value = "1m")]
    pub(crate) evaluation_interval: String,
    /// Move blocks older than `--cold-after` to this S3 location,
    /// `s3://bucket/prefix` (keys from AWS_ACCESS_KEY_ID /
    /// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN) [default: keep all local].
    #[arg(long)]
    pub(crate) cold_storage: Option<String>,
    /// The S3 endpoint of `--cold-storage` (`hyperscale s3 serve`'s, MinIO's,
    /// AWS's) [default: AWS_ENDPOINT_URL, else https://s3.amazonaws.com].
    #[arg(long)]
    pub(crate) cold_endpoint: Option<String>,
    /// The region requests are signed for [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub(crate) cold_region: Option<String>,
    /// Blocks whose end is this far behind the newest sample move [default: 7d].
    #[arg(long)]
    pub(crate) cold_after: Option<String>,
    /// Bytes of cold chunks cached in memory [default: 67108864].
    #[arg(long)]
    pub(crate) cold_cache_bytes: Option<u64>,
}

/// A duration as Prometheus writes them: a number and `ms`, `s`, `m`, `h`,
/// `d`, `w` or `y`, in milliseconds.
pub(crate) fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 7d or 90m"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return Err(format!("{s:?} has no unit (ms, s, m, h, d, w, y)")),
    };
    n.checked_mul(ms)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(*args),
        Verb::Query(args) => super::metrics_query::run(args),
        Verb::Collect(args) => super::metrics_pipeline::collect(args),
        Verb::Ingest(args) => super::metrics_pipeline::ingest(args),
    }
}

/// How the system is listed.
pub fn info(endpoint: &str) -> SystemInfo {
    SystemInfo {
        name: "metrics".into(),
        title: "Metrics (time-series database, PromQL)".into(),
        chapter: "vol. 2 metrics monitoring and alerting".into(),
        protocol: "Prometheus HTTP API, remote write".into(),
        endpoint: endpoint.into(),
        link: Some(format!("http://{endpoint}/api/v1/labels")),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = super::metrics_config::load(&args)?;
    let config = &settings.config;
    service::net::prepare_data_dir(&config.data_dir)?;
    let [raw, minute, hour] = settings.retention_ms;
    let opts = tsdb::Options {
        raw_retention_ms: raw,
        minute_retention_ms: minute,
        hour_retention_ms: hour,
        cold: settings.cold.clone(),
        ..tsdb::Options::default()
    };
    let db = tsdb::Db::open(&config.data_dir, opts)
        .with_context(|| format!("cannot open the database in {}", config.data_dir.display()))?;
    let limits = QueryLimits {
        samples_max: config.query_max_samples,
        timeout: settings.query_timeout,
        ..QueryLimits::default()
    };
    let db = Arc::new(db);
    let scraper = match &config.scrape_config {
        Some(path) => {
            let sharding = tsdb::scrape::Sharding::new(config.collector_id, config.collectors)?;
            Some(tsdb::scrape::Manager::from_file(
                db.clone(),
                path.clone(),
                sharding,
            )?)
        }
        None => None,
    };
    let rules = if args.rule_files.is_empty() {
        None
    } else {
        let eval_interval_ms = parse_duration_ms(&args.evaluation_interval)
            .map_err(|e| anyhow::anyhow!("--evaluation-interval: {e}"))?;
        let opts = alerting::rules::RuleOptions {
            eval_interval_ms,
            limits: limits.clone(),
            ..Default::default()
        };
        let m = alerting::rules::RuleManager::load(db.clone(), &args.rule_files, opts).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("the rule files are invalid (fix them; `promtool check rules` reports the same):\n{}", lines.join("\n"))
        })?;
        if !args.alertmanager_urls.is_empty() {
            let n = alerting::rules::notifier::notifier(
                args.alertmanager_urls.clone(),
                Default::default(),
            )
            .context("cannot start the alert notifier")?;
            m.subscribe(n);
        }
        m.start()
            .context("cannot start the rule evaluation thread")?;
        Some(m)
    };
    let api = Api { db, limits };
    let bind = config.bind;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let admin = super::serve::bind_admin(args.admin_bind).await?;
        let listener = service::net::bind(bind, "the metrics API").await?;
        let info = info(&listener.local_addr()?.to_string());
        emit(&format!("metrics listening on http://{}\n", info.endpoint))?;
        supervisor.add(info, move |ctx| async move {
            ctx.health.set_up();
            if let Some(scraper) = scraper {
                tokio::spawn(scraper.run(ctx.shutdown.clone().cancelled_owned()));
            }
            let mut router = tsdb::http::router(api);
            if let Some(m) = rules {
                router = router.merge(alerting::http::router(m));
            }
            axum::serve(listener, router)
                .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
                .await
                .context("the metrics server failed")
        });
        supervisor.run(admin, Duration::from_secs(3)).await
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations_parse_like_prometheus_flags() {
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("90m"), Ok(90 * 60_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("7").is_err());
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("9999999999999999y").is_err());
    }
}
