//! The scrape configuration: the subset of Prometheus's `prometheus.yml` that
//! describes what to pull — `global` defaults and `scrape_configs` with
//! `static_configs` and `file_sd_configs` — read with serde from the same
//! YAML Prometheus reads, so one file configures both. Fields Prometheus has
//! and this collector does not implement are refused by name inside a scrape
//! config (silently ignoring `relabel_configs` would scrape the wrong thing);
//! top-level sections for other parts of Prometheus (`rule_files`,
//! `alerting`, `remote_write`) are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ScrapeError;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ScrapeFile {
    /// Defaults for every scrape config.
    pub global: Global,
    /// One entry per job.
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `global:` defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Global {
    /// How often targets are scraped (Prometheus: 1m).
    pub scrape_interval: Option<String>,
    /// How long a scrape may take (Prometheus: 10s).
    pub scrape_timeout: Option<String>,
    /// Accepted and ignored: labels for federation and remote storage.
    pub external_labels: BTreeMap<String, String>,
    /// Accepted and ignored: rule evaluation is part 2 (alerting).
    pub evaluation_interval: Option<String>,
}

/// One `scrape_configs` entry: a job.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every target.
    pub job_name: String,
    /// Overrides `global.scrape_interval`.
    #[serde(default)]
    pub scrape_interval: Option<String>,
    /// Overrides `global.scrape_timeout`.
    #[serde(default)]
    pub scrape_timeout: Option<String>,
    /// Path on each target (`/metrics`).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` only (no TLS client in this collector).
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Keep the target's own `job`/`instance` labels on conflict instead of
    /// renaming them `exported_*`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Accepted for compatibility; exposed timestamps are never used (every
    /// sample is stamped with the scrape's start).
    #[serde(default)]
    pub honor_timestamps: Option<bool>,
    /// Largest body read, like `10MB` (0 or absent: 64 MiB here).
    #[serde(default)]
    pub body_size_limit: Option<String>,
    /// Samples per scrape; more fails the scrape (0: no limit).
    #[serde(default)]
    pub sample_limit: usize,
    /// Labels per series; more fails the scrape (0: no limit).
    #[serde(default)]
    pub label_limit: usize,
    /// Bytes of a label name; longer fails the scrape (0: no limit).
    #[serde(default)]
    pub label_name_length_limit: usize,
    /// Bytes of a label value; longer fails the scrape (0: no limit).
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// Fixed targets.
    #[serde(default)]
    pub static_configs: Vec<TargetGroup>,
    /// Targets listed in files, re-read every `refresh_interval`.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn default_scheme() -> String {
    "http".into()
}

/// A list of targets sharing labels (static configs and file SD entries).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files (`.json`, `.yml`, `.yaml`); `*` may appear in the file name.
    pub files: Vec<String>,
    /// How often the files are re-read (Prometheus: 5m).
    #[serde(default)]
    pub refresh_interval: Option<String>,
}

/// Files and targets beyond these are refused: the config is operator
/// input, but a glob over a big directory must not allocate without end.
const TARGETS_MAX: usize = 100_000;
const SD_FILE_BYTES_MAX: u64 = 16 << 20;

/// A job with its durations resolved.
#[derive(Clone, Debug)]
pub struct Job {
    /// The config it came from.
    pub config: ScrapeConfig,
    /// Time between scrapes.
    pub interval: Duration,
    /// Time a scrape may take (at most the interval).
    pub timeout: Duration,
    /// Largest body read.
    pub body_bytes_max: usize,
    /// How often the job's SD files are re-read.
    pub refresh: Duration,
}

/// One target to scrape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Index of its job in [`Config::jobs`].
    pub job: usize,
    /// `http://host:port/path`.
    pub url: String,
    /// `job`, `instance` and the group's labels, sorted by name.
    pub labels: Vec<(String, String)>,
}

impl Target {
    /// The key the collectors' ring places the target by.
    pub fn ring_key(&self) -> String {
        let mut key = self.url.clone();
        for (n, v) in &self.labels {
            key.push('\u{1}');
            key.push_str(n);
            key.push('=');
            key.push_str(v);
        }
        key
    }
}

/// A parsed and checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// One per `scrape_configs` entry.
    pub jobs: Vec<Job>,
    /// Where relative SD file paths start.
    pub base_dir: PathBuf,
}

impl Config {
    /// Reads a `prometheus.yml`-style file.
    pub fn load(path: &Path) -> Result<Self, ScrapeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScrapeError::Config(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::parse(&text, base)
    }

