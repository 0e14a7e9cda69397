//! `hyperscale mq`: the Kafka-compatible message queue (vol. 2).
//!
//! `serve --broker-id N --controller-quorum 1@host:port,2@...,3@...` makes
//! the broker one of a cluster (see `examples/mq-cluster/`).
//!
//! `serve` layers the settings (TOML file, `HYPERSCALE_MQ_*` env, flags),
//! binds the address, opens the data directory (recovering every partition
//! log) and runs `mq::Server` under a supervisor of one, so it stops cleanly
//! on Ctrl-C/SIGTERM and can serve `/metrics` and `/healthz` on
//! `--admin-bind`. Clients are any Kafka client: `kcat -b 127.0.0.1:9092 -L`.
//!
//! `topics`, `produce`, `consume` and `groups` are small Kafka clients for
//! the shell (see `tools`): they speak the Kafka protocol to `--bootstrap`,
//! so they work against this broker or a real Kafka. `retry` and `dlq` run
//! the retry-topic pattern of `mqclient::retry` (see `retry`).

mod retry;
mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use service::{ConfigSources, Supervisor};

/// Arguments of `hyperscale mq`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Run a broker (Kafka protocol on --bind, default 127.0.0.1:9092).
    Serve(ServeArgs),
    /// Create, list, describe or delete topics.
    Topics(tools::TopicsArgs),
    /// Send lines of stdin as records (`KEY<sep>VALUE` with --key-separator).
    Produce(tools::ProduceArgs),
    /// Print a topic's records, alone or as a member of a consumer group.
    Consume(tools::ConsumeArgs),
    /// List consumer groups, or describe one with its lag per partition.
    Groups(tools::GroupsArgs),
    /// Run the retry worker of a topic: <topic>.retry back to <topic> after
    /// the delay, to <topic>.dlq after the last attempt.
    Retry(retry::RetryArgs),
    /// List the dead letters of a topic (<topic>.dlq) with their errors.
    Dlq(retry::DlqArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9092].
    #[arg(long)]
    bind: Option<String>,
    /// HOST:PORT clients are told to connect to, when it differs from --bind.
    #[arg(long)]
    advertised_address: Option<String>,
    /// Directory of topics, partition logs and committed offsets [default: data/mq].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with any of the settings (num_partitions = 3, fsync = "always", ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// When appends reach the disk: always, interval or os [default: interval].
    #[arg(long)]
    fsync: Option<String>,
    /// Partitions of auto-created topics [default: 1].
    #[arg(long)]
    num_partitions: Option<i64>,
    /// Create topics on first use [default: true].
    #[arg(long)]
    auto_create_topics: Option<bool>,
    /// Most simultaneous connections [default: 10000].
    #[arg(long)]
    connections_max: Option<i64>,
    /// Serve /metrics and /healthz on this address (off when not given).
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// This broker's id in the cluster (`node.id`) [default: 0].
    #[arg(long)]
    broker_id: Option<i64>,
    /// The cluster's voters, ID@HOST:PORT,... (each broker's internal
    /// listener; this broker binds its own). Not given: a single broker.
    #[arg(long)]
    controller_quorum: Option<String>,
    /// Copies of each partition of auto-created topics [default: 1].
    #[arg(long)]
    default_replication_factor: Option<i64>,
    /// Fewest in-sync replicas an acks=all produce needs [default: 1].
    #[arg(long)]
    min_insync_replicas: Option<i64>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(args),
        Verb::Topics(args) => tools::topics(args),
        Verb::Produce(args) => tools::produce(args),
        Verb::Consume(args) => tools::consume(args),
        Verb::Groups(args) => tools::groups(args),
        Verb::Retry(args) => retry::retry(args),
        Verb::Dlq(args) => retry::dlq(args),
    }
}

fn load_config(args: &ServeArgs) -> anyhow::Result<mq::Config> {
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_MQ_")
        .flag("bind", args.bind.clone())
        .flag("advertised_address", args.advertised_address.clone())
        .flag(
            "data_dir",
            args.data_dir.as_ref().map(|d| d.display().to_string()),
        )
        .flag("fsync", args.fsync.clone())
        .flag("num_partitions", args.num_partitions)
        .flag("auto_create_topics", args.auto_create_topics)
        .flag("connections_max", args.connections_max)
        .flag("broker_id", args.broker_id)
        .flag("controller_quorum", args.controller_quorum.clone())
        .flag(
            "default_replication_factor",
            args.default_replication_factor,
        )
        .flag("min_insync_replicas", args.min_insync_replicas);
    Ok(service::config::load(&sources)?)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    config
        .validate()
        .map_err(|err| anyhow::anyhow!("invalid settings: {err}"))?;
    let addr = super::serve::parse_bind(&config.bind)?;
    service::net::prepare_data_dir(&config.data_dir)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(addr, "the mq broker").await?;
        let endpoint = listener.local_addr()?.to_string();
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let metrics = std::sync::Arc::new(mq::Metrics::new());
        metrics.register(supervisor.registry().sub_registry_with_prefix("mq"));
        let admin = super::serve::bind_admin(args.admin_bind).await?;
        // Open (and recover) the data directory before announcing anything.
        let data_dir = config.data_dir.clone();
        let server =
            tokio::task::spawn_blocking(move || mq::Server::open(config, listener, metrics))
                .await??;
        crate::output::emit(&format!(
            "mq broker on {endpoint}, data in {}\n",
            data_dir.display()
        ))?;
        supervisor.add(mq::info(&endpoint), move |ctx| server.serve(ctx));
        supervisor.run(admin, Duration::from_secs(5)).await
    })
}
