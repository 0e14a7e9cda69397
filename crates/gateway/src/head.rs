//! Checks on a request head before the gateway routes, limits or forwards
//! it, and the one rewrite it gets: the canonical path.
//!
//! Why here and not in hyper: hyper parses HTTP/1.1 leniently on purpose
//! (it accepts any `Transfer-Encoding` ending in `chunked`, any number of
//! `Host` lines, origin-form targets without `Host`) and leaves policy to
//! the server. A proxy must be strict, because the upstream behind it may
//! read an ambiguous head differently than the gateway did (request
//! smuggling, host confusion, limits matched on one spelling of a path and
//! files served from another). The rules, as nginx applies them:
//!
//! - **Host** (RFC 9112 §3.2): more than one `Host` line → 400; an HTTP/1.1
//!   request without `Host` → 400 (HTTP/1.0 predates `Host` and may omit
//!   it); a `Host` that is not `host[:port]` → 400. An absolute-form target
//!   (`GET http://example.com/x HTTP/1.1`) wins over `Host` (§3.2.2): the
//!   gateway replaces `Host` with the target's authority before forwarding.
//! - **Transfer-Encoding**: the only coding the gateway implements is a
//!   single `chunked`; anything else (`identity, chunked`, `gzip, chunked`)
//!   → 501, as nginx answers. (hyper itself rejects, with 400, codings that
//!   do not end in `chunked` and any coding on HTTP/1.0.)
//! - **Path**: normalized by [`crate::normalize`] (400 for traversal above
//!   the root and bad escapes); the request's URI is rewritten to the
//!   canonical path, so routing, rate-limit descriptors, hashing and the
//!   forwarded target all see the same string. The query is untouched.
//!
//! Every rejection closes the connection (`Connection: close`): after a
//! malformed head, the gateway cannot trust where the next request starts.

use axum::body::Body;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version, header};

use crate::error;
use crate::normalize::{self, Reject};

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The path cannot be normalized.
    #[error("bad request path: {0}")]
    Path(#[from] Reject),
    /// `Host` is missing, repeated or malformed.
    #[error("{0}")]
    Host(&'static str),
    /// A transfer coding other than a single `chunked`.
    #[error("transfer encoding `{0}` is not implemented; send `chunked` or a Content-Length")]
    TransferEncoding(String),
}

impl HeadError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Path(_) | Self::Host(_) => StatusCode::BAD_REQUEST,
            Self::TransferEncoding(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The `refused_total{reason}` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Path(_) => "bad_path",
            Self::Host(_) => "bad_host",
            Self::TransferEncoding(_) => "transfer_encoding",
        }
    }

    /// The JSON error response, closing the connection.
    pub fn response(&self) -> Response<Body> {
        let mut response = error::json(self.status(), &self.to_string());
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Checks `request`'s head and rewrites its URI to the canonical path and
/// its `Host` to an absolute-form target's authority.
pub fn prepare<B>(request: &mut Request<B>) -> Result<(), HeadError> {
    check_transfer_encoding(request.headers())?;
    if let Some(host) = effective_host(request.version(), request.uri(), request.headers())? {
        request.headers_mut().insert(header::HOST, host);
    }
    if let Some(uri) = canonical_uri(request.uri())? {
        *request.uri_mut() = uri;
    }
    Ok(())
}

/// Refuses every transfer coding but a single `chunked` (hyper has already
/// refused codings that do not end in `chunked`).
pub fn check_transfer_encoding(headers: &HeaderMap) -> Result<(), HeadError> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        let Ok(text) = value.to_str() else {
            return Err(HeadError::TransferEncoding(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        };
        codings.extend(text.split(',').map(str::trim));
    }
    match codings.as_slice() {
        [] => Ok(()),
        [single] if single.eq_ignore_ascii_case("chunked") => Ok(()),
        _ => Err(HeadError::TransferEncoding(codings.join(", "))),
    }
}

/// Applies the `Host` rules; returns the `Host` to forward when it must
/// change (an absolute-form target), `None` to keep the client's.
pub fn effective_host(
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, HeadError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(HeadError::Host("more than one Host header"));
    }
    match host {
        None if version >= Version::HTTP_11 => {
            return Err(HeadError::Host("an HTTP/1.1 request needs a Host header"));
        }
        Some(value) if !value.is_empty() && !is_host(value.as_bytes()) => {
            return Err(HeadError::Host("the Host header is not `host[:port]`"));
        }
        _ => {}
    }
    let Some(authority) = uri.authority() else {
        return Ok(None);
    };
    let target_host = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_string(),
    };
    HeaderValue::try_from(target_host)
        .map(Some)
        .map_err(|_| HeadError::Host("the request target's host is not a valid Host"))
}

