//! The rule manager: loads rule files, evaluates each group on its
//! interval on a dedicated thread, and hands every evaluation's alerts to
//! listeners (the notifier that sends them to an alert manager).
//!
//! Why a module: scheduling is separate from evaluation ([`super::group`])
//! so tests drive evaluation at chosen times ([`RuleManager::eval_all_at`])
//! while servers run the same code on the wall clock. PromQL work reads
//! storage, so it runs on its own thread, never on async workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tsdb::Db;
use tsdb::promql::QueryLimits;

use super::alert::LabelSet;
use super::file::{RuleFile, RuleFileError, load_rule_file};
use super::group::{EvalContext, GroupState, RuleTransition};

/// Settings of the rule manager.
#[derive(Clone, Debug)]
pub struct RuleOptions {
    /// Interval of groups without `interval` (Prometheus's `evaluation_interval`).
    pub eval_interval_ms: i64,
    /// Bounds of each rule's query.
    pub limits: QueryLimits,
    /// `$externalLabels` of templates.
    pub external_labels: LabelSet,
    /// `$externalURL` of templates.
    pub external_url: String,
    /// Rules with a `for` at least this long get their `for` state back
    /// after a restart (`ALERTS_FOR_STATE`; Prometheus's
    /// `--rules.alert.for-grace-period`).
    pub for_grace_period_ms: i64,
    /// How long a restart may take for that (`--rules.alert.for-outage-tolerance`).
    pub outage_tolerance_ms: i64,
}

impl Default for RuleOptions {
    fn default() -> Self {
        Self {
            eval_interval_ms: 60_000,
            limits: QueryLimits::default(),
            external_labels: LabelSet::new(),
            external_url: "http://127.0.0.1:9090".into(),
            for_grace_period_ms: super::for_state::FOR_GRACE_PERIOD_MS,
            outage_tolerance_ms: super::for_state::OUTAGE_TOLERANCE_MS,
        }
    }
}

/// Called after each group evaluation with the group and its transitions.
pub type Listener = Arc<dyn Fn(&GroupState, &[RuleTransition]) + Send + Sync>;

struct Inner {
    db: Arc<Db>,
    opts: RuleOptions,
    groups: Vec<Mutex<GroupState>>,
    listeners: Mutex<Vec<Listener>>,
    stop: AtomicBool,
}

/// Loaded rule groups and their evaluation.
#[derive(Clone)]
pub struct RuleManager {
    inner: Arc<Inner>,
}

impl RuleManager {
    /// A manager for already parsed files.
    pub fn new(db: Arc<Db>, files: Vec<RuleFile>, opts: RuleOptions) -> Self {
        assert!(
            opts.eval_interval_ms > 0,
            "evaluation interval must be positive"
        );
        let groups = files
            .into_iter()
            .flat_map(|f| f.groups)
            .map(|g| Mutex::new(GroupState::new(g, opts.eval_interval_ms)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                db,
                opts,
                groups,
                listeners: Mutex::new(Vec::new()),
                stop: AtomicBool::new(false),
            }),
        }
    }

    /// Loads and checks `paths`; every error of every file is returned.
    pub fn load(
        db: Arc<Db>,
        paths: &[PathBuf],
        opts: RuleOptions,
    ) -> Result<Self, Vec<RuleFileError>> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match load_rule_file(p) {
                Ok(f) => files.push(f),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(Self::new(db, files, opts))
        } else {
            Err(errors)
        }
    }

    /// Adds a listener of evaluations.
    pub fn subscribe(&self, l: Listener) {
        self.inner.listeners.lock().push(l);
    }

    /// Evaluates every group once at `t_ms` (tests and benchmarks).
    pub fn eval_all_at(&self, t_ms: i64) -> Vec<RuleTransition> {
        (0..self.inner.groups.len())
            .flat_map(|i| self.eval_group(i, t_ms))
            .collect()
    }

    fn eval_group(&self, i: usize, t_ms: i64) -> Vec<RuleTransition> {
        let o = &self.inner.opts;
        let ctx = EvalContext {
            db: &self.inner.db,
            limits: &o.limits,
            external_labels: &o.external_labels,
            external_url: &o.external_url,
            for_restore_ms: (o.for_grace_period_ms, o.outage_tolerance_ms),
        };
        let mut g = self.inner.groups[i].lock();
        let ts = g.eval(&ctx, t_ms);
        let listeners = self.inner.listeners.lock().clone();
        for l in listeners {
            l(&g, &ts);
        }
        ts
    }

    /// A copy of every group's state.
    pub fn groups(&self) -> Vec<GroupState> {
        self.inner.groups.iter().map(|g| g.lock().clone()).collect()
    }

    /// Evaluates every group on its interval on a new thread until [`Self::stop`].
    pub fn start(&self) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("rule-eval".into())
            .spawn(move || me.run())
    }

    /// Ends the evaluation thread.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
    }

    fn run(&self) {
        let now = || i64::try_from(clock::now_ms()).unwrap_or(i64::MAX);
        let start = now();
        let mut due: Vec<i64> = vec![start; self.inner.groups.len()];
        while !self.inner.stop.load(Ordering::SeqCst) {
            let t = now();
            for (i, d) in due.iter_mut().enumerate() {
                if *d <= t {
                    self.eval_group(i, t);
                    let interval = self.inner.groups[i].lock().interval_ms;
                    // Missed ticks are skipped, never run in a burst.
                    *d += ((t - *d) / interval + 1) * interval;
                }
            }
            let next = due.iter().copied().min().unwrap_or(t + 1000);
            let wait_ms = (next - now()).clamp(1, 200);
            std::thread::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(200)));
        }
    }
}
