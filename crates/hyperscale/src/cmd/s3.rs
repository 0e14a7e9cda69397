//! `hyperscale s3`: the S3-compatible object store (vol. 2) — `serve` and the access
//! keys' admin verbs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use objstore::s3::{Config, S3Store, iam::AccessKey};
use service::{ConfigSources, Supervisor, SystemInfo};

use crate::output::{emit, emit_json};

/// Arguments of `hyperscale s3`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Serve the S3 API (SigV4 on every request) with an embedded data node, or over
    /// `--datanodes`.
    Serve(ServeArgs),
    /// Run a data node process (chunks of objects; the API node reaches it with the
    /// cluster secret).
    Datanode(super::s3_cluster::DatanodeArgs),
    /// Show the data nodes: state, zone, objects, bytes.
    Status(super::s3_cluster::StatusArgs),
    /// Manage access keys (run while the server is stopped: the key store is locked).
    Keys {
        #[command(subcommand)]
        verb: KeysVerb,
    },
}

#[derive(clap::Subcommand)]
enum KeysVerb {
    /// Create an access key and print it with its secret.
    Create(KeysArgs),
    /// List access key ids.
    List(KeysArgs),
    /// Delete an access key.
    Delete {
        /// The access key id.
        id: String,
        #[command(flatten)]
        args: KeysArgs,
    },
}

#[derive(clap::Args)]
struct KeysArgs {
    /// Directory of the store [default: ./data/s3].
    #[arg(long, default_value = "./data/s3")]
    data_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Flags of `serve`; each overrides the same key of `--config`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9000].
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Directory of the store [default: ./data/s3].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with the store's settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Object-table shards (fixed when the store is created) [default: 8].
    #[arg(long)]
    shards: Option<usize>,
    /// Address of `/metrics` and `/healthz` [default: none].
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// Remote data nodes, `host:port[@zone],...` [default: one embedded data node].
    #[arg(long)]
    datanodes: Option<String>,
    /// Durability on remote data nodes: `replicate3` (ack on 2) or `ec4+2` (ack on 5)
    /// [default: replicate3].
    #[arg(long)]
    durability: Option<String>,
    /// File with the cluster secret the data nodes require.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Base domain of virtual-host-style requests: `BUCKET.DOMAIN:PORT` names the
    /// bucket (e.g. `s3.localhost`) [default: path-style only].
    #[arg(long)]
    domain: Option<String>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(args) => serve(args),
        Verb::Datanode(args) => super::s3_cluster::datanode(args),
        Verb::Status(args) => super::s3_cluster::status(args),
        Verb::Keys { verb } => keys(verb),
    }
}

/// Loads the settings from `--config`, `HYPERSCALE_S3_*` and flags.
pub fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_S3_")
        .flag("bind", args.bind.map(|addr| addr.to_string()))
        .flag(
            "data_dir",
            args.data_dir.as_ref().map(|dir| dir.display().to_string()),
        )
        .flag("shards", args.shards.map(|n| n as i64))
        .flag("datanodes", args.datanodes.clone())
        .flag("durability", args.durability.clone())
        .flag("domain", args.domain.clone())
        .flag(
            "cluster_secret_file",
            args.cluster_secret_file
                .as_ref()
                .map(|p| p.display().to_string()),
        );
    let config: Config = service::config::load(&sources)?;
    let valid_label = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    anyhow::ensure!(
        config.domain.is_empty()
            || (config.domain.len() <= 253 && config.domain.split('.').all(valid_label)),
        "domain {:?} is not a domain name (like s3.localhost, without a port)",
        config.domain
    );
    Ok(config)
}

/// Opens the store of `config` (blocking: recovery reads the data node)
/// with at least one access key, created on first start; returns the
/// store, its oldest key and whether that key was just created.
pub fn open_store(config: &Config) -> anyhow::Result<(S3Store, AccessKey, bool)> {
    let store = match super::s3_cluster::connect(config)? {
        None => S3Store::open(&config.data_dir, config.options()),
        Some(cluster) => S3Store::open_cluster(&config.data_dir, config.options(), cluster),
    }
    .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let oldest = store
        .keys()
        .list()?
        .into_iter()
        .min_by_key(|k| k.created_ms);
    let (key, created) = match oldest {
        Some(key) => (key, false),
        None => (store.keys().create()?, true),
    };
    Ok((store, key, created))
}

