//! `hyperscale up`: every system that exists (the S3 store included, its
//! access key printed under the table), in one process, on embedded
//! storage under `--data-dir`, with the web console in front.
//!
//! Listeners are bound before anything starts, so a port in use fails the
//! whole command at once with a clear line instead of leaving half the
//! systems running. Each system is then added to one [`Supervisor`], which
//! serves `/metrics` and `/healthz` on the admin address and stops everything
//! on Ctrl-C or SIGTERM, draining for at most `--drain-timeout-ms`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use service::{ConfigSources, Supervisor, SystemInfo};

use crate::output::emit;

/// Arguments of `hyperscale up`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory where every system keeps its data (one sub-directory each).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with an `[up]`-level `data_dir`, and one table per system.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the web console.
    #[arg(long)]
    console_bind: Option<SocketAddr>,
    /// Address of `/metrics` and `/healthz`.
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
    /// How long systems may take to drain after Ctrl-C.
    #[arg(long)]
    drain_timeout_ms: Option<u64>,
    /// Bind every system to a free port chosen by the OS (the table shows
    /// which), so several instances or test runs can share one machine.
    #[arg(long)]
    ephemeral_ports: bool,
    /// Also start a Dynamo-style kv cluster of this many nodes (at least
    /// `[kv.cluster] replicas`, 3 by default; W = R = 2 by default): clients
    /// on 127.0.0.1:6381, 6382, ..., peers on 127.0.0.1:17001, 17002, ....
    #[arg(long)]
    kv_nodes: Option<u8>,
}

/// The settings of `hyperscale up`, from file, env (`HYPERSCALE_UP_*`) and flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct UpConfig {
    data_dir: PathBuf,
    drain_timeout_ms: u64,
    console: BindConfig,
    admin: AdminConfig,
    /// The URL shortener's settings (`[shortener]`); its data directory is
    /// always `{data_dir}/shortener`.
    shortener: shortener::Config,
    /// The ID service's settings (`[id]`).
    id: idgen::http::ServerConfig,
    /// The key-value server's settings (`[kv]`); its data directory is
    /// always `{data_dir}/kv`.
    kv: kv::Config,
    /// How many kv cluster nodes to start beside the single kv server (0:
    /// none); each node's data is in `{data_dir}/kv-node{i}`.
    kv_nodes: u8,
    /// Port 0 for the cluster nodes too (`--ephemeral-ports`).
    #[serde(skip)]
    kv_nodes_ephemeral: bool,
    /// The message queue's settings (`[mq]`); its data directory is always
    /// `{data_dir}/mq`.
    mq: mq::Config,
    /// The S3 object store's settings (`[s3]`); its data directory is
    /// always `{data_dir}/s3`.
    s3: objstore::s3::Config,
    /// The gateway's settings (`[gateway]`). With no routes configured it
    /// fronts the HTTP systems of this process: `/api/v1/ids` to the ID
    /// service, everything else to the shortener.
    gateway: gateway::Config,
    /// The metrics server's settings (`[metrics]`); its data directory is
    /// always `{data_dir}/metrics`.
    metrics: super::up_metrics::Config,
    /// The alert manager's settings (`[alerts]`); its journal is always in
    /// `{data_dir}/alerts`.
    alerts: super::up_alerting::Config,
    /// The hotel reservation service's settings (`[hotel]`); its embedded
    /// database is always under `{data_dir}/hotel`, seeded with demo hotels
    /// when empty. Without `api_key`, one is made and kept in
    /// `{data_dir}/hotel/api-key`.
    hotel: hotel::Config,
    /// A stage of chapter 1 (`[topology]`, see `up_scale`): set, `up` runs
    /// only that stage's boxes instead of every system.
    topology: Option<super::up_scale::Stage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindConfig {
    bind: SocketAddr,
}

/// `[admin]`: where `/metrics`, `/healthz` and the systems' stop/start are
/// served, and the token stop/start then need (`admin.token`, or
/// `HYPERSCALE_UP_ADMIN__TOKEN`; none by default, the endpoint binding
/// 127.0.0.1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminConfig {
    bind: SocketAddr,
    #[serde(default)]
    token: Option<String>,
}

