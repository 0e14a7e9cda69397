//! The alert manager at run time: the state behind a lock, the journal,
//! a flush loop on a timer, and one bounded delivery queue per receiver
//! integration whose worker retries with backoff.
//!
//! Why a module: it joins the pure decisions of [`super::state`] to
//! clocks, sockets and disk; the HTTP surface is [`super::api`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::config::Config;
use super::journal::{Event, Journal};
use super::notify::{RetryPolicy, attempt};
use super::state::{Notification, State};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Create and expire silences.
    Silencer,
    /// Everything, including reloading routes.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "silencer" => Ok(Role::Silencer),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (silencer or admin)")),
        }
    }
}

/// Settings of the alert manager.
#[derive(Clone, Debug)]
pub struct AmOptions {
    /// Directory of the journal.
    pub data_dir: PathBuf,
    /// Tokens and their roles; empty: mutations are open (local use only).
    pub tokens: BTreeMap<String, Role>,
    /// Retries of each notification.
    pub retry: RetryPolicy,
    /// Notifications waiting per integration before new ones are refused.
    pub queue_capacity: usize,
    /// How often groups are checked for a due flush.
    pub tick_ms: u64,
    /// Our URL, in notifications.
    pub external_url: String,
}

impl Default for AmOptions {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data/alertmanager"),
            tokens: BTreeMap::new(),
            retry: RetryPolicy::default(),
            queue_capacity: 1024,
            tick_ms: 100,
            external_url: "http://127.0.0.1:9093".into(),
        }
    }
}

struct Queue {
    tx: mpsc::Sender<Notification>,
    backlog: Arc<AtomicUsize>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    pub(crate) journal: Journal,
    pub(crate) opts: AmOptions,
    queues: Mutex<BTreeMap<(String, usize), Queue>>,
    client: reqwest::Client,
    pub(crate) started_ms: i64,
}

/// The alert manager.
#[derive(Clone)]
pub struct AlertManager {
    pub(crate) inner: Arc<Inner>,
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    i64::try_from(clock::now_ms()).unwrap_or(i64::MAX)
}

impl AlertManager {
    /// Opens the journal (replaying silences) under `config`.
    pub fn open(config: Config, opts: AmOptions) -> std::io::Result<Self> {
        assert!(
            opts.queue_capacity > 0 && opts.tick_ms > 0,
            "queue capacity and tick must be positive"
        );
        let (journal, replayed) = Journal::open(&opts.data_dir)?;
        let mut state = State::new(config);
        for s in replayed.silences {
            state.silences.insert(s.id.clone(), s);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                journal,
                opts,
                queues: Mutex::new(BTreeMap::new()),
                client: reqwest::Client::new(),
                started_ms: now_ms(),
            }),
        })
    }

    /// Records an event in the history.
    pub fn event(&self, e: Event) {
        self.inner.journal.event(e);
    }

    /// History events matching `filter`, at most `limit`, oldest first.
    pub fn history(&self, filter: impl Fn(&Event) -> bool, limit: usize) -> Vec<Event> {
        self.inner.journal.history(filter, limit)
    }

    /// Notifications waiting per `receiver/integration`.
    pub fn backlog(&self) -> BTreeMap<String, usize> {
        self.inner
            .queues
            .lock()
            .iter()
            .map(|((r, i), q)| (format!("{r}/{i}"), q.backlog.load(Ordering::SeqCst)))
            .collect()
    }

    /// Flushes due groups and queues their notifications (one tick).
    pub fn tick(&self, now_ms: i64) {
        let due = {
            let mut st = self.inner.state.lock();
            let due = st.flush(now_ms);
            st.gc(now_ms, 15 * 60_000);
            due
        };
        for n in due {
            self.enqueue(n);
        }
    }

    fn enqueue(&self, n: Notification) {
        let key = (n.receiver.clone(), n.integration_idx);
        let mut queues = self.inner.queues.lock();
        let q = queues.entry(key).or_insert_with(|| self.spawn_worker());
        q.backlog.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = q.tx.try_send(n) {
            q.backlog.fetch_sub(1, Ordering::SeqCst);
            let n = match e {
                mpsc::error::TrySendError::Full(n) | mpsc::error::TrySendError::Closed(n) => n,
            };
            self.inner.state.lock().undo(&n);
            self.event(Event {
                t_ms: now_ms(),
                kind: "notify".into(),
                labels: n.group_labels.clone(),
                subject: n.group_key.clone(),
                what: "dropped: queue full (sent again at the next flush)".into(),
                receiver: n.receiver.clone(),
                attempt: 0,
            });
        }
    }

    fn spawn_worker(&self) -> Queue {
        let (tx, mut rx) = mpsc::channel::<Notification>(self.inner.opts.queue_capacity);
        let backlog = Arc::new(AtomicUsize::new(0));
        let me = self.clone();
        let b = backlog.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                me.deliver(&n).await;
                b.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Queue { tx, backlog }
    }

    async fn deliver(&self, n: &Notification) {
        let policy = &self.inner.opts.retry;
        for i in 1..=policy.max_attempts.max(1) {
            let res = attempt(
                &self.inner.client,
                n,
                &self.inner.opts.external_url,
                policy.timeout_ms,
            )
            .await;
            let what = match &res {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("failed: {e}"),
            };
            self.event(Event {
                t_ms: now_ms(),
                kind: "notify".into(),
                labels: n.group_labels.clone(),
                subject: n.group_key.clone(),
                what,
                receiver: n.receiver.clone(),
                attempt: i,
            });
            if res.is_ok() {
                return;
            }
            if i < policy.max_attempts {
                tokio::time::sleep(Duration::from_millis(policy.backoff_ms(i))).await;
            }
        }
        // Given up: the next flush of the group sends it again.
        self.inner.state.lock().undo(n);
    }

    /// Runs the flush loop until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.inner.opts.tick_ms));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => self.tick(now_ms()),
            }
        }
    }
}
