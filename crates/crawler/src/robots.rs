//! robots.txt (the chapter's "Robots.txt"): parsed by `texting_robots` (a
//! well-kept parser, tested against Google's robots corpus), cached per host
//! with a TTL. What an answer means follows RFC 9309 §2.3.1: a 2xx body is
//! the rules; 4xx (no file) allows everything; 5xx or no answer at all
//! disallows everything (the server may be overloaded) until the entry
//! expires; a body that does not parse is treated as empty (allow).

use std::collections::HashMap;
use std::time::Duration;

use texting_robots::Robot;

/// Largest robots.txt read (RFC 9309 asks parsers to read at least 500 KiB).
pub const ROBOTS_BYTES_MAX: usize = 512 * 1024;

/// A host's rules.
pub enum Rules {
    /// Parsed rules.
    Parsed(Box<Robot>),
    /// Everything allowed (4xx, unparsable).
    AllowAll,
    /// Nothing allowed (5xx, unreachable).
    DisallowAll,
}

impl Rules {
    /// Whether `url` may be fetched.
    pub fn allowed(&self, url: &str) -> bool {
        match self {
            Rules::Parsed(robot) => robot.allowed(url),
            Rules::AllowAll => true,
            Rules::DisallowAll => false,
        }
    }

    /// `Crawl-delay` in milliseconds.
    pub fn crawl_delay_ms(&self) -> Option<u64> {
        match self {
            Rules::Parsed(robot) => robot.delay.map(|d| (d.max(0.0) * 1000.0) as u64),
            _ => None,
        }
    }

    /// Sitemaps the file lists.
    pub fn sitemaps(&self) -> Vec<String> {
        match self {
            Rules::Parsed(robot) => robot.sitemaps.clone(),
            _ => Vec::new(),
        }
    }
}

/// What fetching `/robots.txt` gave.
pub enum RobotsAnswer<'a> {
    /// An HTTP status and body.
    Status(u16, &'a [u8]),
    /// No HTTP answer.
    Unreachable,
}

/// RFC 9309's decision from the answer, for `agent`.
pub fn rules_from(agent: &str, answer: RobotsAnswer<'_>) -> Rules {
    match answer {
        RobotsAnswer::Status(200..=299, body) => {
            let body = &body[..body.len().min(ROBOTS_BYTES_MAX)];
            match Robot::new(agent, body) {
                Ok(robot) => Rules::Parsed(Box::new(robot)),
                Err(_) => Rules::AllowAll,
            }
        }
        RobotsAnswer::Status(400..=499, _) => Rules::AllowAll,
        RobotsAnswer::Status(_, _) | RobotsAnswer::Unreachable => Rules::DisallowAll,
    }
}

/// The per-host cache, with a TTL.
pub struct RobotsCache {
    entries: HashMap<String, (u64, std::sync::Arc<Rules>)>,
    ttl_ms: u64,
    entries_max: usize,
}

impl RobotsCache {
    /// A cache keeping rules `ttl`, at most `entries_max` hosts.
    pub fn new(ttl: Duration, entries_max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl_ms: ttl.as_millis() as u64,
            entries_max: entries_max.max(1),
        }
    }

    /// Fresh rules for `host`, if any.
    pub fn get(&self, host: &str, now_ms: u64) -> Option<std::sync::Arc<Rules>> {
        self.entries
            .get(host)
            .filter(|(at, _)| now_ms.saturating_sub(*at) < self.ttl_ms)
            .map(|(_, rules)| rules.clone())
    }

    /// Stores rules for `host`.
    pub fn put(&mut self, host: &str, rules: Rules, now_ms: u64) -> std::sync::Arc<Rules> {
        if self.entries.len() >= self.entries_max {
            let ttl = self.ttl_ms;
            self.entries
                .retain(|_, (at, _)| now_ms.saturating_sub(*at) < ttl);
            if self.entries.len() >= self.entries_max
                && let Some(key) = self.entries.keys().next().cloned()
            {
                self.entries.remove(&key);
            }
        }
        let rules = std::sync::Arc::new(rules);
        self.entries
            .insert(host.to_string(), (now_ms, rules.clone()));
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: &[u8] = b"User-agent: *\nDisallow: /private/\nAllow: /private/ok\nCrawl-delay: 2\n\nUser-agent: badbot\nDisallow: /\n\nSitemap: http://a.b/sitemap.xml\n";

    #[test]
    fn rules_and_rfc9309_statuses() {
        let rules = rules_from("hyperscale", RobotsAnswer::Status(200, TXT));
        assert!(rules.allowed("http://a.b/x"));
        assert!(!rules.allowed("http://a.b/private/x"));
        assert!(rules.allowed("http://a.b/private/ok"));
        assert_eq!(rules.crawl_delay_ms(), Some(2000));
        assert_eq!(rules.sitemaps(), vec!["http://a.b/sitemap.xml".to_string()]);
        let bad = rules_from("badbot", RobotsAnswer::Status(200, TXT));
        assert!(!bad.allowed("http://a.b/x"));
        assert!(rules_from("x", RobotsAnswer::Status(404, b"")).allowed("http://a.b/x"));
        assert!(rules_from("x", RobotsAnswer::Status(403, b"")).allowed("http://a.b/x"));
        assert!(!rules_from("x", RobotsAnswer::Status(503, b"")).allowed("http://a.b/x"));
        assert!(!rules_from("x", RobotsAnswer::Unreachable).allowed("http://a.b/x"));
        let junk = rules_from("x", RobotsAnswer::Status(200, &[0xff, 0xfe, 0, 1, 2]));
        assert!(junk.allowed("http://a.b/x"));
    }

    #[test]
    fn cache_expires() {
        let mut cache = RobotsCache::new(Duration::from_millis(100), 2);
        cache.put("a", Rules::AllowAll, 0);
        assert!(cache.get("a", 99).is_some());
        assert!(cache.get("a", 100).is_none());
        cache.put("b", Rules::AllowAll, 0);
        cache.put("c", Rules::AllowAll, 200);
        assert!(cache.entries.len() <= 2);
    }
}
