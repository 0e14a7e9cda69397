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
    /// Run the server (RESP2/RESP3 on --bind, default 127.0.0.1:6379);
    /// with --cluster-bind, a node of a Dynamo-style cluster.
    Serve(Box<ServeArgs>),
    /// Inspect a cluster (`status`).
    #[command(subcommand)]
    Cluster(super::kv_cluster::Verb),
    /// Run a sentinel: watch a primary and its replicas, promote a replica
    /// when the primary is down (Redis Sentinel's protocol, default port 26379).
    Sentinel(SentinelArgs),
}

#[derive(clap::Args)]
struct SentinelArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:26379")]
    bind: String,
    /// The name clients ask for (`SENTINEL get-master-addr-by-name`).
    #[arg(long, default_value = "mymaster")]
    master_name: String,
    /// The primary's host:port at start.
    #[arg(long)]
    master: String,
    /// Sentinels that must agree the primary is down.
    #[arg(long, default_value_t = 2)]
    quorum: usize,
    /// Silence after which an instance is considered down (ms).
    #[arg(long, default_value_t = 30_000)]
    down_after_ms: u64,
    /// How long a failover may take, and the pause before another try (ms).
    #[arg(long, default_value_t = 180_000)]
    failover_timeout_ms: u64,
    /// Another sentinel's host:port (repeat for each).
    #[arg(long = "sentinel")]
    peers: Vec<String>,
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
    /// Cluster mode: the internode address (peers dial it) [default: off].
    #[arg(long)]
    cluster_bind: Option<String>,
    /// Every other node's internode address, comma-separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<String>>,
    /// This node's id (stable for the life of its data).
    #[arg(long)]
    node_id: Option<u32>,
    /// This node's datacenter (replicas spread across datacenters).
    #[arg(long)]
    datacenter: Option<String>,
    /// Virtual nodes of this node on the ring [default: 64].
    #[arg(long)]
    vnodes: Option<u32>,
    /// Copies of each key, N [default: 3].
    #[arg(long)]
    replicas: Option<i64>,
    /// Acks a write waits for, W [default: 2].
    #[arg(long)]
    write_quorum: Option<i64>,
    /// Replies a read waits for, R [default: 2].
    #[arg(long)]
    read_quorum: Option<i64>,
    /// Strict quorum: no substitutes or hints for down replicas [default: sloppy].
    #[arg(long)]
    strict_quorum: bool,
    /// Start outside the ring, to join a running cluster (`kv cluster join`).
    #[arg(long)]
    join: bool,
    /// File holding the shared cluster secret (16+ bytes); peers without it are refused.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Replicate from this primary at start: "host port" (REPLICAOF).
    #[arg(long)]
    replicaof: Option<String>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(*args),
        Verb::Cluster(verb) => super::kv_cluster::run(verb),
        Verb::Sentinel(args) => sentinel(args),
    }
}

fn sentinel(args: SentinelArgs) -> anyhow::Result<()> {
    let addr = super::serve::parse_bind(&args.bind)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(addr, "the sentinel").await?;
        let endpoint = listener.local_addr()?.to_string();
        let config = kv::sentinel::SentinelConfig {
            master_name: args.master_name,
            master_addr: args.master,
            quorum: args.quorum,
            down_after_ms: args.down_after_ms,
            failover_timeout_ms: args.failover_timeout_ms,
            peers: args.peers,
            announce: endpoint.clone(),
        };
        crate::output::emit(&format!(
            "kv sentinel on {endpoint} watching {} at {}\n",
            config.master_name, config.master_addr
        ))?;
        let shutdown = service::shutdown::on_signals();
        kv::sentinel::serve(listener, config, shutdown).await?;
        Ok(())
    })
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
        .flag("timeout", args.timeout)
        .flag("replicaof", args.replicaof.clone())
        .flag("cluster.cluster_bind", args.cluster_bind.clone())
        .flag("cluster.seeds", args.seeds.clone())
        .flag("cluster.node_id", args.node_id.map(i64::from))
        .flag("cluster.datacenter", args.datacenter.clone())
        .flag("cluster.vnodes", args.vnodes.map(i64::from))
        .flag("cluster.replicas", args.replicas)
        .flag("cluster.write_quorum", args.write_quorum)
        .flag("cluster.read_quorum", args.read_quorum)
        .flag("cluster.strict_quorum", args.strict_quorum.then_some(true))
        .flag("cluster.join", args.join.then_some(true))
        .flag(
            "cluster.cluster_secret_file",
            args.cluster_secret_file
                .as_ref()
                .map(|f| f.display().to_string()),
        );
    Ok(service::config::load(&sources)?)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    if config.cluster.cluster_bind.is_some() {
        return super::kv_cluster::serve(config, args.threads, args.admin_bind);
    }
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
