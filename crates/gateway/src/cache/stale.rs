//! Serving stale objects (RFC 9111 §4.2.4, RFC 5861): the notes' "what if
//! the origin fails" answered at the edge.
//!
//! - `stale-while-revalidate=N`: for N seconds past its lifetime an object
//!   is served at once (`X-Cache: STALE`) while one background request
//!   revalidates it, so no client waits for the origin.
//! - `stale-if-error=N`, or the route's `stale_if_error_ms`: when the
//!   origin fails (cannot connect, times out, answers 500/502/503/504), an
//!   object up to that much past its lifetime is served instead of the error.
//!
//! `must-revalidate` / `proxy-revalidate` and `no-cache` forbid both: the
//! origin said a stale copy must never be shown. A client's `no-cache`
//! forbids serving stale while revalidating (it asked for a checked copy).

use http::StatusCode;

use super::freshness::CacheControl;

/// What the stored object allows once stale (from its `Cache-Control`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StalePolicy {
    /// Stale copies must never be served (`must-revalidate`, `no-cache`).
    pub forbidden: bool,
    /// `stale-while-revalidate`, ms.
    pub while_revalidate_ms: u64,
    /// `stale-if-error`, ms.
    pub if_error_ms: u64,
}

impl StalePolicy {
    /// The policy a response's directives give.
    pub fn of(cc: &CacheControl) -> Self {
        Self {
            forbidden: cc.must_revalidate || cc.no_cache,
            while_revalidate_ms: cc.stale_while_revalidate.unwrap_or(0) * 1000,
            if_error_ms: cc.stale_if_error.unwrap_or(0) * 1000,
        }
    }
}

/// Whether an object `staleness_ms` past its lifetime is served at once
/// while it is revalidated in the background.
pub fn while_revalidate(policy: &StalePolicy, staleness_ms: u64, request: &CacheControl) -> bool {
    !policy.forbidden && !request.no_cache && staleness_ms <= policy.while_revalidate_ms
}

/// Whether an object `staleness_ms` past its lifetime replaces an origin
/// failure; `route_ms` is the route's `stale_if_error_ms`.
pub fn if_error(
    policy: &StalePolicy,
    staleness_ms: u64,
    route_ms: u64,
    request: &CacheControl,
) -> bool {
    let allowed_ms = policy
        .if_error_ms
        .max(route_ms)
        .max(request.stale_if_error.unwrap_or(0) * 1000);
    !policy.forbidden && staleness_ms <= allowed_ms
}

/// Whether an origin answer counts as a failure for `stale-if-error`.
pub fn is_origin_error(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revalidate_directives_forbid_stale() {
        let cc = CacheControl {
            must_revalidate: true,
            stale_if_error: Some(60),
            stale_while_revalidate: Some(60),
            ..CacheControl::default()
        };
        let policy = StalePolicy::of(&cc);
        let none = CacheControl::default();
        assert!(!while_revalidate(&policy, 1, &none));
        assert!(!if_error(&policy, 1, 86_400_000, &none));
    }

    #[test]
    fn windows_bound_staleness() {
        let cc = CacheControl {
            stale_if_error: Some(10),
            stale_while_revalidate: Some(5),
            ..CacheControl::default()
        };
        let policy = StalePolicy::of(&cc);
        let none = CacheControl::default();
        assert!(while_revalidate(&policy, 5_000, &none));
        assert!(!while_revalidate(&policy, 5_001, &none));
        let no_cache = CacheControl {
            no_cache: true,
            ..CacheControl::default()
        };
        assert!(!while_revalidate(&policy, 1, &no_cache));
        assert!(if_error(&policy, 10_000, 0, &none));
        assert!(!if_error(&policy, 10_001, 0, &none));
        assert!(
            if_error(&policy, 10_001, 20_000, &none),
            "the route's window"
        );
        assert!(is_origin_error(StatusCode::BAD_GATEWAY));
        assert!(!is_origin_error(StatusCode::NOT_FOUND));
    }
}
