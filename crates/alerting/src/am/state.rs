//! The alert manager's decisions as pure functions of its state: merging
//! received alerts (de-duplication by fingerprint), routing them into
//! groups, muting (silences, inhibition), and deciding at each flush which
//! group notifications are due (the notification log: nothing is re-sent
//! unless the group changed or `repeat_interval` passed).
//!
//! Why a module: the notes' "filter, merge and de-duplicate" step is all
//! decision; keeping it free of I/O lets the tests drive it at chosen
//! times, and the server ([`super::server`]) only adds clocks and sockets.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::config::{Config, Integration, Route};
use super::matcher::{self, Matcher};
use crate::rules::LabelSet;

/// Alerts held at once (new ones are refused beyond it).
pub const ALERTS_MAX: usize = 100_000;
/// Silences held at once.
pub const SILENCES_MAX: usize = 10_000;

/// An alert as the alert manager holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct AmAlert {
    /// Labels (identity).
    pub labels: LabelSet,
    /// Annotations.
    pub annotations: LabelSet,
    /// When it started.
    pub starts_at_ms: i64,
    /// When it ends (resolves); in the future while firing.
    pub ends_at_ms: i64,
    /// Link to its source.
    pub generator_url: String,
    /// Last update.
    pub updated_at_ms: i64,
}

impl AmAlert {
    /// True once `ends_at` has passed.
    pub fn resolved(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }
}

/// Alertmanager's fingerprint: FNV-1a 64 over `name 0xff value 0xff` pairs in label order.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// A silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// Alerts it mutes.
    pub matchers: Vec<Matcher>,
    /// Start.
    pub starts_at_ms: i64,
    /// End (expiry).
    pub ends_at_ms: i64,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change.
    pub updated_at_ms: i64,
}

impl Silence {
    /// `pending`, `active` or `expired` at `now_ms`.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if now_ms >= self.ends_at_ms {
            "expired"
        } else if now_ms < self.starts_at_ms {
            "pending"
        } else {
            "active"
        }
    }
}

/// A group of alerts notified together.
#[derive(Clone, Debug)]
pub struct Group {
    /// Route id and group labels, unique.
    pub key: String,
    /// The route's receiver.
    pub receiver: String,
    /// Values of the route's `group_by` labels.
    pub labels: LabelSet,
    /// Its alerts' fingerprints.
    pub alerts: BTreeSet<u64>,
    /// When it flushes next.
    pub next_flush_ms: i64,
    /// `group_interval`.
    pub group_interval_ms: i64,
    /// `repeat_interval`.
    pub repeat_interval_ms: i64,
}

/// What was last notified for one group and integration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NfEntry {
    /// Firing fingerprints notified.
    pub firing: BTreeSet<u64>,
    /// Resolved fingerprints notified.
    pub resolved: BTreeSet<u64>,
    /// When.
    pub at_ms: i64,
}

/// A notification to deliver.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The group's key.
    pub group_key: String,
    /// Receiver name.
    pub receiver: String,
    /// Index of the integration in the receiver.
    pub integration_idx: usize,
    /// The integration.
    pub integration: Integration,
    /// Group labels.
    pub group_labels: LabelSet,
    /// The alerts (firing and, if the integration wants them, resolved).
    pub alerts: Vec<AmAlert>,
    /// When it was decided.
    pub at_ms: i64,
}

/// Everything the alert manager knows.
pub struct State {
    /// The configuration.
    pub config: Config,
    /// Alerts by fingerprint.
    pub alerts: BTreeMap<u64, AmAlert>,
    /// Silences by id.
    pub silences: BTreeMap<String, Silence>,
    /// Groups by key.
    pub groups: BTreeMap<String, Group>,
    /// Notification log by (group key, receiver, integration index).
    pub nflog: BTreeMap<(String, String, usize), NfEntry>,
}

