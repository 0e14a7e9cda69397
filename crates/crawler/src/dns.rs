//! A caching DNS resolver (the chapter's "도메인 이름 변환 결과 캐시"): name
//! lookups are a crawler bottleneck, so each answer is kept for a TTL and
//! shared by every worker. Plugged into reqwest through its resolver hook;
//! lookups themselves go through the system resolver (`getaddrinfo` on
//! tokio's blocking pool), failures are cached briefly too so a dead name is
//! not asked again for every URL of its host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

type Answer = Result<Vec<SocketAddr>, String>;

/// The cache.
#[derive(Clone)]
pub struct CachingResolver {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Mutex<HashMap<String, (Instant, Answer)>>,
    ttl: Duration,
    negative_ttl: Duration,
    entries_max: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachingResolver {
    /// A cache keeping answers `ttl` (failures a tenth of it), at most
    /// `entries_max` names.
    pub fn new(ttl: Duration, entries_max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache: Mutex::new(HashMap::new()),
                ttl,
                negative_ttl: ttl / 10,
                entries_max: entries_max.max(1),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// (hits, misses) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.hits.load(Ordering::Relaxed),
            self.inner.misses.load(Ordering::Relaxed),
        )
    }

    /// Resolves `host` through the cache.
    pub async fn lookup(&self, host: &str) -> Answer {
        let now = Instant::now();
        if let Some((at, answer)) = self.inner.cache.lock().get(host) {
            let ttl = if answer.is_ok() {
                self.inner.ttl
            } else {
                self.inner.negative_ttl
            };
            if now.duration_since(*at) < ttl {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                return answer.clone();
            }
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let answer = match tokio::net::lookup_host((host, 0)).await {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(format!("{host} has no addresses"))
                } else {
                    Ok(addrs)
                }
            }
            Err(err) => Err(format!("cannot resolve {host}: {err}")),
        };
        let mut cache = self.inner.cache.lock();
        if cache.len() >= self.inner.entries_max {
            // Drop the expired first; if none, an arbitrary one.
            let ttl = self.inner.ttl;
            cache.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            if cache.len() >= self.inner.entries_max
                && let Some(key) = cache.keys().next().cloned()
            {
                cache.remove(&key);
            }
        }
        cache.insert(host.to_string(), (now, answer.clone()));
        answer
    }
}

impl Resolve for CachingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_lookup_is_a_hit_and_failures_are_cached() {
        let dns = CachingResolver::new(Duration::from_secs(60), 8);
        let first = dns.lookup("localhost").await.expect("localhost resolves");
        let second = dns.lookup("localhost").await.expect("localhost resolves");
        assert_eq!(first, second);
        assert_eq!(dns.counts(), (1, 1));
        assert!(dns.lookup("no-such-host.invalid").await.is_err());
        assert!(dns.lookup("no-such-host.invalid").await.is_err());
        assert_eq!(dns.counts(), (2, 2));
    }
}
