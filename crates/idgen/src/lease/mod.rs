//! Machine-id leases: two live generators never share a machine id.
//!
//! The notes warn that datacenter and machine IDs can collide; two generators
//! with the same pair issue the same IDs. Configuring ids by hand works until
//! someone copies a config file. A lease removes the human from the loop:
//! each generator claims a free machine id in a key-value store with
//! `SET key token NX PX ttl` (only one `SET NX` on a key can win) and keeps it
//! by renewing every `ttl/3`. If it cannot renew (store down, process paused),
//! the key expires and another generator may take the id — so before the key
//! can expire the old generator must already have stopped. It does: the lease
//! is valid locally only until `sent + ttl - ttl/4` after the last successful
//! renewal (measured on the monotonic clock, from *before* the request was
//! sent), and [`Lease::check`] fails after that, which stops the generator
//! with a clear error. A renewal that finds the key holding someone else's
//! token marks the lease lost for good.
//!
//! The guarantee covers expiry, not tampering: a key deleted by hand is
//! noticed only at the next renewal (within `renew_every_ms`), and a generator
//! that grabbed it meanwhile could overlap for that long. Never delete live
//! lease keys; stop the generator instead (its drop releases the key).
//!
//! Why renew at `ttl/3`: two renewal attempts fit before the local deadline,
//! so one slow or failed request does not stop the generator.
//!
//! The store is a small trait ([`LeaseStore`]) with an in-memory version for
//! tests ([`MemoryLeaseStore`]) and a RESP one ([`RespLeaseStore`]) for Redis
//! or our own `kv` server.

mod memory;
mod resp;

pub use memory::MemoryLeaseStore;
pub use resp::RespLeaseStore;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::layout::Layout;

/// A key-value store that can hold leases. Every method is atomic on the
/// store's side; `renew` and `release` act only if the key still holds
/// `token`, so a generator can never extend or delete another's lease.
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// `SET key token NX PX ttl_ms`: true if the key was free and is now ours.
    fn acquire(&self, key: &str, token: &str, ttl_ms: u64) -> Result<bool, StoreError>;
    /// Resets the TTL if the key still holds `token`; false if it does not.
    fn renew(&self, key: &str, token: &str, ttl_ms: u64) -> Result<bool, StoreError>;
    /// Deletes the key if it still holds `token`.
    fn release(&self, key: &str, token: &str) -> Result<(), StoreError>;
}

/// The store could not answer (network, protocol).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lease store: {0}")]
pub struct StoreError(pub String);

/// Why a lease could not be had or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Every machine id of the datacenter is leased by a live generator.
    #[error(
        "all {count} machine ids of datacenter {datacenter} are leased by live generators; \
         stop one, wait for a dead one's lease to expire, or give the layout more machine bits"
    )]
    AllTaken {
        /// The datacenter asked for.
        datacenter: u64,
        /// How many machine ids it has.
        count: u64,
    },
    /// The lease settings cannot work.
    #[error("invalid lease config: {0}")]
    InvalidConfig(String),
    /// The store failed while acquiring.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key now holds another generator's token.
    #[error(
        "machine-id lease {key} was lost ({reason}); this generator stopped issuing IDs \
         so it cannot collide with the new owner: restart it to lease a fresh machine id"
    )]
    Lost {
        /// The lease key.
        key: String,
        /// What happened.
        reason: String,
    },
    /// No successful renewal for too long: the key may expire any moment.
    #[error(
        "machine-id lease {key} was not renewed for {silent_ms} ms (the lease store is \
         unreachable?); this generator paused issuing IDs until a renewal succeeds"
    )]
    Expired {
        /// The lease key.
        key: String,
        /// Ms since the last successful renewal was sent.
        silent_ms: u64,
    },
}

/// How leases are taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// Keys are `{key_prefix}:{datacenter}:{machine}`.
    pub key_prefix: String,
    /// How long the store keeps a lease without renewal: also how long a
    /// crashed generator's machine id stays unusable.
    pub ttl_ms: u64,
    /// Renewal period; 0 means `ttl_ms / 3`.
    pub renew_every_ms: u64,
}

/// Shortest TTL accepted: below this, one scheduler hiccup loses the lease.
pub const TTL_MS_MIN: u64 = 30;

