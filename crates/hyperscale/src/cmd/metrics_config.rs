//! The settings of `hyperscale metrics serve`, from `--config FILE` (TOML,
//! like every other `serve`), `HYPERSCALE_METRICS_*` and flags, in that
//! order of precedence (flags win). Durations are written as Prometheus
//! writes them (`7d`, `90m`); a relative `scrape_config` in the file is
//! relative to the file, as Prometheus resolves files named in its config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use service::ConfigSources;

use super::metrics::{ServeArgs, parse_duration_ms};

/// `metrics serve`'s settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address of the API.
    pub bind: SocketAddr,
    /// Directory of the database.
    pub data_dir: PathBuf,
    /// How long raw samples are kept.
    pub retention_raw: String,
    /// How long 1-minute points are kept.
    pub retention_1m: String,
    /// How long 1-hour points are kept.
    pub retention_1h: String,
    /// Longest a query may run.
    pub query_timeout: String,
    /// Samples a query may load.
    pub query_max_samples: usize,
    /// A `prometheus.yml` to scrape the targets of.
    pub scrape_config: Option<PathBuf>,
    /// This collector's number.
    pub collector_id: usize,
    /// Collectors sharing the targets.
    pub collectors: usize,
    /// `s3://bucket/prefix` old blocks move to (none: all stay local).
    pub cold_storage: Option<String>,
    /// The S3 endpoint of `cold_storage` (empty: `AWS_ENDPOINT_URL` or AWS).
    pub cold_endpoint: String,
    /// The region signed into requests (empty: `AWS_REGION` or us-east-1).
    pub cold_region: String,
    /// Age (behind the newest sample) at which a block moves.
    pub cold_after: String,
    /// Bytes of cold chunks cached in memory.
    pub cold_cache_bytes: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: PathBuf::from("./data/metrics"),
            retention_raw: "7d".into(),
            retention_1m: "30d".into(),
            retention_1h: "365d".into(),
            query_timeout: "2m".into(),
            query_max_samples: 50_000_000,
            scrape_config: None,
            collector_id: 0,
            collectors: 1,
            cold_storage: None,
            cold_endpoint: String::new(),
            cold_region: String::new(),
            cold_after: "7d".into(),
            cold_cache_bytes: 64 << 20,
        }
    }
}

/// The settings with every duration in milliseconds, checked.
pub struct Settings {
    /// The file's settings, as read.
    pub config: ServeConfig,
    /// `retention_raw`, `retention_1m`, `retention_1h` in ms.
    pub retention_ms: [i64; 3],
    /// `query_timeout`.
    pub query_timeout: Duration,
    /// The cold tier, if `cold_storage` is set.
    pub cold: Option<tsdb::cold::ColdOptions>,
}

/// Loads `--config`, the environment and the flags of `args`.
pub fn load(args: &ServeArgs) -> anyhow::Result<Settings> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_METRICS_")
        .flag("bind", args.bind.map(|a| a.to_string()))
        .flag("data_dir", path(&args.data_dir))
        .flag("retention_raw", args.retention_raw.clone())
        .flag("retention_1m", args.retention_1m.clone())
        .flag("retention_1h", args.retention_1h.clone())
        .flag("query_timeout", args.query_timeout.clone())
        .flag(
            "query_max_samples",
            args.query_max_samples.map(|n| n as i64),
        )
        .flag("scrape_config", path(&args.scrape_config))
        .flag("collector_id", args.collector_id.map(|n| n as i64))
        .flag("collectors", args.collectors.map(|n| n as i64))
        .flag("cold_storage", args.cold_storage.clone())
        .flag("cold_endpoint", args.cold_endpoint.clone())
        .flag("cold_region", args.cold_region.clone())
        .flag("cold_after", args.cold_after.clone())
        .flag(
            "cold_cache_bytes",
            args.cold_cache_bytes
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        );
    let mut config: ServeConfig = service::config::load(&sources)?;
    // A scrape config named in the file is relative to the file; one named
    // by the flag, to the working directory.
    if args.scrape_config.is_none()
        && let (Some(scrape), Some(dir)) = (
            config.scrape_config.as_mut(),
            args.config.as_deref().and_then(Path::parent),
        )
        && scrape.is_relative()
    {
        *scrape = dir.join(&*scrape);
    }
    let duration = |key: &str, value: &str| {
        parse_duration_ms(value)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("`{key}`"))
    };
    let retention_ms = [
        duration("retention_raw", &config.retention_raw)?,
        duration("retention_1m", &config.retention_1m)?,
        duration("retention_1h", &config.retention_1h)?,
    ];
    let timeout_ms = duration("query_timeout", &config.query_timeout)?;
    let cold = match &config.cold_storage {
        None => None,
        Some(url) => Some(cold_options(
            &config,
            url,
            duration("cold_after", &config.cold_after)?,
        )?),
    };
    Ok(Settings {
        cold,
        retention_ms,
        query_timeout: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX)),
        config,
    })
}

/// The cold tier's settings: the URL and endpoint of the config, the keys of
/// the usual AWS variables.
fn cold_options(
    config: &ServeConfig,
    url: &str,
    after_ms: i64,
) -> anyhow::Result<tsdb::cold::ColdOptions> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let or_env = |v: &str, k: &str, default: &str| {
        if v.is_empty() {
            env(k).unwrap_or_else(|| default.to_string())
        } else {
            v.to_string()
        }
    };
    tsdb::cold::store::parse_url(url).context("`cold_storage`")?;
    let (Some(access_key), Some(secret_key)) =
        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    else {
        anyhow::bail!(
            "`cold_storage` needs keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (for `hyperscale s3 serve`, a key from `hyperscale s3 keys create`)"
        );
    };
    Ok(tsdb::cold::ColdOptions {
        target: tsdb::cold::ColdTarget {
            url: url.to_string(),
            endpoint: or_env(
                &config.cold_endpoint,
                "AWS_ENDPOINT_URL",
                "https://s3.amazonaws.com",
            ),
            region: or_env(&config.cold_region, "AWS_REGION", "us-east-1"),
            access_key,
            secret_key,
            session_token: env("AWS_SESSION_TOKEN"),
            timeout_ms: 30_000,
        },
        after_ms,
        cache_bytes_max: config.cold_cache_bytes,
    })
}
