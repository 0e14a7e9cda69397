//! Validation (RFC 9111 §4.3): a stale object with a validator (`ETag`,
//! `Last-Modified`) is not fetched again but *checked*: the cache sends a
//! conditional request, and a `304 Not Modified` (headers only) renews the
//! stored object, saving the body's bytes between origin and edge.
//!
//! The same validators answer clients' own conditional requests on a hit
//! (`If-None-Match` / `If-Modified-Since` → 304 from the cache).

use http::header::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, HeaderName, IF_MATCH,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
    TRANSFER_ENCODING,
};

pub use super::freshness::has_validator;
use super::freshness::http_date_ms;

/// Removes the client's preconditions: the cache fills with a full
/// response and applies the client's conditions itself.
pub fn strip_client_conditionals(request: &mut HeaderMap) {
    for name in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ] {
        request.remove(name);
    }
}

/// Adds the stored object's validators to an origin request (§4.3.1).
pub fn make_conditional(request: &mut HeaderMap, stored: &HeaderMap) {
    if let Some(etag) = stored.get(ETAG) {
        request.insert(IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored.get(LAST_MODIFIED) {
        request.insert(IF_MODIFIED_SINCE, modified.clone());
    }
}

/// Headers a 304 must not change in the stored object (§3.2): they
/// describe the stored body, not the new message.
fn keeps_stored(name: &HeaderName) -> bool {
    [
        CONTENT_LENGTH,
        CONTENT_ENCODING,
        CONTENT_RANGE,
        TRANSFER_ENCODING,
    ]
    .contains(name)
}

/// The stored headers updated from a 304's (§3.2, §4.3.4).
pub fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    for name in not_modified.keys() {
        if keeps_stored(name) {
            continue;
        }
        merged.remove(name);
        for value in not_modified.get_all(name) {
            merged.append(name.clone(), value.clone());
        }
    }
    merged
}

/// Weak comparison of entity tags (RFC 9110 §8.8.3.2): `W/"a"` equals `"a"`.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim().trim_start_matches("W/") == b.trim().trim_start_matches("W/")
}

/// Whether the client's conditional `GET` is answered 304 by the stored
/// object (RFC 9110 §13.1.2–3: `If-None-Match` wins over `If-Modified-Since`).
pub fn client_not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if request.contains_key(IF_NONE_MATCH) {
        let Some(etag) = stored.get(ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        return request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|text| text.split(','))
            .any(|candidate| candidate.trim() == "*" || weak_eq(candidate, etag));
    }
    let since = request.get(IF_MODIFIED_SINCE).and_then(http_date_ms);
    let modified = stored.get(LAST_MODIFIED).and_then(http_date_ms);
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

/// The headers of a 304 made from a stored object (RFC 9110 §15.4.5).
pub fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in [
        http::header::CACHE_CONTROL,
        http::header::CONTENT_LOCATION,
        http::header::DATE,
        ETAG,
        http::header::EXPIRES,
        LAST_MODIFIED,
        http::header::VARY,
    ] {
        for value in stored.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn conditional_requests_carry_the_validators() {
        let stored = map(&[
            ("etag", "\"v1\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        let mut request = map(&[("if-none-match", "\"client\"")]);
        strip_client_conditionals(&mut request);
        make_conditional(&mut request, &stored);
        assert_eq!(request["if-none-match"], "\"v1\"");
        assert_eq!(
            request["if-modified-since"],
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn a_304_updates_headers_but_not_the_length() {
        let stored = map(&[
            ("content-length", "5"),
            ("cache-control", "max-age=1"),
            ("x-a", "1"),
        ]);
        let fresh = map(&[("content-length", "0"), ("cache-control", "max-age=60")]);
        let merged = merge_not_modified(&stored, &fresh);
        assert_eq!(merged["content-length"], "5");
        assert_eq!(merged["cache-control"], "max-age=60");
        assert_eq!(merged["x-a"], "1");
    }

    #[test]
    fn clients_get_304_on_matching_validators() {
        let stored = map(&[
            ("etag", "W/\"v1\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert!(client_not_modified(
            &map(&[("if-none-match", "\"x\", \"v1\"")]),
            &stored
        ));
        assert!(!client_not_modified(
            &map(&[("if-none-match", "\"v2\"")]),
            &stored
        ));
        assert!(client_not_modified(
            &map(&[("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")]),
            &stored
        ));
        assert!(!client_not_modified(
            &map(&[("if-modified-since", "Sat, 05 Nov 1994 08:49:37 GMT")]),
            &stored
        ));
        assert!(!client_not_modified(&HeaderMap::new(), &stored));
    }
}
