//! `hyperscale kv serve --cluster-bind ...` (a cluster node) and
//! `hyperscale kv cluster status|join|leave`: the Dynamo-style cluster of
//! issue 12 (`join`/`leave` send `KV.CLUSTER JOIN|LEAVE` to the node and
//! wait until its ring is stable again).
//!
//! `serve` opens the node's store, binds the client and internode
//! addresses and runs `kv::ClusterServer` under the supervisor, like the
//! single server. `cluster status` asks one node (`KV.STATUS` over RESP)
//! for its view: ring ownership, member states, hint backlog, anti-entropy
//! progress; `--json` prints the node's answer as it is.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;
use service::Supervisor;

use crate::table;

/// `hyperscale kv cluster ...`.
#[derive(clap::Subcommand)]
pub enum Verb {
    /// One node's view: members, ring ownership, hint backlog, anti-entropy.
    Status(StatusArgs),
    /// Adds a node started with `--join` to the ring: it streams the
    /// ranges it gains from the current replicas, then owns them.
    Join(ChangeArgs),
    /// Takes a node off the ring: its ranges stream to their new owners;
    /// once it shows `not in ring` it may be stopped.
    Leave(ChangeArgs),
}

/// Arguments of `cluster join` and `cluster leave`.
#[derive(clap::Args)]
pub struct ChangeArgs {
    /// The client (RESP) address of the node that joins or leaves.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Password, if the node has requirepass.
    #[arg(long)]
    password: Option<String>,
    /// How long to wait for the change to complete (0: do not wait).
    #[arg(long, default_value_t = 120_000)]
    wait_ms: u64,
}

/// Arguments of `cluster status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// A node's client (RESP) address.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Password, if the node has requirepass.
    #[arg(long)]
    password: Option<String>,
    /// Print the node's JSON answer.
    #[arg(long)]
    json: bool,
}

/// Runs the verb.
pub fn run(verb: Verb) -> anyhow::Result<()> {
    match verb {
        Verb::Status(args) => status(args),
        Verb::Join(args) => change(args, true),
        Verb::Leave(args) => change(args, false),
    }
}

/// Starts a join or a leave on the node at `args.addr`, then polls its
/// status until its ring is stable with it in (join) or out (leave).
fn change(args: ChangeArgs, join: bool) -> anyhow::Result<()> {
    let verb: &[u8] = if join { b"JOIN" } else { b"LEAVE" };
    let password = args.password.as_deref();
    // A simple-string OK is the reply; `request` reads bulk strings, so
    // the status that follows confirms it instead.
    let _ = request_simple(&args.addr, password, &[b"KV.CLUSTER", verb])?;
    let deadline = std::time::Instant::now() + Duration::from_millis(args.wait_ms);
    loop {
        let body = request(&args.addr, password, &[b"KV.STATUS"])?;
        let status: kv::node::Status =
            serde_json::from_slice(&body).context("the node's status does not parse")?;
        let me = status.members.iter().find(|m| m.id == status.node_id);
        let ring = me.map_or("not in ring", |m| m.ring.as_str());
        let c = &status.change;
        let done = c.phase == "stable" && (ring == "normal") == join;
        if done || args.wait_ms == 0 {
            let what = match (join, done) {
                (true, true) => "joined the ring",
                (false, true) => "left the ring; it owns nothing and may be stopped",
                _ => "change started",
            };
            return crate::output::emit(&format!(
                "node {}: {what} (ring version {}, phase {}, {} keys streamed here)\n",
                status.node_id, c.version, c.phase, c.stream_keys
            ));
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "node {}: the change did not complete in {} ms (phase {}, seen by {:?}, streamed {:?}); see `kv cluster status`",
            status.node_id,
            args.wait_ms,
            c.phase,
            c.seen,
            c.streamed
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends one command and expects a simple-string (`+OK`) reply.
fn request_simple(addr: &str, password: Option<&str>, args: &[&[u8]]) -> anyhow::Result<String> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    if let Some(password) = password {
        stream.write_all(&kv::protocol::encode_request(&[
            b"AUTH",
            password.as_bytes(),
        ]))?;
    }
    stream.write_all(&kv::protocol::encode_request(args))?;
    let mut reader = BufReader::new(stream);
    let mut skip = usize::from(password.is_some());
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'+') if skip > 0 => skip -= 1,
            Some(b'+') => return Ok(line[1..].to_string()),
            Some(b'-') => anyhow::bail!("{addr}: {}", &line[1..]),
            _ => anyhow::bail!("{addr}: unexpected reply {line:?}"),
        }
    }
}

