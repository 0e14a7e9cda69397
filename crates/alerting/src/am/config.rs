//! The alert manager's configuration in Alertmanager's YAML format: the
//! routing tree, receivers (webhook, email), inhibition rules, and the
//! timers `group_wait`, `group_interval`, `repeat_interval`.
//!
//! Why a module: routes are the notes' "filter and merge" step and they
//! are user data; the same file must mean the same here and in
//! Alertmanager. Unknown fields are refused (with line and column) rather
//! than silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::matcher::{Matcher, parse_list};
use crate::rules::file::parse_duration_ms;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    route: RawRoute,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibit>,
    #[serde(default)]
    templates: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    resolve_timeout: Option<String>,
    smtp_smarthost: Option<String>,
    smtp_from: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(default, rename = "match")]
    match_eq: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    #[serde(default, rename = "continue")]
    continue_: bool,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    #[serde(default)]
    webhook_configs: Vec<RawWebhook>,
    #[serde(default)]
    email_configs: Vec<RawEmail>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    send_resolved: Option<bool>,
    #[serde(default)]
    max_alerts: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    to: String,
    from: Option<String>,
    smarthost: Option<String>,
    send_resolved: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibit {
    #[serde(default)]
    source_matchers: Vec<String>,
    #[serde(default)]
    target_matchers: Vec<String>,
    #[serde(default)]
    equal: Vec<String>,
}

/// A node of the routing tree.
#[derive(Clone, Debug)]
pub struct Route {
    /// Receiver of alerts that stop here.
    pub receiver: String,
    /// Labels that split alerts into groups (`...` = every label).
    pub group_by: Vec<String>,
    /// Group by all labels.
    pub group_by_all: bool,
    /// Wait before the first notification of a new group.
    pub group_wait_ms: i64,
    /// Wait between notifications of a changed group.
    pub group_interval_ms: i64,
    /// Wait before re-sending an unchanged group.
    pub repeat_interval_ms: i64,
    /// Alerts it takes.
    pub matchers: Vec<Matcher>,
    /// Keep matching siblings after this one.
    pub continue_: bool,
    /// Children.
    pub routes: Vec<Route>,
    /// Its position in the tree (`0`, `0.1`, ...), part of group keys.
    pub id: String,
}

/// Where notifications go.
#[derive(Clone, Debug)]
pub enum Integration {
    /// POST Alertmanager's webhook JSON to a URL.
    Webhook {
        /// The URL.
        url: String,
        /// Notify resolutions too.
        send_resolved: bool,
        /// Alerts per message (0: all).
        max_alerts: usize,
    },
    /// Send an email over SMTP.
    Email {
        /// Recipient.
        to: String,
        /// Sender.
        from: String,
        /// `host:port` of the relay.
        smarthost: String,
        /// Notify resolutions too.
        send_resolved: bool,
    },
}

impl Integration {
    /// Whether resolved alerts are notified.
    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::Webhook { send_resolved, .. }
            | Integration::Email { send_resolved, .. } => *send_resolved,
        }
    }
}

/// An inhibition rule: a firing source alert mutes matching targets that
/// share the `equal` labels.
#[derive(Clone, Debug)]
pub struct Inhibit {
    /// Source alerts.
    pub source: Vec<Matcher>,
    /// Muted alerts.
    pub target: Vec<Matcher>,
    /// Labels both must share.
    pub equal: Vec<String>,
}

/// A checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The text it came from (`/api/v2/status` shows it).
    pub original: String,
    /// Alerts without `endsAt` resolve after this.
    pub resolve_timeout_ms: i64,
    /// The routing tree.
    pub route: Route,
    /// Receivers by name.
    pub receivers: BTreeMap<String, Vec<Integration>>,
    /// Inhibition rules.
    pub inhibit: Vec<Inhibit>,
}

fn dur(s: &Option<String>, default_ms: i64, what: &str) -> Result<i64, String> {
    match s {
        None => Ok(default_ms),
        Some(s) => parse_duration_ms(s).map_err(|e| format!("{what}: {e}")),
    }
}

fn matchers(r: &RawRoute) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for m in &r.matchers {
        out.extend(parse_list(m)?);
    }
    for (k, v) in &r.match_eq {
        out.push(Matcher::new(k, v, false, true)?);
    }
    for (k, v) in &r.match_re {
        out.push(Matcher::new(k, v, true, true)?);
    }
    Ok(out)
}

