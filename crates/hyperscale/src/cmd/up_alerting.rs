//! The alert manager under `hyperscale up` (`[alerts]`): Alertmanager's API
//! v2 (so `amtool` and Prometheus work against it), its journal of silences
//! and history in `{data_dir}/alerts`, fed by the rules the metrics server
//! of the same process evaluates (`[metrics] rule_files`).
//!
//! Without `[alerts] config` it runs with one receiver that notifies no one:
//! alerts are still listed, silenced and kept in the history, and a real
//! configuration (routes, webhook and email receivers) is one file away.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use service::Supervisor;

/// The configuration used without `[alerts] config`.
const DEFAULT_CONFIG: &str = "\
route:
  receiver: none
  group_by: [alertname, job]
receivers:
  - name: none
";

/// `[alerts]`: where the alert manager listens, its Alertmanager
/// configuration file, and the tokens allowed to change silences.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the Alertmanager API.
    pub bind: SocketAddr,
    /// Alertmanager's YAML (route, receivers, inhibit_rules), relative to
    /// the `--config` file.
    config: Option<PathBuf>,
    /// `TOKEN:ROLE` (role `silencer` or `admin`) allowed to change silences;
    /// without any, changes are open (keep it on 127.0.0.1).
    tokens: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9093)),
            config: None,
            tokens: Vec::new(),
        }
    }
}

impl Config {
    /// The configuration file named relative to the config file's
    /// directory `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        if let Some(file) = &self.config
            && file.is_relative()
        {
            self.config = Some(dir.join(file));
        }
    }
}

/// Adds the alert manager, serving `listener` (bound from `settings.bind`).
pub async fn add(
    supervisor: &mut Supervisor,
    settings: &Config,
    data_dir: &Path,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let text = match &settings.config {
        Some(path) => tokio::fs::read_to_string(path)
            .await
            .with_context(|| format!("[alerts] config: cannot read {}", path.display()))?,
        None => DEFAULT_CONFIG.to_string(),
    };
    let config = alerting::am::parse_config(&text).map_err(|e| {
        let name = settings
            .config
            .as_deref()
            .unwrap_or(Path::new("the default"));
        anyhow::anyhow!(
            "[alerts] config {}: {e} (`amtool check-config` checks the same format)",
            name.display()
        )
    })?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let opts = alerting::am::AmOptions {
        data_dir: data_dir.join("alerts"),
        tokens: super::alerts::parse_tokens(&settings.tokens, "[alerts] tokens")?,
        external_url: url.clone(),
        ..Default::default()
    };
    let dir = opts.data_dir.clone();
    // Opening replays the journal: off the workers.
    let am = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&opts.data_dir)?;
        alerting::am::AlertManager::open(config, opts)
    })
    .await?
    .with_context(|| {
        format!(
            "the alert manager cannot open its journal in {}",
            dir.display()
        )
    })?;
    let info = super::alerts::info(&addr.to_string());
    supervisor.add(info, move |ctx| super::alerts::run_am(am, listener, ctx));
    Ok(())
}
