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
    }
}

/// The runtime for `workers` threads: see `gateway::Config::workers`.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    match workers {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Runtime::new(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
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
    let runtime = runtime(config.workers).context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(config.bind, "the gateway").await?;
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
            gateway.serve(listener, ctx)
        });
        crate::output::note(&format!(
            "gateway listening on http://{endpoint}/{metrics_note}\n"
        ));
        supervisor
            .run(None, Duration::from_millis(args.drain_timeout_ms))
            .await
    })
}