impl Default for UpConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            // Short enough that Ctrl-C always returns within five seconds.
            drain_timeout_ms: 3_000,
            console: BindConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            },
            admin: AdminConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 9100)),
                token: None,
            },
            // Machine 1: the ID service below claims the lowest free machine
            // id by lock file (0 unless another server on this host holds
            // it), and two generators must never share a machine ID.
            shortener: shortener::Config {
                machine: 1,
                ..shortener::Config::default()
            },
            id: idgen::http::ServerConfig::default(),
            kv: kv::Config::default(),
            kv_nodes: 0,
            kv_nodes_ephemeral: false,
            mq: mq::Config::default(),
            s3: objstore::s3::Config::default(),
            gateway: gateway::Config::default(),
            metrics: super::up_metrics::Config::default(),
            alerts: super::up_alerting::Config::default(),
            hotel: hotel::Config::default(),
            topology: None,
        }
    }
}

impl UpConfig {
    /// Port 0 everywhere: the OS picks a free port for each listener.
    fn use_ephemeral_ports(&mut self) {
        for addr in [
            &mut self.console.bind,
            &mut self.admin.bind,
            &mut self.shortener.bind,
            &mut self.gateway.bind,
            &mut self.s3.bind,
            &mut self.metrics.bind,
            &mut self.hotel.bind,
            &mut self.alerts.bind,
        ] {
            addr.set_port(0);
        }
        self.kv_nodes_ephemeral = true;
        for bind in [&mut self.id.bind, &mut self.kv.bind, &mut self.mq.bind] {
            if let Ok(mut addr) = bind.parse::<SocketAddr>() {
                addr.set_port(0);
                *bind = addr.to_string();
            }
        }
    }
}

/// Runs every system until Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<()> {
    let sources = ConfigSources::new(args.config.clone(), "HYPERSCALE_UP_")
        .flag(
            "data_dir",
            args.data_dir.map(|dir| dir.display().to_string()),
        )
        .flag(
            "console.bind",
            args.console_bind.map(|addr| addr.to_string()),
        )
        .flag("admin.bind", args.admin_bind.map(|addr| addr.to_string()))
        .flag(
            "drain_timeout_ms",
            args.drain_timeout_ms.map(|ms| ms as i64),
        )
        .flag("kv_nodes", args.kv_nodes.map(i64::from));
    let mut config: UpConfig = service::config::load(&sources)?;
    // Files named in the config (the gateway's rules) are relative to it.
    if let Some(dir) = args.config.as_deref().and_then(std::path::Path::parent) {
        config.gateway.resolve_paths(dir);
        config.metrics.resolve_paths(dir);
        config.alerts.resolve_paths(dir);
    }
    if args.ephemeral_ports {
        config.use_ephemeral_ports();
    }
    service::net::prepare_data_dir(&config.data_dir)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if let Some(stage) = config.topology.take() {
        let frame = super::up_scale::Frame {
            data_dir: config.data_dir,
            console: config.console.bind,
            admin: config.admin.bind,
            drain_timeout_ms: config.drain_timeout_ms,
            ephemeral: args.ephemeral_ports,
        };
        return runtime.block_on(super::up_scale::up(stage, frame));
    }
    runtime.block_on(up(config))
}

