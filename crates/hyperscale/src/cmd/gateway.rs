//! `hyperscale gateway`: the API gateway (reverse proxy, load balancer,
//! rate limits) of chapters 1 and 4.
//!
//! `serve` layers `--config FILE`, `HYPERSCALE_GATEWAY_*` variables and
//! flags, resolves the rules file relative to the config file, binds, and
//! runs the gateway under a supervisor of one (Ctrl-C drains it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use service::{ConfigSources, Supervisor};

/// Arguments of `hyperscale gateway`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: `hyperscale gateway serve --config gateway.toml`.
    Serve(ServeArgs),
    /// Remove objects from a running gateway's edge cache:
    /// `hyperscale gateway purge --url /img/a.png` (or `--prefix`, `--tag`).
    Purge(PurgeArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["url", "prefix", "tag"])))]
struct PurgeArgs {
    /// One URL: `http://host/path?query` or `/path?query`.
    #[arg(long)]
    url: Option<String>,
    /// Every object whose path starts with this.
    #[arg(long)]
    prefix: Option<String>,
    /// Every object whose `Surrogate-Key` names this tag.
    #[arg(long)]
    tag: Option<String>,
    /// The gateway's address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    gateway: String,
    /// The gateway's purge path (`cache.purge_path`).
    #[arg(long, default_value = "/_cache/purge")]
    path: String,
    /// The admin token (`cache.admin_token`; the same variable sets the
    /// server's token under `hyperscale gateway serve`).
    #[arg(
        long,
        env = "HYPERSCALE_GATEWAY_CACHE__ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: String,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config: routes, pools, health checks, limits, rules file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address clients connect to (overrides `bind` in the file).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Threads serving traffic: 0 = one per CPU, 1 = single-threaded
    /// (overrides `workers` in the file).
    #[arg(long)]
    workers: Option<usize>,
    /// Unused: the gateway keeps no data. Accepted so every `serve` verb
    /// takes the same flags.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// How long in-flight requests may take to finish after Ctrl-C.
    #[arg(long, default_value_t = 5_000)]
    drain_timeout_ms: u64,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Serve(args) => serve(args),
        Command::Purge(args) => purge(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_GATEWAY_")
        .flag("bind", args.bind.map(|addr| addr.to_string()))
        .flag("workers", args.workers.map(|n| n as i64));
    let mut config: gateway::Config = service::config::load(&sources)?;
    let base = args
        .config
        .as_deref()
        .and_then(|file| file.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    config.resolve_paths(&base);
    config.validate()?;
    // Thread per core: this thread's runtime is the first worker, the
    // gateway starts the others (see `gateway::server`).
    let workers = service::net::worker_count(config.workers);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = match workers {
            1 => service::net::bind(config.bind, "the gateway").await?,
            _ => service::net::bind_reuseport(config.bind, "the gateway")?,
        };
        let endpoint = listener.local_addr()?.to_string();
        let metrics_note = match config.metrics_path.as_str() {
            "" => String::new(),
            path => format!(" (metrics at {path})"),
        };
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let gateway = gateway::Gateway::new(
            config,
            supervisor.registry().sub_registry_with_prefix("gateway"),
        )?;
        gateway.set_metrics_source(gateway::MetricsSource::View(supervisor.metrics_view()));
        supervisor.add(gateway::info(&endpoint), move |ctx| {
            gateway.serve_workers(listener, workers, ctx)
        });
        crate::output::note(&format!(
            "gateway listening on http://{endpoint}/{metrics_note}\n"
        ));
        supervisor
            .run(None, Duration::from_millis(args.drain_timeout_ms))
            .await
    })
}

fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let body = match (&args.url, &args.prefix, &args.tag) {
        (Some(url), _, _) => serde_json::json!({ "url": url }),
        (_, Some(prefix), _) => serde_json::json!({ "prefix": prefix }),
        (_, _, Some(tag)) => serde_json::json!({ "tag": tag }),
        _ => anyhow::bail!("give one of --url, --prefix or --tag"),
    };
    let endpoint = format!("{}{}", args.gateway.trim_end_matches('/'), args.path);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (status, text) = runtime.block_on(async {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .post(&endpoint)
            .bearer_auth(&args.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach the gateway at {endpoint}"))?;
        let status = response.status();
        anyhow::Ok((status, response.text().await?))
    })?;
    if status == reqwest::StatusCode::FORBIDDEN {
        anyhow::bail!(
            "the gateway refused the purge (403): check --token against cache.admin_token: {text}"
        );
    }
    if !status.is_success() {
        anyhow::bail!("purge failed ({status}): {text}");
    }
    let reply: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("unexpected answer: {text}"))?;
    crate::output::emit(&format!("purged {} object(s)\n", reply["purged"]))
}
