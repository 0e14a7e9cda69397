//! RFC 9111 as pure functions: parsing `Cache-Control` (both ways),
//! whether a response may be stored by a shared cache (§3), its freshness
//! lifetime (§4.2.1, with `s-maxage`, `Expires` and the optional heuristic
//! of §4.2.2), its age (§4.2.3), and whether a request accepts a stored
//! response as it is (§5.2.1 request directives).
//!
//! Every time is Unix milliseconds, passed in: the functions read no clock,
//! so each rule is tested with exact times.

use http::header::{AUTHORIZATION, CACHE_CONTROL, EXPIRES, HeaderMap, LAST_MODIFIED, PRAGMA};
use http::{HeaderValue, StatusCode};

/// `delta-seconds` beyond this are taken as this (RFC 9111 §1.2.2: 2^31).
const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// The directives of one message's `Cache-Control` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache` (qualified forms are treated as unqualified, §5.2.2.4).
    pub no_cache: bool,
    /// `private` (qualified forms too: a shared cache stores neither).
    pub private: bool,
    /// `public`.
    pub public: bool,
    /// `max-age`, seconds; an invalid value reads as 0 (§4.2.1: stale).
    pub max_age: Option<u64>,
    /// `s-maxage`, seconds; an invalid value reads as 0.
    pub s_maxage: Option<u64>,
    /// `must-revalidate` or `proxy-revalidate` (the same for a shared cache).
    pub must_revalidate: bool,
    /// `stale-while-revalidate` (RFC 5861), seconds.
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error` (RFC 5861), seconds.
    pub stale_if_error: Option<u64>,
    /// Request `max-stale`: `Some(None)` accepts any staleness.
    pub max_stale: Option<Option<u64>>,
    /// Request `min-fresh`, seconds.
    pub min_fresh: Option<u64>,
    /// Request `only-if-cached`.
    pub only_if_cached: bool,
}

/// Parses `delta-seconds`; `None` when it is not one.
fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim().trim_matches('"');
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.parse::<u64>()
            .unwrap_or(DELTA_SECONDS_MAX)
            .min(DELTA_SECONDS_MAX),
    )
}

/// Sets `slot` from `value`: a second, different value or a bad one makes
/// the directive invalid, which for lifetimes means 0 (stale).
fn set_seconds(slot: &mut Option<u64>, value: Option<&str>) {
    let parsed = value.and_then(delta_seconds).unwrap_or(0);
    *slot = match *slot {
        Some(earlier) if earlier != parsed => Some(0),
        _ => Some(parsed),
    };
}

/// Parses every `Cache-Control` header of `headers` (and `Pragma: no-cache`
/// for requests without `Cache-Control`, §5.4).
pub fn parse(headers: &HeaderMap) -> CacheControl {
    let mut cc = CacheControl::default();
    let mut any = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        any = true;
        for directive in split_directives(text) {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim())),
                None => (directive.trim(), None),
            };
            match name.to_ascii_lowercase().as_str() {
                "no-store" => cc.no_store = true,
                "no-cache" => cc.no_cache = true,
                "private" => cc.private = true,
                "public" => cc.public = true,
                "must-revalidate" | "proxy-revalidate" => cc.must_revalidate = true,
                "max-age" => set_seconds(&mut cc.max_age, argument),
                "s-maxage" => set_seconds(&mut cc.s_maxage, argument),
                "stale-while-revalidate" => set_seconds(&mut cc.stale_while_revalidate, argument),
                "stale-if-error" => set_seconds(&mut cc.stale_if_error, argument),
                "min-fresh" => set_seconds(&mut cc.min_fresh, argument),
                "max-stale" => cc.max_stale = Some(argument.and_then(delta_seconds)),
                "only-if-cached" => cc.only_if_cached = true,
                _ => {}
            }
        }
    }
    if !any
        && headers.get_all(PRAGMA).iter().any(|v| {
            v.to_str()
                .is_ok_and(|t| t.to_ascii_lowercase().contains("no-cache"))
        })
    {
        cc.no_cache = true;
    }
    cc
}

/// Splits on commas outside quoted strings (`private="a, b", max-age=5`).
fn split_directives(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (index, byte) in text.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .collect()
}

/// Parses an HTTP date; `None` when invalid (RFC 9111 §5.3: an invalid
/// `Expires`, such as `0`, means "already expired").
pub fn http_date_ms(value: &HeaderValue) -> Option<u64> {
    let text = value.to_str().ok()?;
    let time = httpdate::parse_http_date(text.trim()).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_millis() as u64)
}

/// Whether the response carries a validator (`ETag`, `Last-Modified`)
/// that a conditional request can check ([`super::revalidate`]).
pub fn has_validator(response: &HeaderMap) -> bool {
    response.contains_key(http::header::ETAG) || response.contains_key(LAST_MODIFIED)
}

/// Statuses a cache may store without an explicit lifetime (RFC 9110
/// §15.1 "heuristically cacheable"), less 206 (no range caching here).
pub fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Why a response is not stored (the `reason` of a bypass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// `no-store` in the request or the response.
    NoStore,
    /// `private`: only the user's own cache may keep it.
    Private,
    /// A status this cache does not store (206, 5xx, ...).
    Status,
    /// `Vary: *`: no later request can ever match.
    VaryStar,
    /// `Set-Cookie`: one user's cookie must not be served to others.
    SetCookie,
    /// The request carried `Authorization` and the response did not say
    /// `public`, `s-maxage` or `must-revalidate` (§3.5).
    Authorized,
    /// Nothing says it may be reused: no lifetime and no validator.
    Useless,
}

/// Whether a shared cache may store `status` + `response` for a `GET` that
/// carried `request` (§3, §3.5). `lifetime_ms` comes from [`lifetime_ms`].
pub fn storable(
    request: &HeaderMap,
    request_cc: &CacheControl,
    status: StatusCode,
    response: &HeaderMap,
    response_cc: &CacheControl,
    lifetime_ms: u64,
) -> Result<(), NotStorable> {
    if request_cc.no_store || response_cc.no_store {
        return Err(NotStorable::NoStore);
    }
    if response_cc.private {
        return Err(NotStorable::Private);
    }
    let explicit = response_cc.max_age.is_some()
        || response_cc.s_maxage.is_some()
        || response.contains_key(EXPIRES)
        || response_cc.public;
    let understood =
        heuristically_cacheable(status) || (explicit && matches!(status.as_u16(), 302 | 303 | 307));
    if !understood {
        return Err(NotStorable::Status);
    }
    if super::vary::is_star(response) {
        return Err(NotStorable::VaryStar);
    }
    if response.contains_key(http::header::SET_COOKIE) {
        return Err(NotStorable::SetCookie);
    }
    if request.contains_key(AUTHORIZATION)
        && !(response_cc.public || response_cc.s_maxage.is_some() || response_cc.must_revalidate)
    {
        return Err(NotStorable::Authorized);
    }
    if lifetime_ms == 0 && !has_validator(response) {
        return Err(NotStorable::Useless);
    }
    Ok(())
}

/// The route's say over lifetimes (see `RouteCache`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// Lifetime when the response states none.
    pub default_ttl_ms: Option<u64>,
    /// Cap on any lifetime.
    pub max_ttl_ms: Option<u64>,
    /// Whether §4.2.2's heuristic applies.
    pub heuristic: bool,
}

/// The freshness lifetime (§4.2.1): `s-maxage`, else `max-age`, else
/// `Expires - Date`, else the route default, else the heuristic (10% of
/// `Date - Last-Modified`, at most a day), else 0. `no-cache` makes it 0:
/// every use is revalidated. `response_time_ms` stands in for a missing
/// or invalid `Date`.
pub fn lifetime_ms(
    status: StatusCode,
    response: &HeaderMap,
    cc: &CacheControl,
    response_time_ms: u64,
    overrides: &Overrides,
) -> u64 {
    if cc.no_cache {
        return 0;
    }
    let date = response
        .get(http::header::DATE)
        .and_then(http_date_ms)
        .unwrap_or(response_time_ms);
    // An invalid Expires (`0`, garbage) is a date in the past.
    let expires = || {
        response
            .get(EXPIRES)
            .map(|expires| http_date_ms(expires).map_or(0, |at| at.saturating_sub(date)))
    };
    let stated = match cc.s_maxage.or(cc.max_age) {
        Some(seconds) => Some(seconds * 1000),
        None => expires(),
    };
    let lifetime = match stated {
        Some(lifetime) => lifetime,
        None => match overrides.default_ttl_ms {
            Some(ttl) => ttl,
            None if overrides.heuristic && heuristically_cacheable(status) => response
                .get(LAST_MODIFIED)
                .and_then(http_date_ms)
                .map_or(0, |modified| {
                    (date.saturating_sub(modified) / 10).min(86_400_000)
                }),
            None => 0,
        },
    };
    match overrides.max_ttl_ms {
        Some(cap) => lifetime.min(cap),
        None => lifetime,
    }
}

/// The age a response had when it arrived (§4.2.3's
/// `corrected_initial_age`), from its `Age` and `Date` headers and the
/// times the request left and the response came back.
pub fn initial_age_ms(response: &HeaderMap, request_time_ms: u64, response_time_ms: u64) -> u64 {
    let age_value = response
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(delta_seconds)
        .unwrap_or(0)
        * 1000;
    let date = response.get(http::header::DATE).and_then(http_date_ms);
    let apparent_age = date.map_or(0, |date| response_time_ms.saturating_sub(date));
    let response_delay = response_time_ms.saturating_sub(request_time_ms);
    apparent_age.max(age_value + response_delay)
}

/// How a request may use a stored response of `age_ms` and `lifetime_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usable {
    /// Serve it as is.
    Fresh,
    /// Stale, but the client accepts this much staleness (`max-stale`).
    StaleAccepted,
    /// Ask the origin first (stale, or the client said `no-cache` / a
    /// `max-age` / `min-fresh` it does not meet).
    Revalidate,
}

/// Whether a stored response serves `request_cc` as is (§4.2, §5.2.1).
/// `must_revalidate` is the stored response's: it forbids `max-stale`.
pub fn usable(
    request_cc: &CacheControl,
    age_ms: u64,
    lifetime_ms: u64,
    must_revalidate: bool,
) -> Usable {
    if request_cc.no_cache {
        return Usable::Revalidate;
    }
    if request_cc.max_age.is_some_and(|max| age_ms > max * 1000) {
        return Usable::Revalidate;
    }
    let left_ms = lifetime_ms.saturating_sub(age_ms);
    if let Some(min_fresh) = request_cc.min_fresh
        && left_ms < min_fresh * 1000
    {
        return Usable::Revalidate;
    }
    if age_ms < lifetime_ms {
        return Usable::Fresh;
    }
    let staleness_ms = age_ms - lifetime_ms;
    match request_cc.max_stale {
        Some(None) if !must_revalidate => Usable::StaleAccepted,
        Some(Some(seconds)) if !must_revalidate && staleness_ms <= seconds * 1000 => {
            Usable::StaleAccepted
        }
        _ => Usable::Revalidate,
    }
}

#[cfg(test)]
#[path = "freshness_tests.rs"]
mod tests;
