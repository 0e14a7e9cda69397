//! `hyperscale kv`: the Redis-compatible key-value server (chapter 6).
//!
//! `serve` layers the settings (TOML file, `HYPERSCALE_KV_*` env, flags),
//! binds the address, and runs `kv::serve` under a supervisor of one so it
//! stops cleanly on Ctrl-C/SIGTERM and can serve `/metrics` and `/healthz`
//! on `--admin-bind`. Clients are any Redis client: `redis-cli -p 6379`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use service::{ConfigSources, Supervisor};

/// Arguments of `hyperscale kv`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Run the server (RESP2/RESP3 on --bind, default 127.0.0.1:6379).
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:6379].
    #[arg(long)]
    bind: Option<String>,
    /// Storage engine: memory (cache, bounded by --maxmemory) or lsm (durable) [default: lsm].
    #[arg(long)]
    engine: Option<String>,
    /// Directory of the lsm engine's files [default: data/kv].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with any of the settings (Redis names with `_`: maxmemory_policy = "allkeys-lru").
    #[arg(long)]
    config: Option<PathBuf>,
    /// When lsm writes reach the disk: always, everysec or no [default: everysec].
    #[arg(long)]
    fsync: Option<String>,
    /// Memory limit of the memory engine, e.g. 100mb (0 = none) [default: 0].
    #[arg(long)]
    maxmemory: Option<String>,
    /// noeviction, allkeys-lru, allkeys-lfu, allkeys-fifo, volatile-lru or volatile-ttl [default: noeviction].
    #[arg(long)]
    maxmemory_policy: Option<String>,
    /// Password clients must AUTH with (empty = none).
    #[arg(long)]
    requirepass: Option<String>,
    /// Most simultaneous clients [default: 10000].
    #[arg(long)]
    maxclients: Option<i64>,
    /// Close clients idle this many seconds (0 = never) [default: 0].
    #[arg(long)]
    timeout: Option<i64>,
    /// Serve /metrics and /healthz on this address (off when not given).
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// Worker threads of the async runtime (1 = one event loop; a long Lua
    /// script still hands it over so others get BUSY) [default: the CPUs
    /// this process may use].
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(args),
    }
}

fn load_config(args: &ServeArgs) -> anyhow::Result<kv::Config> {
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_KV_")
        .flag("bind", args.bind.clone())
        .flag("engine", args.engine.clone())
        .flag(
            "data_dir",
            args.data_dir.as_ref().map(|d| d.display().to_string()),
        )
        .flag("fsync", args.fsync.clone())
        .flag("maxmemory", args.maxmemory.clone())
        .flag("maxmemory_policy", args.maxmemory_policy.clone())
        .flag("requirepass", args.requirepass.clone())
        .flag("maxclients", args.maxclients)
        .flag("timeout", args.timeout);
    Ok(service::config::load(&sources)?)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let addr = super::serve::parse_bind(&config.bind)?;
    if config.engine == kv::config::EngineKind::Lsm {
        service::net::prepare_data_dir(&config.data_dir)?;
    }
    // Open the engine before binding or announcing anything: a data
    // directory another server holds fails here, reported once by main.
    let engine = config.engine;
    let server = kv::Server::open(config)?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args.threads.unwrap_or(cpus);
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    // Always the multi-thread scheduler, also with one worker: a long Lua
    // script hands its worker over to a fresh thread so that other clients
    // get `BUSY` and `SCRIPT KILL` (kv's `command::scripting::offload`),
    // which the current-thread scheduler cannot do.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(addr, "the kv server").await?;
        let endpoint = listener.local_addr()?.to_string();
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let metrics = kv::new_metrics();
        metrics.register(supervisor.registry().sub_registry_with_prefix("kv"));
        let admin = super::serve::bind_admin(args.admin_bind).await?;
        crate::output::emit(&format!("kv server ({engine:?} engine) on {endpoint}\n"))?;
        supervisor.add(kv::info(&endpoint), move |ctx| async move {
            server
                .serve(listener, metrics, ctx)
                .await
                .map_err(anyhow::Error::from)
        });
        supervisor.run(admin, Duration::from_secs(5)).await
    })
}
