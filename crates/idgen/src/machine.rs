//! Claiming a machine id before a server issues a single ID.
//!
//! Two generators with the same (datacenter, machine) pair issue the same IDs:
//! two `hyperscale id serve` on default settings once shared machine id 0 and
//! issued 186,000 duplicates out of 800,000 without a word. So a server never
//! issues IDs under an id it has not claimed, and says at startup which id it
//! uses and how it got it ([`Claimed`]'s `Display`). The three ways, chosen by
//! [`plan`] from the [`ServerConfig`]:
//!
//! 1. `lease_store` set: the id is leased from a RESP store ([`crate::lease`]),
//!    which coordinates generators on many hosts.
//! 2. `machine_claim = "fixed"` (`--machine-id N`): `generator.machine` as
//!    configured; the operator vouches that no other generator uses it.
//! 3. `machine_claim = "lock"`, the default: the lowest id whose lock file
//!    `{lock_dir}/dc{D}-machine{N}.lock` no other process holds, with an
//!    exclusive advisory lock (`flock`) that the OS drops when the process
//!    exits, even by a crash — so no stale claim outlives its owner. It only
//!    sees processes on this host that use the same `lock_dir` (by default
//!    one per host, under the temp dir): for a fleet, lease or assign ids.
//!
//! The embedded generator of `hyperscale id next` is a single short-lived
//! process and keeps using `generator.machine` directly.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::SystemClock;
use crate::http::{ServeError, ServerConfig};
use crate::layout::Layout;
use crate::lease::{Lease, LeaseError, RespLeaseStore};
use crate::snowflake::{Generator, GeneratorConfig};

/// How a server claims its machine id when no lease store is configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineClaim {
    /// The lowest machine id no other process on this host holds a lock
    /// file for.
    #[default]
    Lock,
    /// `generator.machine` as configured (`--machine-id N`).
    Fixed,
}

/// How many machine ids the lock claim tries before giving up: bounds the
/// files touched when the layout has many machine bits.
pub const LOCK_TRIES_MAX: u64 = 1024;

/// What [`plan`] decided; [`claim`] carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Lease an id from the RESP store at this URL.
    Lease(String),
    /// Use this machine id as configured.
    Fixed(u64),
    /// Lock the lowest free id's file in this directory.
    Lock(PathBuf),
}

/// The lock directory when `lock_dir` is unset: one per host, so every server
/// on it sees the others' claims.
pub fn default_lock_dir() -> PathBuf {
    std::env::temp_dir().join("hyperscale-idgen")
}

/// Decides how `config` claims its machine id, refusing settings that would
/// silently ignore a configured id.
pub fn plan(config: &ServerConfig) -> Result<Plan, ServeError> {
    let machine = config.generator.machine;
    match (&config.lease_store, config.machine_claim) {
        (Some(_), MachineClaim::Fixed) => Err(ServeError::InvalidConfig(
            "both a lease store and a fixed machine id (--machine-id) are set; \
             choose one: the lease store picks the machine id itself"
                .to_owned(),
        )),
        (Some(url), MachineClaim::Lock) => Ok(Plan::Lease(url.clone())),
        (None, MachineClaim::Fixed) => Ok(Plan::Fixed(machine)),
        (None, MachineClaim::Lock) if machine != 0 => Err(ServeError::InvalidConfig(format!(
            "generator.machine = {machine} is set, but the machine id is claimed by lock file \
             (machine_claim = \"lock\"); to use {machine}, pass --machine-id {machine} or set \
             machine_claim = \"fixed\""
        ))),
        (None, MachineClaim::Lock) => Ok(Plan::Lock(
            config.lock_dir.clone().unwrap_or_else(default_lock_dir),
        )),
    }
}

/// A generator with a claimed machine id. Keep it alive while serving: it
/// holds the lock file or lease that keeps the id ours.
#[derive(Debug)]
pub struct Claimed {
    /// The generator, shared with the HTTP handlers.
    pub generator: Arc<Generator<SystemClock>>,
    /// How the machine id was obtained.
    pub source: Source,
}