/// Runs a cluster node (`kv serve` with `--cluster-bind`).
pub fn serve(
    config: kv::Config,
    threads: Option<usize>,
    admin_bind: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let addr = super::serve::parse_bind(&config.bind)?;
    service::net::prepare_data_dir(&config.data_dir)?;
    let server = kv::ClusterServer::open(config)?;
    let cluster_bind = server.cluster_bind().to_string();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = threads.unwrap_or(cpus);
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = service::net::bind(addr, "the kv cluster node").await?;
        let peers = kv::node::bind_cluster(&cluster_bind)
            .await
            .with_context(|| format!("cannot bind --cluster-bind {cluster_bind}"))?;
        let endpoint = listener.local_addr()?.to_string();
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        server.register_metrics(supervisor.registry().sub_registry_with_prefix("kv"));
        let admin = super::serve::bind_admin(admin_bind).await?;
        crate::output::emit(&format!(
            "kv cluster node on {endpoint} (peers on {cluster_bind})\n"
        ))?;
        supervisor.add(kv::info(&endpoint), move |ctx| async move {
            server
                .serve(listener, peers, ctx)
                .await
                .map_err(anyhow::Error::from)
        });
        supervisor.run(admin, Duration::from_secs(5)).await
    })
}

/// `hyperscale up --kv-nodes N`: a cluster of `N` nodes in this process,
/// the everyday three-nodes-on-one-machine setup without three terminals.
pub struct Local<'a> {
    /// How many nodes.
    pub nodes: u8,
    /// `up`'s data directory: node `i` keeps `kv-node{i}` and the shared
    /// secret is `kv-cluster.secret` (made on first start).
    pub data_dir: &'a std::path::Path,
    /// The kv settings every node starts from (`[kv]`, its `cluster` table
    /// for `N`, `W`, `R`).
    pub base: &'a kv::Config,
    /// Port 0 for every listener (`--ephemeral-ports`).
    pub ephemeral: bool,
}

impl Local<'_> {
    /// Binds every node's listeners (so every node knows the others'
    /// internode addresses), opens their stores and adds them.
    pub async fn add_to(&self, supervisor: &mut Supervisor) -> anyhow::Result<()> {
        let replicas = self.base.cluster.replicas;
        anyhow::ensure!(
            (usize::from(self.nodes) >= replicas) && self.nodes <= 16,
            "--kv-nodes {} must be between the replicas (N = {replicas}) and 16",
            self.nodes
        );
        let secret = self.data_dir.join("kv-cluster.secret");
        if !secret.exists() {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut bytes))
                .context("cannot read random bytes for the kv cluster secret")?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(&secret, hex + "\n")
                .with_context(|| format!("cannot write {}", secret.display()))?;
        }
        let port = |base: u16, i: u8| {
            if self.ephemeral {
                0
            } else {
                base + u16::from(i)
            }
        };
        let mut bound = Vec::new();
        for i in 1..=self.nodes {
            let client = SocketAddr::from(([127, 0, 0, 1], port(6380, i)));
            let listener = service::net::bind(client, "a kv cluster node").await?;
            let peer = format!("127.0.0.1:{}", port(17000, i));
            let peers = kv::node::bind_cluster(&peer)
                .await
                .with_context(|| format!("cannot bind kv node {i}'s internode address {peer}"))?;
            let peer = peers.local_addr()?.to_string();
            bound.push((i, listener, peers, peer));
        }
        let all: Vec<String> = bound.iter().map(|b| b.3.clone()).collect();
        for (i, listener, peers, peer) in bound {
            let mut config = self.base.clone();
            config.bind = listener.local_addr()?.to_string();
            config.data_dir = self.data_dir.join(format!("kv-node{i}"));
            config.cluster.node_id = Some(u32::from(i));
            config.cluster.seeds = all.iter().filter(|a| **a != peer).cloned().collect();
            config.cluster.cluster_bind = Some(peer);
            config.cluster.cluster_secret_file = Some(secret.clone());
            service::net::prepare_data_dir(&config.data_dir)?;
            // Opening loads the store: blocking, so off the workers.
            let server = tokio::task::spawn_blocking(move || kv::ClusterServer::open(config))
                .await?
                .with_context(|| format!("kv cluster node {i}"))?;
            let mut info = kv::info(&listener.local_addr()?.to_string());
            info.name = format!("kv-node{i}");
            info.title = format!(
                "Key-value cluster node {i} of {} (Dynamo style)",
                self.nodes
            );
            server.register_metrics(supervisor.registry().sub_registry_with_prefix(&info.name));
            supervisor.add(info, move |ctx| async move {
                server
                    .serve(listener, peers, ctx)
                    .await
                    .map_err(anyhow::Error::from)
            });
        }
        Ok(())
    }
}