    /// Parses YAML text; SD file paths are relative to `base_dir`.
    pub fn parse(yaml: &str, base_dir: PathBuf) -> Result<Self, ScrapeError> {
        let file: ScrapeFile =
            serde_norway::from_str(yaml).map_err(|e| ScrapeError::Config(e.to_string()))?;
        Self::from_file(file, base_dir)
    }

    /// Checks a deserialized file and resolves its durations.
    pub fn from_file(file: ScrapeFile, base_dir: PathBuf) -> Result<Self, ScrapeError> {
        let global_interval = opt_duration(&file.global.scrape_interval, 60_000)?;
        let global_timeout = opt_duration(&file.global.scrape_timeout, 10_000)?;
        let mut jobs = Vec::new();
        for config in file.scrape_configs {
            let bad =
                |what: String| ScrapeError::Config(format!("job {:?}: {what}", config.job_name));
            if config.job_name.is_empty() {
                return Err(ScrapeError::Config(
                    "a scrape config has no job_name".into(),
                ));
            }
            if jobs
                .iter()
                .any(|j: &Job| j.config.job_name == config.job_name)
            {
                return Err(bad("job_name is used twice".into()));
            }
            if config.scheme != "http" {
                return Err(bad(format!(
                    "scheme {:?} is not supported (http only)",
                    config.scheme
                )));
            }
            if !config.metrics_path.starts_with('/') {
                return Err(bad("metrics_path must start with /".into()));
            }
            let interval = match &config.scrape_interval {
                Some(s) => parse_duration(s).map_err(bad)?,
                None => global_interval,
            };
            let timeout = match &config.scrape_timeout {
                Some(s) => parse_duration(s).map_err(bad)?,
                None => global_timeout.min(interval),
            };
            if timeout > interval {
                return Err(bad("scrape_timeout is longer than scrape_interval".into()));
            }
            let body_bytes_max = match config.body_size_limit.as_deref() {
                None | Some("0") | Some("0B") => 64 << 20,
                Some(s) => parse_size(s).map_err(bad)?,
            };
            let mut refresh = Duration::from_secs(300);
            for sd in &config.file_sd_configs {
                if let Some(s) = &sd.refresh_interval {
                    refresh = refresh.min(parse_duration(s).map_err(bad)?);
                }
            }
            jobs.push(Job {
                config,
                interval,
                timeout,
                body_bytes_max,
                refresh,
            });
        }
        Ok(Self { jobs, base_dir })
    }

