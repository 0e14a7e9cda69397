//! The S3 API node: the chapter's API service, IAM and metadata service in front of
//! the data store, speaking S3's REST protocol so aws-cli, boto3 and the SDKs work
//! unmodified.
//!
//! Why a module per part, and what is hand-written: the protocol (request parsing,
//! SigV4 including `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` chunked bodies, presigned
//! URLs, S3's XML) is the [`s3s`] crate's job, as the blueprint asks for a well-kept
//! protocol crate; what the chapter designs is written here:
//! * [`meta`]: the bucket table and the object table, sharded by a hash of (bucket,
//!   key) over `shards` `lsm` stores; listing merges the shards ([`meta::list`]);
//!   versions and delete markers ([`meta::versions`]).
//! * [`blob`]: an object's bytes as chunks in the data node ([`crate::Node`]).
//! * [`iam`]: access keys (SigV4 secrets), durable.
//! * [`policy`] and `access`: bucket policies and the check every request passes
//!   (anonymous requests only where a policy allows them).
//! * `api`: the S3 operations over those (buckets, objects, listings, multipart).
//!
//! A PUT is acknowledged only after its chunks are fsynced by the data node's group
//! commit *and* its metadata rows are fsynced by its shard: after `kill -9` an object is
//! either absent or whole. Overwritten and deleted objects' chunks (of unversioned
//! buckets, or of versions deleted by id) are deleted from the data node after the
//! metadata changes, and become garbage that compaction
//! reclaims; a crash between the two leaks chunks (never loses one a row names).

mod access;
mod api;
pub mod blob;
mod host;
pub mod iam;
pub mod meta;
pub mod metrics;
pub mod policy;
pub mod repair;

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Node;
use crate::cluster::{Cluster, DataStore};

/// Every setting of `hyperscale s3 serve` (TOML file < env < flags).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub bind: std::net::SocketAddr,
    /// Where the data node, metadata and keys live.
    pub data_dir: std::path::PathBuf,
    /// Object-table shards (fixed when the store is created).
    pub shards: usize,
    /// Largest object a single PUT (or one part) may carry, in bytes.
    pub object_size_bytes_max: u64,
    /// The data node's file size cap, in bytes.
    pub file_size_bytes_max: u64,
    /// Pause between garbage-collection runs, in ms (0: off).
    pub gc_interval_ms: u64,
    /// Remote data nodes, `host:port[@zone],...` (empty: one embedded data node).
    pub datanodes: String,
    /// Durability of every chunk on remote data nodes: `replicate3` or `ec4+2`.
    pub durability: String,
    /// File holding the cluster secret data nodes require.
    pub cluster_secret_file: Option<std::path::PathBuf>,
    /// Timeout of one call to a data node, in ms.
    pub datanode_timeout_ms: u64,
    /// A data node down this long has its copies and shards rebuilt on others, in ms.
    pub repair_after_ms: u64,
    /// Base domain of virtual-host-style requests (`BUCKET.DOMAIN`); empty: path-style only.
    pub domain: String,
}

impl Default for Config {
    fn default() -> Self {
        let o = S3Options::default();
        Self {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 9000)),
            data_dir: "./data/s3".into(),
            shards: o.shards,
            object_size_bytes_max: o.object_size_bytes_max,
            file_size_bytes_max: o.node.file_size_bytes_max,
            gc_interval_ms: o.node.gc_interval_ms,
            datanodes: String::new(),
            durability: "replicate3".into(),
            cluster_secret_file: None,
            datanode_timeout_ms: 10_000,
            repair_after_ms: 30_000,
            domain: String::new(),
        }
    }
}

impl Config {
    /// The store options these settings give.
    pub fn options(&self) -> S3Options {
        let d = S3Options::default();
        S3Options {
            shards: self.shards,
            object_size_bytes_max: self.object_size_bytes_max,
            node: crate::Options {
                file_size_bytes_max: self.file_size_bytes_max,
                gc_interval_ms: self.gc_interval_ms,
                ..d.node
            },
            domain: self.domain.clone(),
            ..d
        }
    }
}

/// Settings of the API node.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// Object-table shards (fixed when the store is created).
    pub shards: usize,
    /// Bytes per data-store chunk of an object.
    pub chunk_bytes: usize,
    /// Largest object a single PUT (or one part) may carry (S3: 5 GiB).
    pub object_size_bytes_max: u64,
    /// The data node's options.
    pub node: crate::Options,
    /// Base domain of virtual-host-style requests (`BUCKET.DOMAIN`); empty: path-style only.
    pub domain: String,
}

impl Default for S3Options {
    fn default() -> Self {
        Self {
            shards: 8,
            chunk_bytes: 8 << 20,
            domain: String::new(),
            object_size_bytes_max: 5 << 30,
            node: crate::Options::default(),
        }
    }
}