/// Sends one command and reads a bulk-string (or error) reply.
fn request(addr: &str, password: Option<&str>, args: &[&[u8]]) -> anyhow::Result<Vec<u8>> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    if let Some(password) = password {
        stream.write_all(&kv::protocol::encode_request(&[
            b"AUTH",
            password.as_bytes(),
        ]))?;
    }
    stream.write_all(&kv::protocol::encode_request(args))?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'+') => continue, // AUTH's OK
            Some(b'-') => anyhow::bail!("{addr}: {}", &line[1..]),
            Some(b'$') => {
                let len: usize = line[1..].parse().context("a bad bulk length")?;
                anyhow::ensure!(len <= 64 << 20, "a reply of {len} bytes is too large");
                let mut body = vec![0u8; len + 2];
                reader.read_exact(&mut body)?;
                body.truncate(len);
                return Ok(body);
            }
            _ => anyhow::bail!("{addr}: unexpected reply {line:?}"),
        }
    }
}

fn status(args: StatusArgs) -> anyhow::Result<()> {
    let body = request(&args.addr, args.password.as_deref(), &[b"KV.STATUS"])?;
    let status: kv::node::Status =
        serde_json::from_slice(&body).context("the node's status does not parse")?;
    if args.json {
        return crate::output::emit_json(&status);
    }
    let mut out = format!(
        "node {}: {}; N={} W={} R={} ({} quorum); {} keys stored, {} hinted keys held, {} requests in flight, {} messages dropped\n",
        status.node_id,
        if status.formed {
            "formed".to_string()
        } else {
            format!("forming, waiting for {}", status.waiting_for.join(", "))
        },
        status.replicas,
        status.write_quorum,
        status.read_quorum,
        status.quorum_mode,
        status.keys,
        status.hints_keys,
        status.in_flight,
        status.messages_dropped,
    );
    let mut rows = vec![
        [
            "node",
            "address",
            "dc",
            "vnodes",
            "ownership",
            "state",
            "ring",
            "hints for it",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for m in &status.members {
        rows.push(vec![
            m.id.to_string(),
            m.addr.clone(),
            m.datacenter.clone().unwrap_or_else(|| "-".into()),
            m.vnodes.to_string(),
            format!("{:.1}%", m.ownership * 100.0),
            m.state.clone(),
            m.ring.clone(),
            format!("{} keys, {} B", m.hints_keys, m.hints_bytes),
        ]);
    }
    out.push_str(&table::render(&rows));
    let c = &status.change;
    out.push_str(&format!(
        "ring: version {}, {}; seen by {:?}, streamed by {:?}; this node streamed {} keys from {}/{} sources\n",
        c.version, c.phase, c.seen, c.streamed, c.stream_keys, c.stream_sources_done, c.stream_sources
    ));
    let ae = status.anti_entropy;
    out.push_str(&format!(
        "anti-entropy: {} exchanges started, {} in sync, {} found differences, {} keys repaired here\n",
        ae.rounds_started, ae.rounds_in_sync, ae.rounds_differ, ae.keys_repaired
    ));
    crate::output::emit(&out)
}
