//! The front queues' prioritizer: which discovered URLs are fetched first
//! (the chapter's front queues by priority). A URL's priority (0 = highest,
//! [`LEVELS`] - 1 = lowest) becomes part of its key in the on-disk back queue
//! of its host, so each back queue is the merge of its front queues, highest
//! first. New policies plug in through [`Prioritizer`].

use url::Url;

/// Number of priority levels (front queues).
pub const LEVELS: u8 = 4;

/// Decides a URL's priority from what is known when it is discovered.
pub trait Prioritizer: Send + Sync {
    /// Priority in `0..LEVELS` (0 first).
    fn priority(&self, url: &Url, depth: u32) -> u8;
}

/// Breadth-first: shallower pages first (a page-rank proxy: pages near the
/// seeds are linked from more places), with sitemaps and seeds on top.
#[derive(Debug, Default, Clone, Copy)]
pub struct DepthPrioritizer;

impl Prioritizer for DepthPrioritizer {
    fn priority(&self, url: &Url, depth: u32) -> u8 {
        if depth == 0 || url.path().ends_with("sitemap.xml") {
            return 0;
        }
        let level = match depth {
            0..=2 => 1,
            3..=6 => 2,
            _ => 3,
        };
        level.min(LEVELS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_first() {
        let p = DepthPrioritizer;
        let url = Url::parse("http://a.b/x").expect("valid");
        let levels: Vec<u8> = [0, 1, 3, 10].iter().map(|d| p.priority(&url, *d)).collect();
        assert_eq!(levels, vec![0, 1, 2, 3]);
        assert!(levels.iter().all(|l| *l < LEVELS));
    }
}