/// Whether a group's notification is due (Alertmanager's `needsUpdate`, except
/// that a quiet resolution (integration without `send_resolved`) does not
/// reset the log, so a flapping alert is not re-sent inside `repeat_interval`).
pub fn needs_update(
    entry: Option<&NfEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) || firing.iter().any(|f| e.resolved.contains(f)) {
        return true;
    }
    if send_resolved
        && resolved
            .iter()
            .any(|f| e.firing.contains(f) && !e.resolved.contains(f))
    {
        return true;
    }
    !firing.is_empty() && now_ms - e.at_ms >= repeat_ms
}

fn max_repeat(r: &Route) -> i64 {
    r.routes
        .iter()
        .map(max_repeat)
        .fold(r.repeat_interval_ms, i64::max)
}

fn find_route<'a>(r: &'a Route, id: &str) -> Option<&'a Route> {
    if r.id == id {
        return Some(r);
    }
    r.routes.iter().find_map(|c| find_route(c, id))
}

impl State {
    /// An empty state under `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            alerts: BTreeMap::new(),
            silences: BTreeMap::new(),
            groups: BTreeMap::new(),
            nflog: BTreeMap::new(),
        }
    }

    /// Merges a received alert; returns its fingerprint and whether it is new
    /// or changed between firing and resolved (for history).
    pub fn receive(
        &mut self,
        mut a: AmAlert,
        now_ms: i64,
    ) -> Result<(u64, Option<&'static str>), String> {
        let fp = fingerprint(&a.labels);
        let change = match self.alerts.get(&fp) {
            None => {
                if self.alerts.len() >= ALERTS_MAX {
                    return Err(format!("too many alerts (limit {ALERTS_MAX})"));
                }
                Some(if a.resolved(now_ms) {
                    "resolved"
                } else {
                    "firing"
                })
            }
            Some(old) => {
                // Same alert again: keep the earliest start while it is still firing.
                if !old.resolved(now_ms) && old.starts_at_ms < a.starts_at_ms {
                    a.starts_at_ms = old.starts_at_ms;
                }
                match (old.resolved(now_ms), a.resolved(now_ms)) {
                    (false, true) => Some("resolved"),
                    (true, false) => Some("firing"),
                    _ => None,
                }
            }
        };
        let mut routes = Vec::new();
        self.config.route.matching(&a.labels, &mut routes);
        for r in routes {
            let labels: LabelSet = if r.group_by_all {
                a.labels.clone()
            } else {
                r.group_by
                    .iter()
                    .filter_map(|k| a.labels.get(k).map(|v| (k.clone(), v.clone())))
                    .collect()
            };
            let key = format!(
                "{}:{}",
                r.id,
                serde_json::to_string(&labels).unwrap_or_default()
            );
            let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
                key,
                receiver: r.receiver.clone(),
                labels,
                alerts: BTreeSet::new(),
                next_flush_ms: now_ms + r.group_wait_ms,
                group_interval_ms: r.group_interval_ms,
                repeat_interval_ms: r.repeat_interval_ms,
            });
            g.alerts.insert(fp);
        }
        a.updated_at_ms = now_ms;
        self.alerts.insert(fp, a);
        Ok((fp, change))
    }

    /// Ids of the active silences muting `labels`.
    pub fn silenced_by(&self, labels: &LabelSet, now_ms: i64) -> Vec<String> {
        self.silences
            .values()
            .filter(|s| s.state(now_ms) == "active" && matcher::all(&s.matchers, labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Fingerprints of the firing alerts inhibiting `labels`.
    pub fn inhibited_by(&self, labels: &LabelSet, now_ms: i64) -> Vec<u64> {
        let mut out = Vec::new();
        for rule in &self.config.inhibit {
            if !matcher::all(&rule.target, labels) {
                continue;
            }
            for (fp, src) in &self.alerts {
                if src.resolved(now_ms)
                    || !matcher::all(&rule.source, &src.labels)
                    || &src.labels == labels
                {
                    continue;
                }
                // An alert matching both sides never inhibits itself or its peers.
                if matcher::all(&rule.target, &src.labels) && matcher::all(&rule.source, labels) {
                    continue;
                }
                if rule
                    .equal
                    .iter()
                    .all(|k| src.labels.get(k) == labels.get(k))
                {
                    out.push(*fp);
                }
            }
        }
        out
    }

    /// Notifications due at `now_ms`; records them in the notification log.
    pub fn flush(&mut self, now_ms: i64) -> Vec<Notification> {
        let due: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.next_flush_ms <= now_ms)
            .map(|g| g.key.clone())
            .collect();
        let mut out = Vec::new();
        for key in due {
            let Some(g) = self.groups.get(&key).cloned() else {
                continue;
            };
            let mut firing = BTreeSet::new();
            let mut resolved = BTreeSet::new();
            for fp in &g.alerts {
                let Some(a) = self.alerts.get(fp) else {
                    continue;
                };
                if !self.silenced_by(&a.labels, now_ms).is_empty()
                    || !self.inhibited_by(&a.labels, now_ms).is_empty()
                {
                    continue;
                }
                if a.resolved(now_ms) {
                    resolved.insert(*fp);
                } else {
                    firing.insert(*fp);
                }
            }
            let integrations = self
                .config
                .receivers
                .get(&g.receiver)
                .cloned()
                .unwrap_or_default();
            for (idx, integ) in integrations.into_iter().enumerate() {
                let nk = (key.clone(), g.receiver.clone(), idx);
                let send_resolved = integ.send_resolved();
                if !needs_update(
                    self.nflog.get(&nk),
                    &firing,
                    &resolved,
                    send_resolved,
                    g.repeat_interval_ms,
                    now_ms,
                ) {
                    continue;
                }
                let mut fps: Vec<u64> = firing.iter().copied().collect();
                if send_resolved {
                    fps.extend(resolved.iter().copied());
                }
                let alerts = fps
                    .iter()
                    .filter_map(|f| self.alerts.get(f).cloned())
                    .collect();
                self.nflog.insert(
                    nk,
                    NfEntry {
                        firing: firing.clone(),
                        resolved: if send_resolved {
                            resolved.clone()
                        } else {
                            BTreeSet::new()
                        },
                        at_ms: now_ms,
                    },
                );
                out.push(Notification {
                    group_key: key.clone(),
                    receiver: g.receiver.clone(),
                    integration_idx: idx,
                    integration: integ,
                    group_labels: g.labels.clone(),
                    alerts,
                    at_ms: now_ms,
                });
            }
            let group = self.groups.get_mut(&key).expect("the group was just read");
            group.next_flush_ms = now_ms + group.group_interval_ms;
            // Resolved alerts leave the group once its flush has seen them.
            group
                .alerts
                .retain(|fp| self.alerts.get(fp).is_some_and(|a| !a.resolved(now_ms)));
            if group.alerts.is_empty() {
                // The log outlives the group for `repeat_interval`: an alert
                // that flaps back is still known as notified.
                self.groups.remove(&key);
            }
        }
        out
    }

    /// A delivery failed for good: forget it so the next flush sends it again.
    pub fn undo(&mut self, n: &Notification) {
        self.nflog
            .remove(&(n.group_key.clone(), n.receiver.clone(), n.integration_idx));
    }

    /// Drops alerts resolved for longer than `keep_ms` and in no group.
    pub fn gc(&mut self, now_ms: i64, keep_ms: i64) {
        let grouped: BTreeSet<u64> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.iter().copied())
            .collect();
        self.alerts
            .retain(|fp, a| grouped.contains(fp) || now_ms - a.ends_at_ms < keep_ms);
        self.silences
            .retain(|_, s| now_ms - s.ends_at_ms < 5 * 24 * 3_600_000);
        let repeat_max = max_repeat(&self.config.route);
        let groups = &self.groups;
        self.nflog
            .retain(|(k, _, _), e| groups.contains_key(k) || now_ms - e.at_ms < repeat_max);
    }

    /// The route of a group.
    pub fn route_of(&self, group_key: &str) -> Option<&Route> {
        let id = group_key.split(':').next()?;
        find_route(&self.config.route, id)
    }
}
