//! The running topology of a `hyperscale up --config examples/scale/...`
//! stage: which boxes run in which tier, what each serves, its live request
//! rate, and which upstreams each load balancer has in rotation, with the
//! failovers seen so far.
//!
//! Chapter 1 is told as a picture that grows (one server, then a data tier,
//! a load balancer, replicas, a cache, a CDN, a second data center); the
//! console draws that picture from what runs, so a reader who kills a box
//! sees the tier react. Rates and rotation come from the process's own
//! metrics: every box registers its metrics labelled `box="{name}"`, and a
//! sampler reads them once a second (the decisions below are pure functions
//! of two samples; only [`run_sampler`] does I/O).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use std::sync::Mutex;

/// How often the sampler reads the metrics.
pub const SAMPLE_INTERVAL_MS: u64 = 1_000;
/// Samples kept; rates span the oldest to the newest (about 5 s).
const SAMPLES_KEPT: usize = 6;
/// Failover events kept for the page.
const EVENTS_KEPT: usize = 50;

/// One box of the picture: a process of the chapter (a web server, the
/// database, a replica, the load balancer...), run as one system of `up`.
#[derive(Debug, Clone, Serialize)]
pub struct Box {
    /// The system's name in the directory (`web-1`), also its `box` label.
    pub name: String,
    /// `cdn`, `load balancer`, `web`, `cache`, `data`.
    pub tier: String,
    /// What it serves, in a phrase (`links and pages; data in db`).
    pub serves: String,
    /// Where it listens.
    pub endpoint: String,
    /// The data center it belongs to, if the stage has several.
    pub datacenter: Option<String>,
    /// Metric names whose samples labelled with this box are its requests.
    pub counters: Vec<String>,
    /// Boxes it sends requests to (`host:port` upstream → box name is
    /// resolved through [`Box::endpoint`]).
    pub sends_to: Vec<String>,
}

/// The stage being run.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The stage's title (`3. Load balancer + two web servers`).
    pub stage: String,
    /// Where clients connect (`http://127.0.0.1:8000`).
    pub front_door: String,
    /// Every box, front to back.
    pub boxes: Vec<Box>,
}

/// The tiers in drawing order, front to back.
pub const TIERS: [&str; 5] = ["cdn", "load balancer", "web", "cache", "data"];

/// An upstream of a load balancer as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The load balancer (box name).
    pub balancer: String,
    /// The pool.
    pub pool: String,
    /// The upstream's `host:port`.
    pub upstream: String,
    /// The box listening there, if it is one of ours.
    pub target: Option<String>,
    /// In rotation now.
    pub up: bool,
}

/// A change seen between two samples.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// What happened, in a sentence.
    pub text: String,
}

/// What the page shows: rates per box, rotations, data centers, events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Live {
    /// Requests per second per box, over the last few seconds.
    pub rates: BTreeMap<String, f64>,
    /// Every load balancer's upstreams.
    pub rotations: Vec<Rotation>,
    /// Every data center's state (`true`: takes traffic).
    pub datacenters: BTreeMap<String, bool>,
    /// Failovers and recoveries, newest last.
    pub events: Vec<Event>,
}

/// The boxes the console may stop and start (web servers and kv boxes):
/// each a `watch` channel, `true` while the box should run. The box owns
/// the receiver and really closes its port when told to stop, so the tiers
/// around it see what they would see of a crashed server.
#[derive(Default)]
pub struct Switches(pub BTreeMap<String, tokio::sync::watch::Sender<bool>>);

impl Switches {
    /// Asks box `name` to run or stop; `false` if there is no such switch.
    pub fn set(&self, name: &str, running: bool) -> bool {
        match self.0.get(name) {
            Some(switch) => {
                switch.send_replace(running);
                true
            }
            None => false,
        }
    }
}

/// One parsed sample line: name, labels, value.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    value: f64,
}

impl Sample<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Parses one exposition line (`name{a="b",c="d"} 3`); `None` for comments
/// and lines it does not understand. Label values with `",` are not split
/// correctly; ours never hold them (names and `host:port`).
fn parse_line(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (head, ""),
    };
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once("=\"")?;
            Some((key, value.trim_end_matches('"')))
        })
        .collect();
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// One reading of the metrics: each box's request count, and the rotation.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// Requests counted so far, per box.
    pub counts: BTreeMap<String, f64>,
    /// Every load balancer's upstreams.
    pub rotations: Vec<Rotation>,
    /// Data centers and whether they take traffic.
    pub datacenters: BTreeMap<String, bool>,
}