/// How a [`Claimed`] machine id was obtained.
#[derive(Debug)]
pub enum Source {
    /// Configured by hand (`--machine-id`, `generator.machine`).
    Fixed,
    /// Leased from a store (the lease itself lives in the generator).
    Leased {
        /// The store, without credentials.
        store: String,
        /// The lease key.
        key: String,
    },
    /// Held by an exclusive lock on this file until the process exits.
    Locked(LockFile),
}

/// An exclusively locked claim file; dropping it releases the lock.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    /// Holds the lock; never read.
    _file: File,
}

impl LockFile {
    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for Claimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.generator;
        write!(
            f,
            "machine id {} of datacenter {} ",
            g.machine(),
            g.datacenter()
        )?;
        match &self.source {
            Source::Fixed => write!(f, "(from --machine-id / generator.machine)"),
            Source::Leased { store, key } => write!(f, "(from lease store {store}, key {key})"),
            Source::Locked(lock) => write!(f, "(from local lock file {})", lock.path.display()),
        }
    }
}

/// Claims a machine id as [`plan`] says and builds the generator. Blocks on
/// the lease store or the file system: call it off the async runtime.
pub fn claim(config: &ServerConfig) -> Result<Claimed, ServeError> {
    config.validate()?;
    let generator = &config.generator;
    let (generator, source) = match plan(config)? {
        Plan::Fixed(_) => (Generator::new(generator)?, Source::Fixed),
        Plan::Lock(dir) => {
            let (machine, lock) = lock_machine(&dir, generator.datacenter, generator.layout)?;
            let config = GeneratorConfig {
                machine,
                ..generator.clone()
            };
            (Generator::new(&config)?, Source::Locked(lock))
        }
        Plan::Lease(url) => {
            // A command must finish well within the renewal period (see lease::resp).
            let timeout = std::time::Duration::from_millis((config.lease.ttl_ms / 6).max(1));
            let store = RespLeaseStore::open(&url, timeout).map_err(LeaseError::Store)?;
            let lease = Lease::acquire(
                Arc::new(store),
                &config.lease,
                generator.layout,
                generator.datacenter,
            )?;
            let source = Source::Leased {
                store: without_credentials(&url),
                key: lease.key().to_owned(),
            };
            (
                Generator::with_lease(generator, SystemClock, lease)?,
                source,
            )
        }
    };
    let claimed = Claimed {
        generator: Arc::new(generator),
        source,
    };
    tracing::info!("{claimed}");
    Ok(claimed)
}

/// [`claim`] on a blocking thread, for async callers.
pub async fn claim_async(config: &ServerConfig) -> Result<Claimed, ServeError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || claim(&config))
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?
}

/// Locks the lowest free `dc{datacenter}-machine{N}.lock` in `dir` (created
/// if missing) and writes our pid into it for whoever looks.
pub fn lock_machine(
    dir: &Path,
    datacenter: u64,
    layout: Layout,
) -> Result<(u64, LockFile), ServeError> {
    let io_error = |what: &str, path: &Path, err: std::io::Error| {
        ServeError::Claim(format!(
            "cannot {what} {}: {err}; set lock_dir to a writable directory, \
             pass --machine-id N, or use a lease store",
            path.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let count = (layout.machine_max() + 1).min(LOCK_TRIES_MAX);
    for machine in 0..count {
        let path = dir.join(format!("dc{datacenter}-machine{machine}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {
                // Diagnostics only: the lock, not the content, is the claim.
                let _ = file
                    .set_len(0)
                    .and_then(|()| writeln!(file, "{}", std::process::id()));
                return Ok((machine, LockFile { path, _file: file }));
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(err)) => return Err(io_error("lock", &path, err)),
        }
    }
    Err(ServeError::Claim(format!(
        "all {count} machine ids of datacenter {datacenter} are held by other processes on this \
         host (lock files in {}); stop one, pass --machine-id N, or use a lease store",
        dir.display()
    )))
}

/// `redis://user:secret@host:port/0` → `redis://host:port/0`: the store is
/// printed at startup, its password must not be.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, rest))) => format!("{scheme}://{rest}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
