//! `hyperscale up --config examples/scale/<stage>.toml`: one stage of
//! chapter 1 ("사용자 수에 따른 규모 확장"), run as the boxes the chapter
//! draws, each a system of one process: web servers (the URL shortener),
//! the database (`db`, our kv), its read replicas, a cache server, a load
//! balancer and a CDN (two gateways), one or two data centers.
//!
//! A `[topology]` table in the config switches `up` into this mode: instead
//! of every system of the book it starts only the boxes the table asks for
//! ([`Stage`], turned into a list by the pure [`plan`]), wires each to the
//! next tier, and gives the console the picture (`/topology`), with each
//! box's metrics labelled `box="{name}"` so the console can rate it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use console::topology::{Box as Drawn, Topology};
use service::Supervisor;
use service::metrics::Registry;

pub use super::up_scale_plan::{Kind, Planned, Stage, plan};
use crate::output::emit;

/// Where `up` listens besides the boxes, and how it stops.
pub struct Frame {
    /// Every box's data lives under here.
    pub data_dir: PathBuf,
    /// The console's address.
    pub console: SocketAddr,
    /// The admin endpoint's address.
    pub admin: SocketAddr,
    /// Drain timeout after Ctrl-C.
    pub drain_timeout_ms: u64,
    /// Port 0 everywhere.
    pub ephemeral: bool,
}

fn port(ephemeral: bool, port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], if ephemeral { 0 } else { port }))
}

/// Runs the stage until Ctrl-C.
pub async fn up(stage: Stage, frame: Frame) -> anyhow::Result<()> {
    stage.validate()?;
    let boxes = plan(&stage);
    let mut supervisor = Supervisor::new(service::shutdown::on_signals());
    let admin = super::up::bind_system(frame.admin, "the admin endpoint", "admin").await?;
    let console_listener = super::up::bind_system(frame.console, "the console", "console").await?;
    let console_addr = console_listener.local_addr()?.to_string();
    // Every listener first: a port in use fails the whole stage at once.
    let mut listeners = Vec::new();
    let (mut http_port, mut replica_port) = (stage.http_port_base, stage.kv_port_base);
    for planned in &boxes {
        let addr = match planned.kind {
            Kind::Db => port(frame.ephemeral, stage.kv_port_base),
            Kind::Replica => {
                replica_port += 1;
                port(frame.ephemeral, replica_port)
            }
            Kind::Cache => port(frame.ephemeral, stage.kv_port_base.saturating_add(11)),
            _ => {
                let addr = port(frame.ephemeral, http_port);
                http_port += 1;
                addr
            }
        };
        let what = format!("box {}", planned.name);
        let listener = service::net::bind(addr, &what).await.map_err(|err| {
            anyhow::anyhow!(
                "{err:#}; move the stage with `[topology] http_port_base` / `kv_port_base`, \
                 or run `hyperscale up --ephemeral-ports`"
            )
        })?;
        listeners.push(listener);
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()?;
    let front = addrs[0];
    let front_door = format!("http://{front}");
    let session_secret = if stage.sessions {
        // One secret for the whole tier: every web server verifies every
        // other's cookies. New on each start (sessions then start over).
        let mut secret = vec![0u8; 32];
        let mut urandom = std::fs::File::open("/dev/urandom").context("/dev/urandom")?;
        std::io::Read::read_exact(&mut urandom, &mut secret).context("/dev/urandom")?;
        Some(Arc::new(secret))
    } else {
        None
    };
    let wiring = Wiring {
        switches: Default::default(),
        session_secret,
        stage: &stage,
        boxes: &boxes,
        addrs: &addrs,
        data_dir: &frame.data_dir,
        front_door: &front_door,
    };
    let topology = Arc::new(wiring.topology());
    for ((planned, listener), drawn) in boxes.iter().zip(listeners).zip(&topology.boxes) {
        wiring.start(&mut supervisor, planned, listener, drawn)?;
    }
    let switches = wiring
        .switches
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let console_requests = super::up::console_request_counter(&mut supervisor);
    let console = console::Console {
        directory: supervisor.directory(),
        metrics: supervisor.metrics_view(),
        prometheus: None,
        alertmanager: None,
        requests: console_requests,
        topology: Some(topology.clone()),
        sampler: Default::default(),
        switches: Arc::new(console::topology::Switches(switches)),
    };
    supervisor.add(console::info(&console_addr), move |ctx| {
        console::serve(console_listener, console, ctx)
    });
    let admin_addr = admin.local_addr()?;
    print_stage(&topology, &console_addr, admin_addr)?;
    tracing::info!(front = %front_door, console = %console_addr, "the stage is up");
    supervisor
        .run(Some(admin), Duration::from_millis(frame.drain_timeout_ms))
        .await?;
    emit("Hyperscale stopped.\n")
}

/// Everything a box needs to know about the others.
struct Wiring<'a> {
    switches:
        std::sync::Mutex<std::collections::BTreeMap<String, tokio::sync::watch::Sender<bool>>>,
    session_secret: Option<Arc<Vec<u8>>>,
    stage: &'a Stage,
    boxes: &'a [Planned],
    addrs: &'a [SocketAddr],
    data_dir: &'a Path,
    front_door: &'a str,
}

