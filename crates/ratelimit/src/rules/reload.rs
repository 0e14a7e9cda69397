//! Hot reload: re-read the rules file when it changes, keep the last good set.
//!
//! Why poll the file's metadata instead of inotify: one `stat` per interval
//! (1 s by default) costs microseconds, needs no extra dependency, and works
//! where inotify does not — network filesystems, bind mounts, and Kubernetes
//! ConfigMaps, which swap a symlink so a watch on the old inode sees nothing.
//! The stamp compared is (mtime, length, inode), so an editor that writes a
//! new file and renames it over the old one is noticed too. The cost is up to
//! one interval of delay before a change takes effect.
//!
//! A file that fails validation never replaces the running rules: the error is
//! logged (with its line number), counted, and the watcher waits for the next
//! change rather than re-parsing the same bad file every tick.

use super::{Rules, RulesError};
use crate::metrics::Metrics;
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The current rules, shared by every request and swapped on reload.
#[derive(Clone, Debug)]
pub struct RulesHandle {
    /// Why `RwLock<Arc<_>>`: readers clone the `Arc` under a read lock held
    /// for nanoseconds and then evaluate without any lock.
    current: Arc<RwLock<Arc<Rules>>>,
}

impl RulesHandle {
    /// A handle serving `rules`.
    pub fn new(rules: Rules) -> RulesHandle {
        RulesHandle {
            current: Arc::new(RwLock::new(Arc::new(rules))),
        }
    }

    /// The rules in force now.
    pub fn get(&self) -> Arc<Rules> {
        self.current.read().clone()
    }

    /// Replaces the rules in force.
    pub fn replace(&self, rules: Rules) {
        *self.current.write() = Arc::new(rules);
    }
}

/// What one poll found.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The file has not changed.
    Unchanged,
    /// The file changed and the new rules are in force.
    Reloaded,
    /// The file changed but is invalid (or unreadable): the old rules stay.
    Rejected(RulesError),
}

/// Identity of one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// Watches one rules file and swaps the rules in a [`RulesHandle`].
#[derive(Debug)]
pub struct RulesWatcher {
    /// The file.
    path: PathBuf,
    /// Where the rules are published.
    handle: RulesHandle,
    /// The version last loaded or rejected (why: don't re-parse a bad file).
    seen: Option<Stamp>,
    /// Reload counters (optional so tools can reload without metrics).
    metrics: Option<Metrics>,
}

impl RulesWatcher {
    /// Loads `path` (failing if it is invalid: a server must not start with
    /// no rules) and returns the handle and its watcher.
    pub fn open(
        path: &Path,
        metrics: Option<Metrics>,
    ) -> Result<(RulesHandle, RulesWatcher), RulesError> {
        let seen = stamp(path).ok();
        let handle = RulesHandle::new(Rules::load(path)?);
        let watcher = RulesWatcher {
            path: path.to_owned(),
            handle: handle.clone(),
            seen,
            metrics,
        };
        Ok((handle, watcher))
    }

    /// Checks the file once and reloads it if it changed.
    pub fn poll(&mut self) -> ReloadOutcome {
        let now = match stamp(&self.path) {
            Ok(now) => now,
            Err(source) => {
                // A file briefly missing mid-rename is normal: keep the rules.
                if self.seen.take().is_some() {
                    tracing::warn!(path = %self.path.display(), error = %source, "rules file unreadable; keeping the last good rules");
                }
                return ReloadOutcome::Unchanged;
            }
        };
        if self.seen == Some(now) {
            return ReloadOutcome::Unchanged;
        }
        self.seen = Some(now);
        match Rules::load(&self.path) {
            Ok(rules) => {
                tracing::info!(path = %self.path.display(), limits = rules.all.len(), "rules reloaded");
                self.handle.replace(rules);
                self.count("ok");
                ReloadOutcome::Reloaded
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "rules reload rejected; keeping the last good rules");
                self.count("rejected");
                ReloadOutcome::Rejected(error)
            }
        }
    }

    fn count(&self, outcome: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.reload(outcome);
        }
    }

    /// Polls every `interval` on the current tokio runtime until the task is
    /// aborted (drop-safe: it holds no lock between polls).
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                // A stat, and on change a read of a file capped at 4 MiB: short
                // enough to run inline (block_in_place would panic on a
                // current-thread runtime).
                self.poll();
            }
        })
    }
}