impl LeaseConfig {
    /// Refuses settings under which a healthy generator would lose its lease.
    pub fn validate(&self) -> Result<(), LeaseError> {
        if self.ttl_ms < TTL_MS_MIN {
            return Err(LeaseError::InvalidConfig(format!(
                "ttl_ms = {} is below the minimum {TTL_MS_MIN}",
                self.ttl_ms
            )));
        }
        let validity_ms = local_validity_ms(self.ttl_ms);
        if self.renew_every_ms >= validity_ms {
            return Err(LeaseError::InvalidConfig(format!(
                "renew_every_ms = {} must be below 3/4 of ttl_ms ({validity_ms}) or 0 for ttl/3, \
                 or the lease lapses between renewals",
                self.renew_every_ms
            )));
        }
        Ok(())
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            key_prefix: "hyperscale:idgen:machine".to_owned(),
            ttl_ms: 10_000,
            renew_every_ms: 0,
        }
    }
}

/// What the generator and the renewal thread share.
#[derive(Debug)]
struct Shared {
    store: Arc<dyn LeaseStore>,
    key: String,
    /// Random per lease: proves ownership to `renew`/`release`.
    token: String,
    ttl_ms: u64,
    /// Origin of `deadline_ms` (monotonic, immune to wall-clock steps).
    anchor: Instant,
    /// Ms after `anchor` past which the lease may have expired in the store.
    deadline_ms: AtomicU64,
    /// Set once, never cleared: the key belongs to someone else now.
    lost: AtomicBool,
    /// Why it was lost, for the error message.
    lost_reason: Mutex<String>,
}

