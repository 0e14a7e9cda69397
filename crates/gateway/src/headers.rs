//! The headers a proxy must rewrite (RFC 9110 §7.6, RFC 7239's de-facto
//! `X-Forwarded-*` cousins).
//!
//! - **Hop-by-hop headers** describe one TCP connection (`Connection`,
//!   `Keep-Alive`, `Transfer-Encoding`, `Upgrade`, ... and every header the
//!   `Connection` header names). Forwarding them would make the upstream
//!   manage the client's connection, so they are removed in both directions;
//!   hyper re-frames bodies itself.
//! - **`X-Forwarded-For`** carries the client's address, appended to what
//!   earlier proxies wrote: behind a load balancer the upstream's TCP peer
//!   is the balancer (the notes' private-IP tier), not the user.
//! - **`X-Forwarded-Proto`** tells the upstream the scheme the client used,
//!   **`X-Forwarded-Host`** the host it asked for.
//! - **`Via`** records that the message passed through this gateway, in both
//!   directions, which also makes proxy loops visible.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// How the gateway names itself in `Via`.
pub const VIA: &str = "1.1 hyperscale";

/// Hop-by-hop headers named by RFC 9110 plus the legacy `Proxy-Connection`.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The hop-by-hop header names, lowercase: [`HOP_BY_HOP`] and `Upgrade`
/// (for code that compares names as text, like [`crate::relay`]).
pub const HOP_BY_HOP_NAMES: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in `Connection` go too (`Connection: close, X-Foo`).
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Prepares a client request's headers for the upstream: strips hop-by-hop
/// headers and adds the forwarding headers.
pub fn to_upstream(headers: &mut HeaderMap, client_ip: IpAddr) {
    strip_hop_by_hop(headers);
    let client = client_ip.to_string();
    let forwarded_for = match headers.get(X_FORWARDED_FOR).map(HeaderValue::to_str) {
        Some(Ok(earlier)) if !earlier.trim().is_empty() => format!("{earlier}, {client}"),
        _ => client,
    };
    if let Ok(value) = HeaderValue::try_from(forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    append_via(headers);
}

/// Prepares an upstream response's headers for the client.
pub fn to_client(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    append_via(headers);
}

fn append_via(headers: &mut HeaderMap) {
    headers.append(header::VIA, HeaderValue::from_static(VIA));
}

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_for_appends_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        to_upstream(&mut headers, "10.0.0.1".parse().unwrap());
        assert_eq!(headers[X_FORWARDED_FOR], "203.0.113.7, 10.0.0.1");
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_HOST], "example.com");
        assert_eq!(headers[header::VIA], VIA);
    }
}