/// A box's registry: `prefix`, every series labelled `box="{name}"`.
fn box_registry<'r>(supervisor: &'r mut Supervisor, prefix: &str, name: &str) -> &'r mut Registry {
    supervisor
        .registry()
        .sub_registry_with_prefix(prefix)
        .sub_registry_with_label(("box".into(), name.to_string().into()))
}

impl Wiring<'_> {
    /// A new stop/start switch for box `name`, its sender kept for the console.
    fn switch(&self, name: &str) -> tokio::sync::watch::Receiver<bool> {
        let (sender, receiver) = tokio::sync::watch::channel(true);
        self.switches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), sender);
        receiver
    }

    fn addr(&self, name: &str) -> SocketAddr {
        let i = self
            .boxes
            .iter()
            .position(|b| b.name == name)
            .expect("planned box");
        self.addrs[i]
    }

    fn names(&self, pred: impl Fn(&Kind) -> bool) -> Vec<String> {
        self.boxes
            .iter()
            .filter(|b| pred(&b.kind))
            .map(|b| b.name.clone())
            .collect()
    }

    fn web_names(&self, datacenter: Option<usize>) -> Vec<String> {
        self.names(|k| match k {
            Kind::Web { datacenter: dc, .. } => datacenter.is_none() || *dc == datacenter,
            _ => false,
        })
    }

    /// The picture the console draws.
    fn topology(&self) -> Topology {
        let stage = self.stage;
        let data_boxes = {
            let mut names = self.names(|k| matches!(k, Kind::Cache));
            names.extend(self.names(|k| matches!(k, Kind::Db | Kind::Replica)));
            names
        };
        let store = if stage.data_tier {
            format!("data in {}", data_boxes.join(", "))
        } else {
            "data on its own disk".into()
        };
        let boxes = self
            .boxes
            .iter()
            .zip(self.addrs)
            .map(|(planned, addr)| {
                let (tier, serves, counters, sends_to, datacenter) = match &planned.kind {
                    Kind::Cdn => (
                        "cdn",
                        format!("caches pages for {} ms at the edge", stage.cdn_ttl_ms),
                        vec!["hyperscale_gateway_requests_total"],
                        if stage.load_balancer {
                            vec!["lb".to_string()]
                        } else {
                            self.web_names(None)
                        },
                        None,
                    ),
                    Kind::Balancer => (
                        "load balancer",
                        if stage.datacenters.is_empty() {
                            "spreads requests over the web servers".to_string()
                        } else {
                            "routes each client to its nearest data center".to_string()
                        },
                        vec!["hyperscale_gateway_requests_total"],
                        self.web_names(None),
                        None,
                    ),
                    Kind::Web { datacenter, .. } => (
                        "web",
                        format!(
                            "short links and pages{}; {store}",
                            if stage.sessions { ", sessions" } else { "" }
                        ),
                        vec!["hyperscale_web_requests_total"],
                        data_boxes.clone(),
                        datacenter.map(|dc| stage.datacenters[dc].name.clone()),
                    ),
                    Kind::Cache => (
                        "cache",
                        format!("hot keys for {} ms, LRU", stage.cache_ttl_ms),
                        vec!["hyperscale_kv_commands_total"],
                        vec![],
                        None,
                    ),
                    Kind::Db => (
                        "data",
                        "the primary: every write".to_string(),
                        vec!["hyperscale_kv_commands_total"],
                        vec![],
                        None,
                    ),
                    Kind::Replica => (
                        "data",
                        format!("a replica of db: reads ({})", stage.read_from),
                        vec!["hyperscale_kv_commands_total"],
                        vec!["db".to_string()],
                        None,
                    ),
                };
                Drawn {
                    name: planned.name.clone(),
                    tier: tier.into(),
                    serves,
                    endpoint: addr.to_string(),
                    datacenter,
                    counters: counters.into_iter().map(String::from).collect(),
                    sends_to,
                }
            })
            .collect();
        Topology {
            stage: stage.stage.clone(),
            front_door: self.front_door.to_string(),
            boxes,
        }
    }

    fn start(
        &self,
        supervisor: &mut Supervisor,
        planned: &Planned,
        listener: tokio::net::TcpListener,
        drawn: &Drawn,
    ) -> anyhow::Result<()> {
        let info = service::SystemInfo {
            name: planned.name.clone(),
            title: format!("{} ({})", drawn.tier, drawn.serves),
            chapter: "ch. 1 scale from zero to millions".into(),
            protocol: match planned.kind {
                Kind::Cache | Kind::Db | Kind::Replica => "RESP".into(),
                _ => "HTTP".into(),
            },
            endpoint: drawn.endpoint.clone(),
            link: match planned.kind {
                Kind::Cache | Kind::Db | Kind::Replica => None,
                _ => Some(format!("http://{}/", drawn.endpoint)),
            },
        };
        match &planned.kind {
            Kind::Db | Kind::Replica | Kind::Cache => {
                let settings = self.kv_settings(planned);
                let metrics = kv::new_metrics();
                metrics.register(box_registry(supervisor, "kv", &planned.name));
                let switch = self.switch(&planned.name);
                supervisor.add(info, move |ctx| {
                    super::up_scale_switch::restartable(listener, ctx, switch, move |l, c| {
                        let (settings, metrics) = (settings.clone(), metrics.clone());
                        async move {
                            kv::serve(l, settings, metrics, c)
                                .await
                                .map_err(anyhow::Error::from)
                        }
                    })
                });
            }
            Kind::Cdn | Kind::Balancer => {
                let settings = self.gateway_settings(planned, listener.local_addr()?);
                let gateway = gateway::Gateway::new(
                    settings,
                    box_registry(supervisor, "gateway", &planned.name),
                )?;
                supervisor.add(info, move |ctx| gateway.serve(listener, ctx));
            }
            Kind::Web {
                datacenter,
                machine,
            } => {
                let requests = prometheus_client::metrics::counter::Counter::default();
                box_registry(supervisor, "web", &planned.name).register(
                    "requests",
                    "HTTP requests the web server answered",
                    requests.clone(),
                );
                let web = super::up_scale_web::Web {
                    name: planned.name.clone(),
                    config: self.shortener_settings(planned, *datacenter, *machine),
                    store: self.store_spec(),
                    sessions: self.session_secret.clone(),
                    requests,
                    switch: self.switch(&planned.name),
                };
                supervisor.add(info, move |ctx| web.serve(listener, ctx));
            }
        }
        Ok(())
    }

    fn kv_settings(&self, planned: &Planned) -> kv::Config {
        let mut settings = kv::Config {
            data_dir: self.data_dir.join(&planned.name),
            ..kv::Config::default()
        };
        match planned.kind {
            Kind::Replica => {
                let db = self.addr("db");
                settings.replicaof = format!("{} {}", db.ip(), db.port());
            }
            Kind::Cache => {
                // A cache, not a store: bounded, evicting, nothing on disk.
                settings.maxmemory = self.stage.cache_memory_bytes;
                settings.maxmemory_policy = kv::config::EvictionPolicy::AllKeysLru;
                settings.save = String::new();
                settings.appendonly = "no".into();
            }
            _ => {}
        }
        settings
    }

    fn store_spec(&self) -> super::up_scale_web::StoreSpec {
        use super::up_scale_web::StoreSpec;
        if !self.stage.data_tier {
            return StoreSpec::Embedded;
        }
        StoreSpec::Remote {
            primary: self.addr("db").to_string(),
            replicas: self
                .names(|k| matches!(k, Kind::Replica))
                .iter()
                .map(|n| self.addr(n).to_string())
                .collect(),
            read_from: self.stage.read_from.parse().unwrap_or_default(),
            cache: self
                .stage
                .cache
                .then(|| (self.addr("cache").to_string(), self.stage.cache_ttl_ms)),
        }
    }

    fn shortener_settings(
        &self,
        planned: &Planned,
        datacenter: Option<usize>,
        machine: u64,
    ) -> shortener::Config {
        shortener::Config {
            data_dir: self.data_dir.join(&planned.name),
            public_url: Some(self.front_door.to_string()),
            trusted_proxies: vec!["127.0.0.1/32".into()],
            machine,
            datacenter: datacenter.unwrap_or(0) as u64,
            // Almost nothing cached in process: the tiers behind show.
            cache_entries: 1,
            ..shortener::Config::default()
        }
    }

    fn gateway_settings(&self, planned: &Planned, bind: SocketAddr) -> gateway::Config {
        use gateway::config::{HealthCheck, Pool, Route};
        let pool = |names: &[String]| Pool {
            upstreams: names.iter().map(|n| self.addr(n).to_string()).collect(),
            health: HealthCheck {
                path: "/".into(),
                interval_ms: 500,
                unhealthy_threshold: 2,
                ..HealthCheck::default()
            },
            ..Pool::default()
        };
        let mut settings = gateway::Config {
            bind,
            metrics_path: String::new(),
            access_log: false,
            ..gateway::Config::default()
        };
        let mut route = Route {
            prefix: "/".into(),
            ..Route::default()
        };
        if planned.kind == Kind::Cdn {
            let origin = if self.stage.load_balancer {
                vec!["lb".to_string()]
            } else {
                self.web_names(None)
            };
            settings.pools.insert("origin".into(), pool(&origin));
            settings.cache.memory_bytes_max = 64 << 20;
            route.pool = "origin".into();
            route.cache = Some(gateway::cache::config::RouteCache {
                default_ttl_ms: Some(self.stage.cdn_ttl_ms),
                ..Default::default()
            });
        } else if self.stage.datacenters.is_empty() {
            settings
                .pools
                .insert("web".into(), pool(&self.web_names(None)));
            route.pool = "web".into();
        } else {
            settings.datacenters = self.stage.datacenters.clone();
            settings.datacenter_failover.down_after_ms = 1_000;
            settings.datacenter_failover.up_after_ms = 5_000;
            for (i, dc) in self.stage.datacenters.iter().enumerate() {
                let name = format!("web-{}", dc.name);
                settings
                    .pools
                    .insert(name.clone(), pool(&self.web_names(Some(i))));
                route.datacenter_pools.insert(dc.name.clone(), name);
            }
        }
        settings.routes = vec![route];
        settings
    }
}

fn print_stage(topology: &Topology, console: &str, admin: SocketAddr) -> anyhow::Result<()> {
    let mut rows: Vec<[String; 4]> = vec![[
        "BOX".into(),
        "TIER".into(),
        "ENDPOINT".into(),
        "SERVES".into(),
    ]];
    for b in &topology.boxes {
        let tier = match &b.datacenter {
            Some(dc) => format!("{} ({dc})", b.tier),
            None => b.tier.clone(),
        };
        rows.push([b.name.clone(), tier, b.endpoint.clone(), b.serves.clone()]);
    }
    emit(&format!(
        "{}: {} boxes.\n\n{}\nfront door: {}\nconsole: http://{console}/topology\nadmin: http://{admin}/metrics\n\
         Ctrl-C stops everything.\n",
        topology.stage,
        topology.boxes.len(),
        crate::table::render(&rows),
        topology.front_door,
    ))
}
