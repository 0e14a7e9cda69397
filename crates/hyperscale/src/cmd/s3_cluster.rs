//! `hyperscale s3 datanode` and `hyperscale s3 status`: the object store's data nodes
//! as processes of their own, and a look at them; plus how `s3 serve` connects to them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use objstore::cluster::{self, Durability, Heartbeat, wire};
use objstore::s3::Config;

use crate::output::{emit, emit_json};

/// Flags of `s3 datanode`.
#[derive(clap::Args)]
pub struct DatanodeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9101")]
    bind: SocketAddr,
    /// Directory of the node's data files and object-mapping table.
    #[arg(long, default_value = "./data/s3-datanode")]
    data_dir: PathBuf,
    /// File with the cluster secret (16 to 256 bytes) the API node presents.
    #[arg(long)]
    cluster_secret_file: PathBuf,
    /// The node's name in heartbeats [default: the bind address].
    #[arg(long)]
    node_id: Option<String>,
    /// The node's failure domain (rack, host, data center) [default: its name].
    #[arg(long)]
    zone: Option<String>,
    /// Disk budget in bytes; puts past it are refused [default: unlimited].
    #[arg(long)]
    capacity_bytes: Option<u64>,
    /// Connections served at once.
    #[arg(long, default_value_t = 256)]
    connections_max: usize,
    /// A connection idle this long is closed, in ms.
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
}

/// Runs a data node until the process is stopped. Every acknowledged put is fsynced,
/// so stopping it (even with `kill -9`) loses nothing acknowledged.
pub fn datanode(args: DatanodeArgs) -> anyhow::Result<()> {
    let secret = cluster::read_secret(&args.cluster_secret_file).map_err(anyhow::Error::msg)?;
    service::net::prepare_data_dir(&args.data_dir)?;
    let opts = objstore::Options {
        capacity_bytes_max: args.capacity_bytes.unwrap_or(u64::MAX),
        ..objstore::Options::default()
    };
    let node = objstore::Node::open(&args.data_dir, opts)
        .with_context(|| format!("cannot open the data node in {}", args.data_dir.display()))?;
    let listener = std::net::TcpListener::bind(args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr()?;
    let node_id = args.node_id.unwrap_or_else(|| addr.to_string());
    let zone = args.zone.unwrap_or_else(|| node_id.clone());
    emit(&format!(
        "s3 datanode {node_id} (zone {zone}) listening on {addr}\n"
    ))?;
    cluster::datanode::serve(
        listener,
        Arc::new(node),
        cluster::datanode::ServerConfig {
            node_id,
            zone,
            secret,
            connections_max: args.connections_max.max(1),
            idle_timeout_ms: args.idle_timeout_ms,
            capacity_bytes: args.capacity_bytes.unwrap_or(u64::MAX),
        },
    )
    .context("the data node server failed")
}

/// The cluster `s3 serve` stores chunks on, if `datanodes` is set.
pub fn connect(config: &Config) -> anyhow::Result<Option<Arc<cluster::Cluster>>> {
    if config.datanodes.trim().is_empty() {
        return Ok(None);
    }
    let durability = Durability::parse(&config.durability).with_context(|| {
        format!(
            "durability {:?}: use replicate3 or ec4+2",
            config.durability
        )
    })?;
    let secret_file = config
        .cluster_secret_file
        .as_ref()
        .context("--datanodes needs --cluster-secret-file")?;
    let secret = cluster::read_secret(secret_file).map_err(anyhow::Error::msg)?;
    let c = cluster::connect(
        &config.datanodes,
        secret,
        durability,
        Heartbeat {
            repair_after_ms: config.repair_after_ms,
            ..Heartbeat::default()
        },
        config.datanode_timeout_ms,
    )
    .map_err(anyhow::Error::msg)?;
    let c = Arc::new(c);
    c.start_heartbeats()
        .context("cannot start the heartbeat thread")?;
    let up = c
        .status()
        .iter()
        .filter(|m| m.state == cluster::NodeState::Up)
        .count();
    emit(&format!(
        "data store: {} data nodes ({up} up), durability {durability}\n",
        c.status().len()
    ))?;
    Ok(Some(c))
}

/// Flags of `s3 status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Data nodes, `host:port[@zone],...`.
    #[arg(long)]
    datanodes: String,
    /// File with the cluster secret.
    #[arg(long)]
    cluster_secret_file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Line {
    name: String,
    zone: String,
    state: &'static str,
    info: Option<wire::NodeInfo>,
    error: Option<String>,
}

/// Sends one heartbeat to each data node and shows the answers.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    use objstore::cluster::DataNode;
    let secret = cluster::read_secret(&args.cluster_secret_file).map_err(anyhow::Error::msg)?;
    let members = cluster::parse_members(&args.datanodes).map_err(anyhow::Error::msg)?;
    let lines: Vec<Line> = members
        .into_iter()
        .map(|(m, addr)| {
            let r = wire::Remote::new(addr, secret.clone(), 1_000, 3_000).ping();
            let (state, info, error) = match r {
                Ok(i) => ("up", Some(i), None),
                Err(e) => ("down", None, Some(e.to_string())),
            };
            Line {
                name: m.name,
                // The zone the node reports; the configured one if it did not answer.
                zone: info.as_ref().map_or(m.zone, |i| i.zone.clone()),
                state,
                info,
                error,
            }
        })
        .collect();
    if args.json {
        return emit_json(&lines);
    }
    let mut rows = vec![
        ["NODE", "ZONE", "STATE", "OBJECTS", "DISK BYTES"]
            .map(String::from)
            .to_vec(),
    ];
    for l in &lines {
        rows.push(vec![
            l.name.clone(),
            l.zone.clone(),
            l.state.to_string(),
            l.info
                .as_ref()
                .map_or("-".into(), |i| i.objects.to_string()),
            l.info
                .as_ref()
                .map_or("-".into(), |i| i.disk_bytes.to_string()),
        ]);
    }
    emit(&crate::table::render(&rows))
}