async fn up(config: UpConfig) -> anyhow::Result<()> {
    let mut supervisor = Supervisor::new(service::shutdown::on_signals());
    supervisor.set_admin_token(config.admin.token.clone());
    let admin = bind_system(config.admin.bind, "the admin endpoint", "admin").await?;
    let console_listener = bind_system(config.console.bind, "the console", "console").await?;
    let console_addr = console_listener.local_addr()?.to_string();
    let metrics_listener =
        bind_system(config.metrics.bind, "the metrics server", "metrics").await?;
    let alerts_listener = bind_system(config.alerts.bind, "the alert manager", "alerts").await?;
    let alertmanager = format!("http://{}", alerts_listener.local_addr()?);
    let console_requests = console_request_counter(&mut supervisor);
    let console = console::Console {
        directory: supervisor.directory(),
        metrics: supervisor.metrics_view(),
        prometheus: Some(format!("http://{}", metrics_listener.local_addr()?)),
        alertmanager: Some(alertmanager.clone()),
        requests: console_requests,
        topology: None,
        sampler: Default::default(),
        switches: Default::default(),
    };
    supervisor.add(console::info(&console_addr), move |ctx| {
        console::serve(console_listener, console, ctx)
    });
    // The gateway is bound first: the shortener must know the address its
    // short links are served on (and refuse long URLs that lead back to it).
    let gateway_listener = bind_system(config.gateway.bind, "the gateway", "gateway").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    let shortener = add_shortener(&mut supervisor, &config, gateway_addr).await?;
    let (id, id_claim) = add_id(&mut supervisor, &config).await?;
    let (hotel, hotel_note) = super::up_hotel::add(
        &mut supervisor,
        &config.hotel,
        &config.data_dir,
        fronted(&config),
        gateway_addr,
    )
    .await?;
    let local = Local {
        shortener,
        id,
        hotel,
    };
    add_gateway(&mut supervisor, &config, gateway_listener, local).await?;
    add_kv(&mut supervisor, &config).await?;
    if config.kv_nodes > 0 {
        let nodes = super::kv_cluster::Local {
            nodes: config.kv_nodes,
            data_dir: &config.data_dir,
            base: &config.kv,
            ephemeral: config.kv_nodes_ephemeral,
        };
        nodes.add_to(&mut supervisor).await?;
    }
    add_mq(&mut supervisor, &config).await?;
    let s3_key = add_s3(&mut supervisor, &config).await?;
    let admin_addr = admin.local_addr()?;
    super::up_alerting::add(
        &mut supervisor,
        &config.alerts,
        &config.data_dir,
        alerts_listener,
    )
    .await?;
    let metrics = super::up_metrics::Up {
        settings: &config.metrics,
        data_dir: &config.data_dir,
        console: &console_addr,
        alertmanager: &alertmanager,
    };
    metrics.add(&mut supervisor, metrics_listener).await?;
    print_table(
        &supervisor.directory().list(),
        admin_addr,
        &config,
        &[format!("id: {id_claim}"), s3_key, hotel_note],
    )?;
    // The same news for whoever reads logs rather than stdout.
    tracing::info!(console = %console_addr, admin = %admin_addr, "hyperscale is up");
    supervisor
        .run(Some(admin), Duration::from_millis(config.drain_timeout_ms))
        .await?;
    emit("Hyperscale stopped.\n")
}

/// Binds a system's listener; on failure, says how to move that one system
/// (`up` runs many, so "choose another address" alone is not enough).
pub(super) async fn bind_system(
    addr: SocketAddr,
    what: &str,
    table: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    service::net::bind(addr, what).await.map_err(|err| {
        let variable = format!("HYPERSCALE_UP_{}__BIND", table.to_ascii_uppercase());
        anyhow::anyhow!(
            "{err:#}; to move it, set {variable}=127.0.0.1:PORT or `[{table}] bind` in --config, \
             or run `hyperscale up --ephemeral-ports`"
        )
    })
}

async fn add_shortener(
    supervisor: &mut Supervisor,
    config: &UpConfig,
    gateway: SocketAddr,
) -> anyhow::Result<SocketAddr> {
    let mut settings = config.shortener.clone();
    settings.data_dir = config.data_dir.join("shortener");
    // Users reach the shortener through the gateway (unless [gateway] routes
    // elsewhere): its short links point there, and a long URL naming the
    // gateway is a redirect loop the shortener refuses.
    if settings.public_url.is_none()
        && config.gateway.routes.is_empty()
        && config.gateway.pools.is_empty()
    {
        settings.public_url = Some(format!("http://{gateway}"));
    }
    // The gateway fronts the shortener on loopback: believe its
    // X-Forwarded-For, or every proxied client would share one rate limit.
    if settings.trusted_proxies.is_empty() {
        settings.trusted_proxies = vec!["127.0.0.1/32".into()];
    }
    let listener = bind_system(settings.bind, "the shortener", "shortener").await?;
    let addr = listener.local_addr()?;
    let info = super::shortener::info(&addr.to_string());
    let shortener = shortener::Shortener::open(settings).await?;
    shortener.register_metrics(supervisor.registry().sub_registry_with_prefix("shortener"));
    supervisor.add(info, move |ctx| shortener.serve(listener, ctx));
    Ok(addr)
}