/// Reads `text` (the process's exposition) against `topology`.
pub fn read(topology: &Topology, text: &str, at_ms: u64) -> Reading {
    let mut reading = Reading {
        at_ms,
        ..Reading::default()
    };
    let by_endpoint: BTreeMap<&str, &str> = topology
        .boxes
        .iter()
        .map(|b| (b.endpoint.as_str(), b.name.as_str()))
        .collect();
    for sample in text.lines().filter_map(parse_line) {
        let Some(name) = sample.label("box") else {
            continue;
        };
        let Some(owner) = topology.boxes.iter().find(|b| b.name == name) else {
            continue;
        };
        if owner.counters.iter().any(|c| c == sample.name) {
            *reading.counts.entry(owner.name.clone()).or_default() += sample.value;
        }
        if sample.name == "hyperscale_gateway_upstream_up" {
            let upstream = sample.label("upstream").unwrap_or_default();
            reading.rotations.push(Rotation {
                balancer: owner.name.clone(),
                pool: sample.label("pool").unwrap_or_default().to_string(),
                upstream: upstream.to_string(),
                target: by_endpoint.get(upstream).map(|s| s.to_string()),
                up: sample.value >= 1.0,
            });
        }
        if sample.name == "hyperscale_gateway_datacenter_up"
            && let Some(dc) = sample.label("datacenter")
        {
            reading
                .datacenters
                .insert(dc.to_string(), sample.value >= 1.0);
        }
    }
    reading
}

/// Requests per second per box between `old` and `new` (a counter that went
/// back, a restarted box, counts from zero).
pub fn rates(old: &Reading, new: &Reading) -> BTreeMap<String, f64> {
    let seconds = new.at_ms.saturating_sub(old.at_ms) as f64 / 1000.0;
    new.counts
        .iter()
        .map(|(name, &count)| {
            let before = old.counts.get(name).copied().unwrap_or(0.0);
            let delta = if count >= before {
                count - before
            } else {
                count
            };
            let rate = if seconds > 0.0 { delta / seconds } else { 0.0 };
            (name.clone(), rate)
        })
        .collect()
}

/// The failovers and recoveries between two readings.
pub fn changes(old: &Reading, new: &Reading) -> Vec<Event> {
    let mut events = Vec::new();
    for now in &new.rotations {
        let before = old
            .rotations
            .iter()
            .find(|r| r.balancer == now.balancer && r.upstream == now.upstream);
        let Some(before) = before else { continue };
        if before.up != now.up {
            let target = now.target.as_deref().unwrap_or(&now.upstream);
            let text = if now.up {
                format!("{}: {target} is back in rotation", now.balancer)
            } else {
                format!(
                    "{}: {target} left rotation; pool {} fails over to the rest",
                    now.balancer, now.pool
                )
            };
            events.push(Event {
                at_ms: new.at_ms,
                text,
            });
        }
    }
    for (dc, &up) in &new.datacenters {
        if old.datacenters.get(dc).is_some_and(|&was| was != up) {
            let text = if up {
                format!("data center {dc} takes its clients back")
            } else {
                format!("data center {dc} is down; its clients go to the next one")
            };
            events.push(Event {
                at_ms: new.at_ms,
                text,
            });
        }
    }
    events
}

/// The sampler's state, shared with the page handlers.
#[derive(Default)]
pub struct Sampler {
    samples: Mutex<VecDeque<Reading>>,
    events: Mutex<VecDeque<Event>>,
}

