//! Click analytics, recorded off the redirect path.
//!
//! The chapter's reason to prefer 302 over 301 is analytics: with 302 every
//! click reaches us. Counting must not slow the redirect, so the handler only
//! `try_send`s a [`Click`] into a bounded channel and answers; a background
//! task aggregates clicks in memory and flushes them to the store as counter
//! increments once a second (one `INCRBY` per distinct counter, not per
//! click). If the channel is full the click is dropped and counted in
//! `shortener_analytics_dropped_total`: losing a click under overload is
//! better than delaying redirects.
//!
//! Bots and link-preview fetchers (Slack, WhatsApp, Twitter cards...) are
//! counted separately, not as clicks: a link pasted in a busy chat is fetched
//! by every preview bot, and counting those as people is the most common
//! complaint about existing shorteners' statistics. `HEAD` requests are
//! previews too (browsers never send them for a click).
//!
//! Counters, per code: `s:stat:{code}:day:{YYYY-MM-DD}`, `...:ref:{host}`
//! (referrer host only: bounded cardinality, no paths with private data),
//! `...:ua:{browser family}`, `...:bot:{bot name}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kvclient::KvClient;
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::mpsc;

/// Pending clicks the channel holds before dropping new ones.
pub const QUEUE_CLICKS_MAX: usize = 65_536;
/// Distinct counters aggregated before an early flush.
const PENDING_COUNTERS_MAX: usize = 4_096;
/// Flush period.
const FLUSH_INTERVAL_MS: u64 = 1_000;

/// Who followed a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// A person's browser or tool, by family (`chrome`, `curl`...).
    Human(&'static str),
    /// A crawler or link-preview fetcher, by name.
    Bot(&'static str),
}

/// One redirect served.
#[derive(Debug, Clone)]
pub struct Click {
    /// The code followed.
    pub code: String,
    /// Days since the Unix epoch (UTC) of the click.
    pub day: u64,
    /// Host of the `Referer` header, lower-cased, if any.
    pub referrer_host: Option<String>,
    /// Classified user agent.
    pub agent: Agent,
}

/// Known bots and preview fetchers: (lower-case needle, name). Checked in order.
const BOTS: &[(&str, &str)] = &[
    ("facebookexternalhit", "facebook"),
    ("facebot", "facebook"),
    ("twitterbot", "twitter"),
    ("slackbot", "slack"),
    ("slack-imgproxy", "slack"),
    ("discordbot", "discord"),
    ("telegrambot", "telegram"),
    ("whatsapp", "whatsapp"),
    ("linkedinbot", "linkedin"),
    ("skypeuripreview", "skype"),
    ("redditbot", "reddit"),
    ("applebot", "apple"),
    ("googlebot", "google"),
    ("bingbot", "bing"),
    ("yandex", "yandex"),
    ("baiduspider", "baidu"),
    ("duckduckbot", "duckduckgo"),
    ("pinterest", "pinterest"),
    ("embedly", "embedly"),
    ("headlesschrome", "headless-chrome"),
    ("preview", "preview"),
    ("bot", "other-bot"),
    ("crawl", "other-bot"),
    ("spider", "other-bot"),
];

/// Classifies a `User-Agent` header (and the method: HEAD is a preview).
pub fn classify(user_agent: Option<&str>, is_head: bool) -> Agent {
    if is_head {
        return Agent::Bot("head-request");
    }
    let Some(agent) = user_agent.filter(|agent| !agent.trim().is_empty()) else {
        return Agent::Bot("no-user-agent");
    };
    let lower = agent.to_ascii_lowercase();
    if let Some((_, name)) = BOTS.iter().find(|(needle, _)| lower.contains(needle)) {
        return Agent::Bot(name);
    }
    // Order matters: Edge and Opera also say "chrome", Chrome also says "safari".
    let family = [
        ("edg", "edge"),
        ("opr/", "opera"),
        ("firefox", "firefox"),
        ("chrome", "chrome"),
        ("safari", "safari"),
        ("curl", "curl"),
        ("wget", "wget"),
    ]
    .iter()
    .find(|(needle, _)| lower.contains(needle))
    .map_or("other", |(_, family)| family);
    Agent::Human(family)
}

/// The host of a `Referer` URL, lower-cased; `None` for junk.
pub fn referrer_host(referer: &str) -> Option<String> {
    let rest = referer.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    let host = host.to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    valid.then_some(host)
}

fn counter_keys(click: &Click) -> Vec<String> {
    let base = format!("s:stat:{}", click.code);
    let (year, month, day) = idgen::utc::civil_from_days(click.day);
    let mut keys = Vec::with_capacity(3);
    match click.agent {
        Agent::Bot(name) => keys.push(format!("{base}:bot:{name}")),
        Agent::Human(family) => {
            keys.push(format!("{base}:day:{year:04}-{month:02}-{day:02}"));
            keys.push(format!("{base}:ua:{family}"));
            if let Some(host) = &click.referrer_host {
                keys.push(format!("{base}:ref:{host}"));
            }
        }
    }
    keys
}

/// The sending side, held by the redirect handler.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Click>,
    /// Clicks lost because the queue was full.
    pub dropped: Counter,
}

impl Recorder {
    /// Queues a click without waiting; drops it when the queue is full.
    pub fn record(&self, click: Click) {
        if self.sender.try_send(click).is_err() {
            self.dropped.inc();
        }
    }
}