/// Adds the ID service; returns its address and how it claimed its machine
/// id (the same way as `hyperscale id serve`: see `idgen::machine`).
async fn add_id(
    supervisor: &mut Supervisor,
    config: &UpConfig,
) -> anyhow::Result<(SocketAddr, String)> {
    let bind: SocketAddr = config
        .id
        .bind
        .parse()
        .with_context(|| format!("id.bind {:?} is not HOST:PORT", config.id.bind))?;
    let listener = bind_system(bind, "the ID service", "id").await?;
    let addr = listener.local_addr()?;
    let info = idgen::system::info(&addr.to_string());
    let metrics = idgen::system::Metrics::register(supervisor.registry());
    let settings = config.id.clone();
    let claimed = idgen::machine::claim_async(&settings)
        .await
        .context("the ID service")?;
    let claim = claimed.to_string();
    supervisor.add(info, move |ctx| {
        idgen::system::run(listener, claimed, settings, metrics, ctx)
    });
    Ok((addr, claim))
}

async fn add_kv(supervisor: &mut Supervisor, config: &UpConfig) -> anyhow::Result<()> {
    let mut settings = config.kv.clone();
    settings.data_dir = config.data_dir.join("kv");
    let bind: SocketAddr = settings
        .bind
        .parse()
        .with_context(|| format!("kv.bind {:?} is not HOST:PORT", settings.bind))?;
    let listener = bind_system(bind, "the key-value server", "kv").await?;
    let addr = listener.local_addr()?;
    let info = kv::info(&addr.to_string());
    let metrics = kv::new_metrics();
    metrics.register(supervisor.registry().sub_registry_with_prefix("kv"));
    // Restartable (admin `POST /systems/kv/stop|start`): the first run
    // serves the listener bound above, later runs bind the same address.
    let mut first = Some(listener);
    supervisor.add_restartable(info, move |ctx| {
        let (listener, settings, metrics) = (first.take(), settings.clone(), metrics.clone());
        async move {
            let listener = match listener {
                Some(listener) => listener,
                None => service::net::bind(addr, "the key-value server").await?,
            };
            kv::serve(listener, settings, metrics, ctx)
                .await
                .map_err(anyhow::Error::from)
        }
    });
    Ok(())
}

async fn add_mq(supervisor: &mut Supervisor, config: &UpConfig) -> anyhow::Result<()> {
    let mut settings = config.mq.clone();
    settings.data_dir = config.data_dir.join("mq");
    let bind: SocketAddr = settings
        .bind
        .parse()
        .with_context(|| format!("mq.bind {:?} is not HOST:PORT", settings.bind))?;
    let listener = bind_system(bind, "the message queue", "mq").await?;
    let info = mq::info(&listener.local_addr()?.to_string());
    let metrics = std::sync::Arc::new(mq::Metrics::new());
    metrics.register(supervisor.registry().sub_registry_with_prefix("mq"));
    // Opening recovers every partition log: blocking, so off the workers.
    let server = tokio::task::spawn_blocking(move || mq::Server::open(settings, listener, metrics))
        .await?
        .context("the message queue")?;
    supervisor.add(info, move |ctx| server.serve(ctx));
    Ok(())
}

/// Adds the S3 object store; returns the line that tells how to reach it
/// (its access key: `up` is for one machine, bound to loopback by default).
async fn add_s3(supervisor: &mut Supervisor, config: &UpConfig) -> anyhow::Result<String> {
    let mut settings = config.s3.clone();
    settings.data_dir = config.data_dir.join("s3");
    let listener = bind_system(settings.bind, "the S3 object store", "s3").await?;
    let addr = listener.local_addr()?;
    let info = super::s3::info(&addr.to_string());
    // Opening recovers the data node and the metadata: off the workers.
    let (store, key, _) = tokio::task::spawn_blocking(move || super::s3::open_store(&settings))
        .await?
        .context("the S3 object store")?;
    store
        .metrics()
        .register(supervisor.registry().sub_registry_with_prefix("s3"));
    supervisor.add(info, move |ctx| super::s3::supervised(store, listener, ctx));
    Ok(format!(
        "s3: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url http://{addr} s3 ls",
        key.id, key.secret
    ))
}