fn route(r: &RawRoute, parent: Option<&Route>, id: String, depth: usize) -> Result<Route, String> {
    if depth > 32 {
        return Err("routes nest deeper than 32 levels".into());
    }
    let receiver = r
        .receiver
        .clone()
        .or_else(|| parent.map(|p| p.receiver.clone()))
        .ok_or("root route must specify a default receiver")?;
    let (group_by, group_by_all) = match &r.group_by {
        Some(g) if g.iter().any(|x| x == "...") => (Vec::new(), true),
        Some(g) => (g.clone(), false),
        None => parent
            .map(|p| (p.group_by.clone(), p.group_by_all))
            .unwrap_or_default(),
    };
    let mut node = Route {
        receiver,
        group_by,
        group_by_all,
        group_wait_ms: dur(
            &r.group_wait,
            parent.map_or(30_000, |p| p.group_wait_ms),
            "group_wait",
        )?,
        group_interval_ms: dur(
            &r.group_interval,
            parent.map_or(300_000, |p| p.group_interval_ms),
            "group_interval",
        )?,
        repeat_interval_ms: dur(
            &r.repeat_interval,
            parent.map_or(4 * 3_600_000, |p| p.repeat_interval_ms),
            "repeat_interval",
        )?,
        matchers: matchers(r)?,
        continue_: r.continue_,
        routes: Vec::new(),
        id,
    };
    if parent.is_none() && !node.matchers.is_empty() {
        return Err("root route must not have any matchers".into());
    }
    if node.group_interval_ms <= 0 || node.repeat_interval_ms <= 0 {
        return Err("group_interval and repeat_interval must be positive".into());
    }
    let children = r
        .routes
        .iter()
        .enumerate()
        .map(|(i, c)| route(c, Some(&node), format!("{}.{i}", node.id), depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    node.routes = children;
    Ok(node)
}

/// Parses and checks Alertmanager's YAML.
pub fn parse_config(src: &str) -> Result<Config, String> {
    let raw: RawConfig = serde_norway::from_str(src).map_err(|e| match e.location() {
        Some(l) => format!("line {}, column {}: {e}", l.line(), l.column()),
        None => e.to_string(),
    })?;
    if !raw.templates.is_empty() {
        tracing::warn!("`templates` are not supported; notifications use the default format");
    }
    let root = route(&raw.route, None, "0".into(), 0)?;
    let mut receivers = BTreeMap::new();
    for r in raw.receivers {
        let mut ints = Vec::new();
        for w in r.webhook_configs {
            let url = w
                .url
                .parse::<reqwest::Url>()
                .map_err(|e| format!("receiver {:?}: bad url {:?}: {e}", r.name, w.url))?;
            ints.push(Integration::Webhook {
                url: url.to_string(),
                send_resolved: w.send_resolved.unwrap_or(true),
                max_alerts: w.max_alerts,
            });
        }
        for e in r.email_configs {
            let smarthost = e.smarthost.or_else(|| raw.global.smtp_smarthost.clone()).ok_or_else(|| format!("receiver {:?}: no smarthost (email_configs.smarthost or global.smtp_smarthost)", r.name))?;
            let from = e
                .from
                .or_else(|| raw.global.smtp_from.clone())
                .ok_or_else(|| format!("receiver {:?}: no from address", r.name))?;
            ints.push(Integration::Email {
                to: e.to,
                from,
                smarthost,
                send_resolved: e.send_resolved.unwrap_or(false),
            });
        }
        if receivers.insert(r.name.clone(), ints).is_some() {
            return Err(format!(
                "notification config name {:?} is not unique",
                r.name
            ));
        }
    }
    fn check(r: &Route, receivers: &BTreeMap<String, Vec<Integration>>) -> Result<(), String> {
        if !receivers.contains_key(&r.receiver) {
            return Err(format!("undefined receiver {:?} used in route", r.receiver));
        }
        r.routes.iter().try_for_each(|c| check(c, receivers))
    }
    check(&root, &receivers)?;
    let mut inhibit = Vec::new();
    for i in raw.inhibit_rules {
        let mut source = Vec::new();
        for m in &i.source_matchers {
            source.extend(parse_list(m)?);
        }
        let mut target = Vec::new();
        for m in &i.target_matchers {
            target.extend(parse_list(m)?);
        }
        inhibit.push(Inhibit {
            source,
            target,
            equal: i.equal,
        });
    }
    Ok(Config {
        original: src.to_string(),
        resolve_timeout_ms: dur(&raw.global.resolve_timeout, 300_000, "resolve_timeout")?,
        route: root,
        receivers,
        inhibit,
    })
}

impl Route {
    /// The routes an alert goes to (depth first, first match unless `continue`).
    pub fn matching<'a>(&'a self, labels: &BTreeMap<String, String>, out: &mut Vec<&'a Route>) {
        let start = out.len();
        for c in &self.routes {
            if super::matcher::all(&c.matchers, labels) {
                c.matching(labels, out);
                if !c.continue_ {
                    break;
                }
            }
        }
        if out.len() == start {
            out.push(self);
        }
    }
}