/// Whether `value` is `host[:port]` (no user info, no path).
pub(crate) fn is_host(value: &[u8]) -> bool {
    match Authority::try_from(value) {
        // The parser accepts a non-numeric port; a Host must not have one.
        Ok(authority) => {
            !value.contains(&b'@')
                && (authority.port_u16().is_some() || authority.as_str() == authority.host())
        }
        Err(_) => false,
    }
}

/// The URI with its path made canonical, or `None` if it already is.
pub fn canonical_uri(uri: &Uri) -> Result<Option<Uri>, HeadError> {
    // An absolute-form target without a path (`http://host`) means `/`.
    let path = match uri.path() {
        "" if uri.authority().is_some() => "/",
        path => path,
    };
    let normalized = normalize::normalize_path(path)?;
    if normalized.is_unchanged() && path == uri.path() {
        return Ok(None);
    }
    let target = match uri.query() {
        Some(query) => format!("{normalized}?{query}"),
        None => normalized.to_string(),
    };
    // A canonical path has only bytes a path may carry, and the query was
    // already accepted by the parser: the target always parses.
    let path_and_query = PathAndQuery::try_from(target).map_err(|_| Reject::NotAPath)?;
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts)
        .map(Some)
        .map_err(|_| HeadError::Path(Reject::NotAPath))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::try_from(*name).unwrap(),
                HeaderValue::try_from(*value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn host_rules() {
        let origin: Uri = "/x".parse().unwrap();
        let one = headers(&[("host", "a.example:8080")]);
        assert_eq!(effective_host(Version::HTTP_11, &origin, &one), Ok(None));
        let two = headers(&[("host", "a"), ("host", "b")]);
        assert!(effective_host(Version::HTTP_11, &origin, &two).is_err());
        let none = HeaderMap::new();
        assert!(effective_host(Version::HTTP_11, &origin, &none).is_err());
        assert_eq!(effective_host(Version::HTTP_10, &origin, &none), Ok(None));
        for good in ["h", "h:80", "[::1]:8080", "[::1]", "1.2.3.4"] {
            let map = headers(&[("host", good)]);
            assert!(
                effective_host(Version::HTTP_11, &origin, &map).is_ok(),
                "{good}"
            );
        }
        for bad in ["a b", "u@h", "h/p", "h:port"] {
            let map = headers(&[("host", bad)]);
            assert!(
                effective_host(Version::HTTP_11, &origin, &map).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn absolute_form_host_wins() {
        let absolute: Uri = "http://user@target.example:81/x".parse().unwrap();
        let map = headers(&[("host", "other.example")]);
        let host = effective_host(Version::HTTP_11, &absolute, &map).unwrap();
        assert_eq!(host.unwrap(), "target.example:81");
    }

    #[test]
    fn only_a_single_chunked_coding_passes() {
        assert!(check_transfer_encoding(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check_transfer_encoding(&headers(&[("transfer-encoding", "Chunked")])).is_ok());
        for bad in [
            &[("transfer-encoding", "identity, chunked")][..],
            &[("transfer-encoding", "gzip,chunked")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        ] {
            let err = check_transfer_encoding(&headers(bad)).unwrap_err();
            assert_eq!(err.status(), StatusCode::NOT_IMPLEMENTED);
        }
    }

    #[test]
    fn canonical_uri_keeps_the_query_and_authority() {
        let uri: Uri = "//a/./b?x=%2F..//".parse().unwrap();
        assert_eq!(canonical_uri(&uri).unwrap().unwrap(), "/a/b?x=%2F..//");
        let absolute: Uri = "http://h:1".parse().unwrap();
        assert_eq!(absolute.path(), "/");
        assert_eq!(canonical_uri(&absolute).unwrap(), None);
        let plain: Uri = "/a/b?q".parse().unwrap();
        assert_eq!(canonical_uri(&plain).unwrap(), None);
        let star: Uri = "*".parse().unwrap();
        assert!(canonical_uri(&star).is_err());
    }
}
