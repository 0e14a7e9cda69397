//! The metrics server under `hyperscale up` (`[metrics]`): the time-series
//! database behind the Prometheus API, scraping every system of the process
//! as a target of its own, and evaluating the rule files of `rule_files`
//! (recording and alerting rules, as `hyperscale metrics serve --rule-file`
//! does), its alerts sent to the alert manager of the same process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use service::Supervisor;

/// `[metrics]`: where the Prometheus API listens, how often it scrapes the
/// systems of the process, and which rules it evaluates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the Prometheus API.
    pub bind: SocketAddr,
    /// Scrape the admin endpoint (every system of the process).
    scrape_self: bool,
    scrape_interval_ms: u64,
    /// Prometheus rule files (relative to the `--config` file); their state
    /// is at `/api/v1/rules` and `/api/v1/alerts`, their alerts go to the
    /// alert manager of the process.
    rule_files: Vec<PathBuf>,
    /// Interval of rule groups without their own `interval`.
    evaluation_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9090)),
            scrape_self: true,
            scrape_interval_ms: 15_000,
            rule_files: Vec::new(),
            evaluation_interval_ms: 60_000,
        }
    }
}

impl Config {
    /// Rule files named relative to the config file's directory `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for file in &mut self.rule_files {
            if file.is_relative() {
                *file = dir.join(&*file);
            }
        }
    }
}

/// What the metrics server of `up` is started with.
pub struct Up<'a> {
    /// `[metrics]`.
    pub settings: &'a Config,
    /// `up`'s data directory; the database is in `{data_dir}/metrics`.
    pub data_dir: &'a Path,
    /// The console's address, which serves each system's metrics.
    pub console: &'a str,
    /// The alert manager's base URL.
    pub alertmanager: &'a str,
}

impl Up<'_> {
    /// Adds the metrics server on `listener`. Each system of the process is
    /// scraped at the console's `/systems/{name}/metrics` (labelled
    /// `system`, with the system's endpoint as `instance`).
    pub async fn add(
        &self,
        supervisor: &mut Supervisor,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<()> {
        let settings = self.settings;
        let info = super::metrics::info(&listener.local_addr()?.to_string());
        let dir = self.data_dir.join("metrics");
        // Opening replays the write-ahead log: off the workers.
        let db = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tsdb::Db::open(&dir, tsdb::Options::default())
                .with_context(|| format!("cannot open the database in {}", dir.display()))
        })
        .await??;
        let db = std::sync::Arc::new(db);
        let scraper = if settings.scrape_self {
            let mut systems: Vec<(String, String)> = supervisor
                .directory()
                .list()
                .into_iter()
                .map(|(info, _)| (info.name, info.endpoint))
                .collect();
            systems.push((info.name.clone(), info.endpoint.clone()));
            let yaml = scrape_yaml(&systems, self.console, settings.scrape_interval_ms);
            let scrape = tsdb::scrape::Config::parse(&yaml, self.data_dir.to_path_buf())?;
            let sharding = tsdb::scrape::Sharding::single();
            Some(tsdb::scrape::Manager::new(db.clone(), scrape, sharding)?)
        } else {
            None
        };
        let limits = tsdb::promql::QueryLimits::default();
        let rules = self.rules(&db, &limits)?;
        let api = tsdb::http::Api { db, limits };
        let requests = prometheus_client::metrics::counter::Counter::default();
        supervisor
            .registry()
            .sub_registry_with_prefix("metrics")
            .register(
                "requests",
                "HTTP requests the metrics server answered",
                requests.clone(),
            );
        let mut router = tsdb::http::router(api);
        if let Some(rules) = &rules {
            router = router.merge(alerting::http::router(rules.clone()));
        }
        let router = service::metrics::count_requests(router, requests);
        supervisor.add(info, move |ctx| async move {
            ctx.health.set_up();
            if let Some(scraper) = scraper {
                tokio::spawn(scraper.run(ctx.shutdown.clone().cancelled_owned()));
            }
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
                .await
                .context("the metrics server failed");
            if let Some(rules) = rules {
                rules.stop();
            }
            served
        });
        Ok(())
    }

    /// The rule manager of `rule_files`, evaluating on its own thread and
    /// notifying the alert manager; `None` without rule files.
    fn rules(
        &self,
        db: &std::sync::Arc<tsdb::Db>,
        limits: &tsdb::promql::QueryLimits,
    ) -> anyhow::Result<Option<alerting::rules::RuleManager>> {
        let settings = self.settings;
        if settings.rule_files.is_empty() {
            return Ok(None);
        }
        let opts = alerting::rules::RuleOptions {
            eval_interval_ms: i64::try_from(settings.evaluation_interval_ms.max(1))?,
            limits: limits.clone(),
            ..Default::default()
        };
        let rules = alerting::rules::RuleManager::load(db.clone(), &settings.rule_files, opts)
            .map_err(|errs| {
                let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
                anyhow::anyhow!(
                    "[metrics] rule_files are invalid (fix them; `promtool check rules` reports the same):\n{}",
                    lines.join("\n")
                )
            })?;
        let notifier =
            alerting::rules::notifier::notifier(vec![self.alertmanager.into()], Default::default())
                .context("cannot start the alert notifier")?;
        rules.subscribe(notifier);
        rules
            .start()
            .context("cannot start the rule evaluation thread")?;
        Ok(Some(rules))
    }
}

/// The scrape config of `up`: job `hyperscale`, one target per system
/// (`(name, endpoint)`), each read from the console's per-system path.
fn scrape_yaml(systems: &[(String, String)], console: &str, interval_ms: u64) -> String {
    let groups: Vec<String> = systems
        .iter()
        .map(|(name, endpoint)| {
            format!(
                "{{targets: ['{console}'], labels: {{system: '{name}', instance: '{endpoint}', \
                 __metrics_path__: '/systems/{name}/metrics'}}}}"
            )
        })
        .collect();
    format!(
        "scrape_configs: [{{job_name: hyperscale, honor_labels: true, scrape_interval: {}ms, \
         static_configs: [{}]}}]",
        interval_ms.max(1),
        groups.join(", ")
    )
}
