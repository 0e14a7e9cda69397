//! `Vary` (RFC 9111 §4.1): one URL, several representations. The origin
//! names the request headers that chose the representation; a stored
//! response serves a later request only if that request's values of those
//! headers match the ones it was stored for.
//!
//! Each stored variant keeps the (name, value) pairs it was selected by;
//! values are compared after trimming and collapsing whitespace around
//! commas (§4.1 allows such normalisation). `Vary: *` never matches, so
//! such responses are not stored at all ([`super::freshness::storable`]).

use http::HeaderMap;
use http::header::{HeaderName, VARY};

/// The request values a variant was selected by, in `Vary` order.
pub type Selection = Vec<(HeaderName, String)>;

/// Whether the response says `Vary: *` (or names something that is not a
/// header name, which can match nothing either).
pub fn is_star(response: &HeaderMap) -> bool {
    response.get_all(VARY).iter().any(|value| {
        value.to_str().map_or(true, |text| {
            text.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .any(|name| name == "*" || HeaderName::try_from(name).is_err())
        })
    })
}

/// The header names of the response's `Vary` headers (lowercase, deduplicated).
pub fn names(response: &HeaderMap) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = response
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    names
}

/// The request's value of `name`, every occurrence joined and normalised.
fn value(request: &HeaderMap, name: &HeaderName) -> String {
    let mut joined = String::new();
    for value in request.get_all(name) {
        for part in String::from_utf8_lossy(value.as_bytes()).split(',') {
            let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
            if part.is_empty() {
                continue;
            }
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(&part);
        }
    }
    joined
}

/// What a request selects for the response's `Vary` names.
pub fn select(names: &[HeaderName], request: &HeaderMap) -> Selection {
    names
        .iter()
        .map(|name| (name.clone(), value(request, name)))
        .collect()
}

/// Whether `request` selects the variant stored with `stored`.
pub fn matches(stored: &Selection, request: &HeaderMap) -> bool {
    stored
        .iter()
        .all(|(name, wanted)| value(request, name) == *wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn variants_match_on_normalised_values() {
        let mut response = HeaderMap::new();
        response.insert(
            VARY,
            HeaderValue::from_static("Accept-Encoding, accept-language"),
        );
        let names = names(&response);
        assert_eq!(names.len(), 2);
        let mut gzip = HeaderMap::new();
        gzip.insert("accept-encoding", HeaderValue::from_static("gzip,  br"));
        let stored = select(&names, &gzip);
        let mut same = HeaderMap::new();
        same.insert("accept-encoding", HeaderValue::from_static("gzip, br"));
        assert!(matches(&stored, &same));
        let mut other = HeaderMap::new();
        other.insert("accept-encoding", HeaderValue::from_static("identity"));
        assert!(!matches(&stored, &other));
        same.insert("accept-language", HeaderValue::from_static("ko"));
        assert!(
            !matches(&stored, &same),
            "an added varied header is another variant"
        );
    }

    #[test]
    fn star_and_garbage_never_match() {
        let mut response = HeaderMap::new();
        response.insert(VARY, HeaderValue::from_static("accept, *"));
        assert!(is_star(&response));
        response.insert(VARY, HeaderValue::from_static("bad name"));
        assert!(is_star(&response));
        response.insert(VARY, HeaderValue::from_static("accept"));
        assert!(!is_star(&response));
    }
}