impl Sampler {
    /// Records something the console did (a box stopped or started).
    pub fn note(&self, text: String) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push_back(Event {
            at_ms: clock::now_ms(),
            text,
        });
        while events.len() > EVENTS_KEPT {
            events.pop_front();
        }
    }

    /// Adds a reading, recording what changed since the previous one.
    pub fn push(&self, reading: Reading) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = samples.back() {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            events.extend(changes(last, &reading));
            while events.len() > EVENTS_KEPT {
                events.pop_front();
            }
        }
        samples.push_back(reading);
        while samples.len() > SAMPLES_KEPT {
            samples.pop_front();
        }
    }

    /// What the page shows now.
    pub fn live(&self) -> Live {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(first), Some(last)) = (samples.front(), samples.back()) else {
            return Live::default();
        };
        Live {
            rates: rates(first, last),
            rotations: last.rotations.clone(),
            datacenters: last.datacenters.clone(),
            events: self
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }
}

/// Reads the metrics every [`SAMPLE_INTERVAL_MS`] until `stop` fires.
pub async fn run_sampler(
    topology: Arc<Topology>,
    metrics: service::MetricsView,
    sampler: Arc<Sampler>,
    stop: service::Shutdown,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_INTERVAL_MS));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let text = metrics.render();
        sampler.push(read(&topology, &text, clock::now_ms()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let web = |name: &str, endpoint: &str| Box {
            name: name.into(),
            tier: "web".into(),
            serves: "pages".into(),
            endpoint: endpoint.into(),
            datacenter: None,
            counters: vec!["hyperscale_web_requests_total".into()],
            sends_to: vec![],
        };
        Topology {
            stage: "test".into(),
            front_door: "http://127.0.0.1:1".into(),
            boxes: vec![
                Box {
                    name: "lb".into(),
                    tier: "load balancer".into(),
                    serves: "everything".into(),
                    endpoint: "127.0.0.1:1".into(),
                    datacenter: None,
                    counters: vec!["hyperscale_gateway_requests_total".into()],
                    sends_to: vec!["web-1".into(), "web-2".into()],
                },
                web("web-1", "127.0.0.1:2"),
                web("web-2", "127.0.0.1:3"),
            ],
        }
    }

    fn text(web1: u32, lb: u32, web2_up: u8) -> String {
        format!(
            "# HELP x\nhyperscale_web_requests_total{{box=\"web-1\"}} {web1}\n\
             hyperscale_web_requests_total{{box=\"web-2\"}} 4\n\
             hyperscale_gateway_requests_total{{box=\"lb\",route=\"/\",status=\"200\"}} {lb}\n\
             hyperscale_gateway_requests_total{{box=\"lb\",route=\"/\",status=\"404\"}} 1\n\
             hyperscale_gateway_upstream_up{{box=\"lb\",pool=\"web\",upstream=\"127.0.0.1:2\"}} 1\n\
             hyperscale_gateway_upstream_up{{box=\"lb\",pool=\"web\",upstream=\"127.0.0.1:3\"}} {web2_up}\n\
             hyperscale_web_requests_total{{box=\"other\"}} 100\n"
        )
    }

    #[test]
    fn counts_sum_each_box_and_rotation_names_the_target() {
        let reading = read(&topology(), &text(10, 20, 1), 1_000);
        assert_eq!(reading.counts["web-1"], 10.0);
        assert_eq!(reading.counts["lb"], 21.0);
        assert!(!reading.counts.contains_key("other"));
        assert_eq!(reading.rotations.len(), 2);
        assert_eq!(reading.rotations[1].target.as_deref(), Some("web-2"));
        assert!(reading.rotations[1].up);
    }

    #[test]
    fn rates_are_per_second_and_a_failover_is_an_event() {
        let sampler = Sampler::default();
        sampler.push(read(&topology(), &text(10, 20, 1), 1_000));
        sampler.push(read(&topology(), &text(30, 20, 0), 3_000));
        let live = sampler.live();
        assert_eq!(live.rates["web-1"], 10.0);
        assert_eq!(live.rates["web-2"], 0.0);
        assert_eq!(live.events.len(), 1);
        assert!(live.events[0].text.contains("web-2 left rotation"));
        sampler.push(read(&topology(), &text(30, 20, 1), 4_000));
        let live = sampler.live();
        assert!(live.events[1].text.contains("web-2 is back"));
    }

    #[test]
    fn a_reset_counter_counts_from_zero() {
        let old = read(&topology(), &text(50, 0, 1), 0);
        let new = read(&topology(), &text(5, 0, 1), 1_000);
        assert_eq!(rates(&old, &new)["web-1"], 5.0);
    }
}