/// Starts the flusher; it runs until every [`Recorder`] is dropped, then
/// flushes what it holds and ends.
pub fn start(kv: Arc<dyn KvClient>) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(QUEUE_CLICKS_MAX);
    let task = tokio::spawn(flush_loop(kv, receiver));
    (
        Recorder {
            sender,
            dropped: Counter::default(),
        },
        task,
    )
}

async fn flush_loop(kv: Arc<dyn KvClient>, mut receiver: mpsc::Receiver<Click>) {
    let mut pending: HashMap<String, i64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(FLUSH_INTERVAL_MS));
    loop {
        tokio::select! {
            click = receiver.recv() => match click {
                Some(click) => {
                    for key in counter_keys(&click) {
                        *pending.entry(key).or_default() += 1;
                    }
                    if pending.len() >= PENDING_COUNTERS_MAX {
                        flush(&*kv, &mut pending).await;
                    }
                }
                None => {
                    flush(&*kv, &mut pending).await;
                    return;
                }
            },
            _ = tick.tick() => flush(&*kv, &mut pending).await,
        }
    }
}

async fn flush(kv: &dyn KvClient, pending: &mut HashMap<String, i64>) {
    for (key, delta) in pending.drain() {
        if let Err(err) = kv.incr_by(key.as_bytes(), delta).await {
            // Counts are best effort; a store outage must not grow memory.
            tracing::warn!(%key, delta, "dropping click counts: {err}");
        }
    }
}

/// What `GET /api/v1/{code}/stats` returns.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Clicks by people, all days.
    pub clicks: i64,
    /// Clicks by day, `YYYY-MM-DD` → count, oldest first.
    pub by_day: Vec<(String, i64)>,
    /// Top referrer hosts, most first.
    pub referrers: Vec<(String, i64)>,
    /// Browser families, most first.
    pub user_agents: Vec<(String, i64)>,
    /// Bot and preview fetches by bot, most first (not counted as clicks).
    pub bots: Vec<(String, i64)>,
}

/// Counters read per stats request; bounds the work of one request.
const STAT_KEYS_MAX: usize = 10_000;
/// Entries shown per top list.
const TOP_N: usize = 10;

/// Reads the counters of `code`.
pub async fn stats(kv: &dyn KvClient, code: &str) -> kvclient::Result<Stats> {
    let prefix = format!("s:stat:{code}:");
    let pairs = kv.scan_prefix(prefix.as_bytes(), STAT_KEYS_MAX).await?;
    let mut stats = Stats::default();
    for (key, value) in pairs {
        let key = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        let count: i64 = String::from_utf8_lossy(&value).parse().unwrap_or(0);
        let Some((kind, name)) = key.split_once(':') else {
            continue;
        };
        let entry = (name.to_string(), count);
        match kind {
            "day" => {
                stats.clicks += count;
                stats.by_day.push(entry);
            }
            "ref" => stats.referrers.push(entry),
            "ua" => stats.user_agents.push(entry),
            "bot" => stats.bots.push(entry),
            _ => {}
        }
    }
    stats.by_day.sort();
    for list in [
        &mut stats.referrers,
        &mut stats.user_agents,
        &mut stats.bots,
    ] {
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(TOP_N);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_and_crawlers_are_bots() {
        let slack = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
        assert_eq!(classify(Some(slack), false), Agent::Bot("slack"));
        let fb = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)";
        assert_eq!(classify(Some(fb), false), Agent::Bot("facebook"));
        assert_eq!(
            classify(Some("WhatsApp/2.23.20.0"), false),
            Agent::Bot("whatsapp")
        );
        assert_eq!(
            classify(Some("Mozilla/5.0 (compatible; Googlebot/2.1)"), false),
            Agent::Bot("google")
        );
        assert_eq!(classify(None, false), Agent::Bot("no-user-agent"));
        assert_eq!(
            classify(Some("Mozilla/5.0 Firefox/120.0"), true),
            Agent::Bot("head-request")
        );
    }

    #[test]
    fn browsers_are_people_by_family() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(classify(Some(chrome), false), Agent::Human("chrome"));
        let edge =
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(classify(Some(edge), false), Agent::Human("edge"));
        assert_eq!(classify(Some("curl/8.5.0"), false), Agent::Human("curl"));
    }

    #[test]
    fn referrer_is_reduced_to_its_host() {
        assert_eq!(
            referrer_host("https://News.ycombinator.com/item?id=1").as_deref(),
            Some("news.ycombinator.com")
        );
        assert_eq!(
            referrer_host("android-app://com.slack/"),
            Some("com.slack".into())
        );
        assert_eq!(referrer_host("garbage"), None);
        assert_eq!(referrer_host("https://a b/"), None);
    }

    #[test]
    fn bots_do_not_count_as_clicks() {
        let click = |agent| Click {
            code: "abc".into(),
            day: 19_723,
            referrer_host: None,
            agent,
        };
        assert_eq!(
            counter_keys(&click(Agent::Bot("slack"))),
            ["s:stat:abc:bot:slack"]
        );
        assert_eq!(
            counter_keys(&click(Agent::Human("curl"))),
            ["s:stat:abc:day:2024-01-01", "s:stat:abc:ua:curl"]
        );
    }
}