/// A held machine id. Dropping it stops renewal and deletes the key.
#[derive(Debug)]
pub struct Lease {
    shared: Arc<Shared>,
    datacenter: u64,
    machine: u64,
    /// Dropping the sender wakes and stops the renewal thread.
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Lease {
    /// Claims a free machine id in `datacenter`, then starts renewing it in a
    /// background thread. Blocks for one store round trip per id tried.
    pub fn acquire(
        store: Arc<dyn LeaseStore>,
        config: &LeaseConfig,
        layout: Layout,
        datacenter: u64,
    ) -> Result<Lease, LeaseError> {
        Self::acquire_inner(store, config, layout, datacenter, true)
    }

    /// Like [`Lease::acquire`] but without the renewal thread: the caller
    /// renews with [`Lease::renew_now`] on its own schedule (deterministic
    /// tests, or an application with its own timer).
    pub fn acquire_manual(
        store: Arc<dyn LeaseStore>,
        config: &LeaseConfig,
        layout: Layout,
        datacenter: u64,
    ) -> Result<Lease, LeaseError> {
        Self::acquire_inner(store, config, layout, datacenter, false)
    }

    fn acquire_inner(
        store: Arc<dyn LeaseStore>,
        config: &LeaseConfig,
        layout: Layout,
        datacenter: u64,
        renew_in_background: bool,
    ) -> Result<Lease, LeaseError> {
        config.validate()?;
        let count = layout.machine_max() + 1;
        let token = random_token();
        // Start at a random id so generators booting together do not all
        // race for machine 0 and then 1 and then 2...
        let start = RandomState::new().hash_one(&token) % count;
        for i in 0..count {
            let machine = (start + i) % count;
            let key = format!("{}:{datacenter}:{machine}", config.key_prefix);
            let anchor = Instant::now();
            if store.acquire(&key, &token, config.ttl_ms)? {
                let shared = Arc::new(Shared {
                    store,
                    key,
                    token,
                    ttl_ms: config.ttl_ms,
                    anchor,
                    deadline_ms: AtomicU64::new(local_validity_ms(config.ttl_ms)),
                    lost: AtomicBool::new(false),
                    lost_reason: Mutex::new(String::new()),
                });
                let lease = Lease {
                    shared,
                    datacenter,
                    machine,
                    stop: None,
                    renewer: None,
                };
                return Ok(if renew_in_background {
                    lease.start_renewing(config)
                } else {
                    lease
                });
            }
        }
        Err(LeaseError::AllTaken { datacenter, count })
    }

    /// Starts the background renewal thread.
    fn start_renewing(mut self, config: &LeaseConfig) -> Lease {
        let every_ms = match config.renew_every_ms {
            0 => config.ttl_ms / 3,
            ms => ms,
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let every = Duration::from_millis(every_ms);
        self.renewer = std::thread::Builder::new()
            .name("idgen-lease".to_owned())
            .spawn(move || renew_loop(&shared, &stopped, every))
            .ok();
        if self.renewer.is_none() {
            // No thread, no renewal: the lease simply expires and check()
            // stops the generator with a clear error. Say why up front.
            tracing::error!(key = %self.shared.key, "could not start the lease renewal thread");
        }
        self.stop = Some(stop);
        self
    }

    /// The leased machine id.
    pub fn machine(&self) -> u64 {
        self.machine
    }

    /// The datacenter the lease is in.
    pub fn datacenter(&self) -> u64 {
        self.datacenter
    }

    /// The store key holding the lease.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// Ok while IDs may be issued under this lease.
    pub fn check(&self) -> Result<(), LeaseError> {
        let shared = &self.shared;
        if shared.lost.load(Ordering::Acquire) {
            return Err(LeaseError::Lost {
                key: shared.key.clone(),
                reason: shared
                    .lost_reason
                    .lock()
                    .map(|r| r.clone())
                    .unwrap_or_default(),
            });
        }
        let now_ms = shared.anchor.elapsed().as_millis() as u64;
        let deadline_ms = shared.deadline_ms.load(Ordering::Acquire);
        if now_ms > deadline_ms {
            let silent_ms = now_ms - deadline_ms + local_validity_ms(shared.ttl_ms);
            return Err(LeaseError::Expired {
                key: shared.key.clone(),
                silent_ms,
            });
        }
        Ok(())
    }

    /// Renews now (the background thread calls this every period; tests call
    /// it directly to avoid waiting).
    pub fn renew_now(&self) -> Result<(), LeaseError> {
        renew_once(&self.shared)?;
        self.check()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        if !self.shared.lost.load(Ordering::Acquire) {
            // Best effort: if the store is down the key expires on its own.
            if let Err(err) = self
                .shared
                .store
                .release(&self.shared.key, &self.shared.token)
            {
                tracing::warn!(key = %self.shared.key, %err, "could not release lease");
            }
        }
    }
}

/// How long after sending a successful request the lease is trusted locally:
/// a quarter of the TTL is kept as margin for the request's own latency and
/// the store's timer running slightly fast.
fn local_validity_ms(ttl_ms: u64) -> u64 {
    ttl_ms - ttl_ms / 4
}

fn renew_loop(shared: &Shared, stopped: &mpsc::Receiver<()>, every: Duration) {
    loop {
        match stopped.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The Lease was dropped.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        match renew_once(shared) {
            Ok(()) => {}
            Err(err @ LeaseError::Lost { .. }) => {
                tracing::error!(%err, "machine-id lease lost");
                return;
            }
            // Keep trying: check() stops the generator once the local
            // deadline passes; a later success resumes it.
            Err(err) => tracing::warn!(key = %shared.key, %err, "lease renewal failed"),
        }
    }
}

/// One renewal round trip; updates the deadline or marks the lease lost.
fn renew_once(shared: &Shared) -> Result<(), LeaseError> {
    if shared.lost.load(Ordering::Acquire) {
        return Ok(()); // check() reports it.
    }
    let sent_ms = shared.anchor.elapsed().as_millis() as u64;
    if shared
        .store
        .renew(&shared.key, &shared.token, shared.ttl_ms)?
    {
        let deadline_ms = sent_ms + local_validity_ms(shared.ttl_ms);
        shared.deadline_ms.fetch_max(deadline_ms, Ordering::AcqRel);
        return Ok(());
    }
    let reason = "the key expired or now holds another generator's token".to_owned();
    if let Ok(mut r) = shared.lost_reason.lock() {
        *r = reason.clone();
    }
    shared.lost.store(true, Ordering::Release);
    Err(LeaseError::Lost {
        key: shared.key.clone(),
        reason,
    })
}

/// 128 random bits plus the pid, hex: unique per lease across processes.
fn random_token() -> String {
    // RandomState is seeded from the OS's randomness once per process and
    // perturbed per instance: enough for a token that only has to differ
    // between generators, without a `rand` dependency.
    let a = RandomState::new().hash_one(std::process::id());
    let b = RandomState::new().hash_one(Instant::now());
    format!("{:x}-{a:016x}{b:016x}", std::process::id())
}

#[cfg(test)]
mod tests;