/// Whether the gateway fronts this process's HTTP systems (`[gateway]` sets
/// no routes of its own).
/// The console's request counter, registered as `hyperscale_console_requests`.
pub(super) fn console_request_counter(
    supervisor: &mut Supervisor,
) -> prometheus_client::metrics::counter::Counter {
    let requests = prometheus_client::metrics::counter::Counter::default();
    supervisor
        .registry()
        .sub_registry_with_prefix("console")
        .register(
            "requests",
            "HTTP requests the console answered",
            requests.clone(),
        );
    requests
}

fn fronted(config: &UpConfig) -> bool {
    config.gateway.routes.is_empty() && config.gateway.pools.is_empty()
}

/// The HTTP systems of this process the gateway fronts.
struct Local {
    shortener: SocketAddr,
    id: SocketAddr,
    hotel: SocketAddr,
}

/// The gateway in front of this process's HTTP systems (chapter 1's load
/// balancer, chapter 4's rate limiter), unless `[gateway]` sets its own routes.
async fn add_gateway(
    supervisor: &mut Supervisor,
    config: &UpConfig,
    listener: tokio::net::TcpListener,
    local: Local,
) -> anyhow::Result<()> {
    let mut settings = config.gateway.clone();
    // The admin endpoint already serves every metric of the process.
    settings.metrics_path = String::new();
    if fronted(config) {
        front_local_systems(&mut settings, &local);
        if settings.ratelimit.rules.is_none() {
            let rules = super::up_hotel::write_rate_limits(&config.data_dir).await?;
            settings.ratelimit.rules = Some(rules);
        }
    }
    let info = gateway::info(&listener.local_addr()?.to_string());
    let gateway = gateway::Gateway::new(
        settings,
        supervisor.registry().sub_registry_with_prefix("gateway"),
    )?;
    supervisor.add(info, move |ctx| gateway.serve(listener, ctx));
    Ok(())
}

fn front_local_systems(settings: &mut gateway::Config, local: &Local) {
    let pool = |upstream: SocketAddr, health_path: &str| gateway::config::Pool {
        upstreams: vec![upstream.to_string()],
        health: gateway::config::HealthCheck {
            path: health_path.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    settings
        .pools
        .insert("id".into(), pool(local.id, "/api/v1/ids"));
    settings
        .pools
        .insert("shortener".into(), pool(local.shortener, "/"));
    settings.pools.insert(
        "hotel".into(),
        pool(local.hotel, hotel::api::page::PAGE_PATH),
    );
    let route = |prefix: &str, pool: &str| gateway::config::Route {
        prefix: prefix.into(),
        pool: pool.into(),
        strip_prefix: false,
        ..Default::default()
    };
    settings.routes = vec![route("/api/v1/ids", "id"), route("/", "shortener")];
    settings
        .routes
        .extend(super::up_hotel::PREFIXES.map(|prefix| route(prefix, "hotel")));
}

fn print_table(
    systems: &[(SystemInfo, service::Status)],
    admin: SocketAddr,
    config: &UpConfig,
    notes: &[String],
) -> anyhow::Result<()> {
    let mut rows: Vec<[String; 4]> = vec![[
        "SYSTEM".into(),
        "PROTOCOL".into(),
        "ENDPOINT".into(),
        "OPEN".into(),
    ]];
    for (info, _) in systems {
        let link = info.link.clone().unwrap_or_default();
        rows.push([
            info.name.clone(),
            info.protocol.clone(),
            info.endpoint.clone(),
            link,
        ]);
    }
    rows.push([
        "admin".into(),
        "HTTP".into(),
        admin.to_string(),
        format!("http://{admin}/metrics  http://{admin}/healthz"),
    ]);
    let count = systems.len();
    let noun = if count == 1 { "system" } else { "systems" };
    emit(&format!(
        "Hyperscale is up: {count} {noun}, data in {}.\n\n{}\n{}\nCtrl-C stops everything.\n",
        config.data_dir.display(),
        crate::table::render(&rows),
        notes.join("\n"),
    ))
}