/// Serves `store` on `listener` as one supervised system (here and in `up`).
pub async fn supervised(
    store: S3Store,
    listener: tokio::net::TcpListener,
    ctx: service::SystemContext,
) -> anyhow::Result<()> {
    ctx.health.set_up();
    store
        .serve(listener, ctx.shutdown.cancelled_owned())
        .await
        .context("the S3 server failed")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    service::net::prepare_data_dir(&config.data_dir)?;
    let (mut store, key, created) = open_store(&config)?;
    store.on_repair(std::sync::Arc::new(|r| {
        let _ = emit(&format!(
            "repair pass: {} chunks checked, {} copies or shards rewritten, {} unreadable\n",
            r.chunks, r.rewritten, r.unavailable
        ));
    }));
    let first_key = created.then_some(key);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let admin = super::serve::bind_admin(args.admin_bind).await?;
        let listener = service::net::bind(config.bind, "the S3 API").await?;
        let info = info(&listener.local_addr()?.to_string());
        if let Some(key) = first_key {
            emit(&format!(
                "created an access key (kept in {}):\n  access key: {}\n  secret key: {}\n",
                config.data_dir.join("iam").display(),
                key.id,
                key.secret
            ))?;
        }
        emit(&format!("s3 listening on {}\n", info.endpoint))?;
        store
            .metrics()
            .register(supervisor.registry().sub_registry_with_prefix("s3"));
        supervisor.add(info, move |ctx| supervised(store, listener, ctx));
        supervisor.run(admin, Duration::from_secs(3)).await
    })
}

fn open_keys(dir: &Path) -> anyhow::Result<objstore::s3::iam::Keys> {
    objstore::s3::iam::Keys::open(&dir.join("iam")).with_context(|| {
        format!(
            "cannot open the key store in {} (is `hyperscale s3 serve` running on it?)",
            dir.display()
        )
    })
}

fn keys(verb: KeysVerb) -> anyhow::Result<()> {
    match verb {
        KeysVerb::Create(a) => {
            std::fs::create_dir_all(&a.data_dir)
                .with_context(|| format!("cannot create {}", a.data_dir.display()))?;
            let key = open_keys(&a.data_dir)?.create()?;
            if a.json {
                emit_json(&serde_json::json!({"access_key": key.id, "secret_key": key.secret}))
            } else {
                emit(&format!(
                    "access key: {}\nsecret key: {}\n",
                    key.id, key.secret
                ))
            }
        }
        KeysVerb::List(a) => {
            let keys: Vec<AccessKey> = open_keys(&a.data_dir)?.list()?;
            if a.json {
                let ids: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({"access_key": k.id, "created_ms": k.created_ms}))
                    .collect();
                return emit_json(&ids);
            }
            let mut rows = vec![vec![
                "ACCESS KEY".to_string(),
                "CREATED (unix ms)".to_string(),
            ]];
            rows.extend(
                keys.iter()
                    .map(|k| vec![k.id.clone(), k.created_ms.to_string()]),
            );
            emit(&crate::table::render(&rows))
        }
        KeysVerb::Delete { id, args } => {
            if !open_keys(&args.data_dir)?.delete(&id)? {
                anyhow::bail!("no access key {id}");
            }
            if args.json {
                emit_json(&serde_json::json!({"deleted": id}))
            } else {
                emit(&format!("deleted {id}\n"))
            }
        }
    }
}

/// How the object store is listed by `up` and the console.
pub fn info(endpoint: &str) -> SystemInfo {
    SystemInfo {
        name: "s3".into(),
        title: "S3 object storage".into(),
        chapter: "vol. 2 S3-like object storage".into(),
        protocol: "S3 REST (SigV4)".into(),
        endpoint: endpoint.into(),
        link: None,
    }
}