/// S3's limits, exact.
pub mod limits {
    /// `max-keys`, `max-parts`, `max-uploads`: larger values are clamped to this.
    pub const PAGE_MAX: usize = 1000;
    /// Part numbers are 1..=10000.
    pub const PART_NUMBER_MAX: i32 = 10_000;
    /// Every part but the last is at least 5 MiB.
    pub const PART_BYTES_MIN: u64 = 5 << 20;
    /// Bytes of user metadata (keys and values) on one object.
    pub const METADATA_BYTES_MAX: usize = 2048;
    /// Keys in one DeleteObjects request.
    pub const DELETE_KEYS_MAX: usize = 1000;
}

/// Why the store did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data node.
    #[error("data node: {0}")]
    Node(#[from] crate::Error),
    /// The metadata or key store.
    #[error("metadata: {0}")]
    Meta(#[from] lsm::Error),
}

/// An S3 API node with its embedded data node, metadata and keys.
pub struct S3Store {
    pub(crate) node: Arc<DataStore>,
    pub(crate) meta: Arc<meta::Meta>,
    pub(crate) keys: Arc<iam::Keys>,
    pub(crate) opts: S3Options,
    /// Writers of objects hold it shared, a bucket deletion exclusively: no object is
    /// written into a bucket being deleted.
    pub(crate) bucket_lock: tokio::sync::RwLock<()>,
    /// Told each repair pass's report.
    pub(crate) repair_hook: Option<repair::RepairHook>,
    /// Bucket policies, parsed, by bucket.
    pub(crate) policies: access::PolicyCache,
    /// Requests answered, by method and status class.
    pub(crate) metrics: metrics::Metrics,
}

impl S3Store {
    /// Opens (or creates) the store in `dir`: `dir/data` (the data node), `dir/meta`,
    /// `dir/iam`.
    pub fn open(dir: &Path, opts: S3Options) -> Result<Self, OpenError> {
        let node = Node::open(dir.join("data"), opts.node.clone())?;
        Self::open_with(dir, opts, DataStore::Local(Arc::new(node)))
    }

    /// Opens (or creates) the store in `dir` (`dir/meta`, `dir/iam`) with its chunks on
    /// the data nodes of `cluster`.
    pub fn open_cluster(
        dir: &Path,
        opts: S3Options,
        cluster: Arc<Cluster>,
    ) -> Result<Self, OpenError> {
        Self::open_with(dir, opts, DataStore::Cluster(cluster))
    }

    fn open_with(dir: &Path, opts: S3Options, data: DataStore) -> Result<Self, OpenError> {
        let meta = meta::Meta::open(&dir.join("meta"), opts.shards)?;
        let keys = iam::Keys::open(&dir.join("iam"))?;
        Ok(Self {
            node: Arc::new(data),
            meta: Arc::new(meta),
            keys: Arc::new(keys),
            opts,
            bucket_lock: tokio::sync::RwLock::new(()),
            repair_hook: None,
            policies: access::PolicyCache::default(),
            metrics: metrics::Metrics::default(),
        })
    }

    /// The request counters (register them in a `/metrics` registry).
    pub fn metrics(&self) -> metrics::Metrics {
        self.metrics.clone()
    }

    /// The access keys.
    pub fn keys(&self) -> &iam::Keys {
        &self.keys
    }

    /// The embedded data node (stats, gc), if the chunks are not on a cluster.
    pub fn node(&self) -> Option<&Node> {
        match &*self.node {
            DataStore::Local(n) => Some(n),
            DataStore::Cluster(_) => None,
        }
    }

    /// The cluster of data nodes, if the chunks are on one.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        match &*self.node {
            DataStore::Local(_) => None,
            DataStore::Cluster(c) => Some(c),
        }
    }

    /// Calls `hook` with the report of each repair pass (run when a data node of the
    /// cluster comes back).
    pub fn on_repair(&mut self, hook: repair::RepairHook) {
        self.repair_hook = Some(hook);
    }

    /// The S3 service (SigV4 on every request but those a bucket policy opens to
    /// anyone), for a hyper server. With a cluster, also starts the repair thread.
    pub fn service(self) -> s3s::service::S3Service {
        let auth = iam::Auth(self.keys.clone());
        let store = Arc::new(self);
        repair::start(&store);
        let mut b = s3s::service::S3ServiceBuilder::new(api::Api {
            store: store.clone(),
        });
        b.set_auth(auth);
        if !store.opts.domain.is_empty() {
            b.set_host(host::Domain(store.opts.domain.to_ascii_lowercase()));
        }
        b.set_access(access::Access { store });
        b.build()
    }

    /// Serves S3 on `listener` until `shutdown` resolves. Connections in flight are
    /// dropped then: every acknowledged write is already durable.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let metrics = self.metrics.clone();
        let service = self.service();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (socket, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting an S3 connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return Ok(()),
            };
            // A response's head and body go out in separate writes; without NODELAY
            // Nagle holds the body until the client's delayed ACK (40 ms) on small GETs.
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
            }
            let service = service.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(socket);
                let counted = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let method = req.method().clone();
                    let call = hyper::service::Service::call(&service, req);
                    let metrics = metrics.clone();
                    async move {
                        let response = call.await;
                        metrics.record(&method, response.as_ref().ok().map(|r| r.status()));
                        response
                    }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, counted)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "S3 connection ended");
                }
            });
        }
    }
}