    /// Every target of every job, static and from SD files as they are now.
    /// An SD file that cannot be read or parsed fails the whole call (a
    /// missing file lists no targets); [`super::Manager::sync`] then keeps
    /// the targets it has, as Prometheus keeps the last good list.
    pub fn targets(&self) -> Result<Vec<Target>, ScrapeError> {
        let mut out = Vec::new();
        for (i, job) in self.jobs.iter().enumerate() {
            let mut groups = job.config.static_configs.clone();
            for sd in &job.config.file_sd_configs {
                for pattern in &sd.files {
                    for file in glob(&self.base_dir.join(pattern))? {
                        groups.extend(read_sd_file(&file)?);
                    }
                }
            }
            for group in groups {
                for address in &group.targets {
                    if out.len() >= TARGETS_MAX {
                        return Err(ScrapeError::Config(format!(
                            "more than {TARGETS_MAX} targets"
                        )));
                    }
                    out.push(target(i, job, address, &group.labels)?);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn target(
    job_index: usize,
    job: &Job,
    address: &str,
    group: &BTreeMap<String, String>,
) -> Result<Target, ScrapeError> {
    if address.is_empty() || address.contains(['/', ' ', '?', '#']) {
        return Err(ScrapeError::Config(format!(
            "target {address:?} is not host:port"
        )));
    }
    let mut labels: BTreeMap<String, String> = group.clone();
    labels.insert("job".into(), job.config.job_name.clone());
    labels
        .entry("instance".into())
        .or_insert_with(|| address.to_string());
    // A target group may set its own path (Prometheus's `__metrics_path__`).
    let path = match labels.get("__metrics_path__") {
        Some(path) if path.starts_with('/') && !path.contains([' ', '#']) => path.clone(),
        Some(path) => {
            return Err(ScrapeError::Config(format!(
                "__metrics_path__ {path:?} must start with / and hold no space or #"
            )));
        }
        None => job.config.metrics_path.clone(),
    };
    labels.retain(|n, _| !n.starts_with("__"));
    Ok(Target {
        job: job_index,
        url: format!("http://{address}{path}"),
        labels: labels.into_iter().collect(),
    })
}

/// Files matching `pattern`, where only the file name may hold `*`.
fn glob(pattern: &Path) -> Result<Vec<PathBuf>, ScrapeError> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .take(TARGETS_MAX)
        .collect();
    out.sort();
    Ok(out)
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// A file SD file: a JSON or YAML list of target groups. A file that does
/// not exist yet lists no targets (Prometheus waits for it too).
fn read_sd_file(path: &Path) -> Result<Vec<TargetGroup>, ScrapeError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ScrapeError::Config(format!("{}: {e}", path.display()))),
    };
    if meta.len() > SD_FILE_BYTES_MAX {
        return Err(ScrapeError::Config(format!(
            "{}: larger than {SD_FILE_BYTES_MAX} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScrapeError::Config(format!("{}: {e}", path.display())))?;
    let groups = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_norway::from_str(&text).map_err(|e| e.to_string())
    };
    groups.map_err(|e| ScrapeError::Config(format!("{}: {e}", path.display())))
}

fn opt_duration(s: &Option<String>, default_ms: u64) -> Result<Duration, ScrapeError> {
    match s {
        Some(s) => parse_duration(s).map_err(ScrapeError::Config),
        None => Ok(Duration::from_millis(default_ms)),
    }
}

/// A Prometheus duration: units `ms`, `s`, `m`, `h`, `d`, `w`, `y`, largest
/// first, possibly several (`1m30s`); must be positive.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 15s or 1m30s");
    let mut rest = s;
    let mut total_ms: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
    }
    if total_ms == 0 {
        return Err(bad());
    }
    Ok(Duration::from_millis(total_ms))
}

/// A byte size as Prometheus writes it: `512`, `10KB`, `10MB`, `1GB`
/// (powers of 1024, like Prometheus's `units.Base2Bytes`).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let bad = || format!("{s:?} is not a size like 10MB");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: usize = s[..split].parse().map_err(|_| bad())?;
    let unit: usize = match &s[split..] {
        "" | "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_like_prometheus() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999999999999y").is_err());
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("10XB").is_err());
    }

    #[test]
    fn wildcards_match_file_names() {
        assert!(wildcard("*.json", "a.json"));
        assert!(wildcard("t-*-x*.yml", "t-1-x2.yml"));
        assert!(!wildcard("*.json", "a.yml"));
        assert!(!wildcard("ab*ba", "aba"));
    }

    #[test]
    fn a_target_group_sets_its_own_path() {
        let yaml = "scrape_configs: [{job_name: a, static_configs: [\
                    {targets: ['h:1'], labels: {__metrics_path__: /s/kv, system: kv}}, {targets: ['h:2']}]}]";
        let t = Config::parse(yaml, PathBuf::from("."))
            .unwrap()
            .targets()
            .unwrap();
        assert_eq!(t[0].url, "http://h:1/s/kv");
        assert!(t[0].labels.iter().all(|(n, _)| !n.starts_with("__")));
        assert_eq!(t[1].url, "http://h:2/metrics");
        let bad = "scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1'], labels: {__metrics_path__: x}}]}]";
        let err = Config::parse(bad, PathBuf::from(".")).and_then(|c| c.targets());
        assert!(err.is_err());
    }

    #[test]
    fn a_prometheus_config_parses_with_defaults() {
        let yaml = r#"
global:
  scrape_interval: 15s
rule_files: [a.yml]
scrape_configs:
  - job_name: api
    static_configs:
      - targets: ['127.0.0.1:9100', '127.0.0.1:9101']
        labels: {env: prod}
  - job_name: db
    scrape_interval: 5s
    scrape_timeout: 2s
    metrics_path: /m
    static_configs: [{targets: ['h:1']}]
"#;
        let c = Config::parse(yaml, PathBuf::from(".")).unwrap();
        assert_eq!(c.jobs[0].interval, Duration::from_secs(15));
        assert_eq!(c.jobs[0].timeout, Duration::from_secs(10));
        assert_eq!(c.jobs[1].timeout, Duration::from_secs(2));
        let t = c.targets().unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].url, "http://127.0.0.1:9100/metrics");
        assert!(t[0].labels.contains(&("env".into(), "prod".into())));
        assert!(
            t[0].labels
                .contains(&("instance".into(), "127.0.0.1:9100".into()))
        );
        assert_eq!(t[2].url, "http://h:1/m");
        let bad = "scrape_configs: [{job_name: a, relabel_configs: []}]";
        assert!(Config::parse(bad, PathBuf::from(".")).is_err());
        let slow = "scrape_configs: [{job_name: a, scrape_interval: 1s, scrape_timeout: 2s}]";
        assert!(Config::parse(slow, PathBuf::from(".")).is_err());
    }
}
