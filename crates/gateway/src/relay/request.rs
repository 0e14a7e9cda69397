//! The client's side of the relay, as plain functions of bytes and state:
//! is this request head one the relay forwards itself ([`plan`]), and the
//! head it sends upstream ([`upstream_head`]).
//!
//! The relay takes only requests whose meaning is beyond doubt: `GET` or
//! `HEAD` on HTTP/1.1, no body, one valid `Host`, an origin-form target
//! already in canonical form, a `Connection` header naming nothing but
//! `close` or `keep-alive`, and a route with no cache and no rate limit. For
//! any other head the answer is `Plan::Full` and the connection goes to
//! the full HTTP stack, which handles (or refuses, with the same errors as
//! always) everything the gateway supports. So the relay adds speed, never
//! a second interpretation of a request: both paths agree on every head the
//! relay accepts, and the relay accepts nothing ambiguous.

use service::front::Plan as FrontPlan;

use crate::config::HashKey;
use crate::handler::Inner;
use crate::headers::{HOP_BY_HOP_NAMES, VIA};
use crate::normalize;

/// Most request headers the relay looks at; more goes to hyper (100).
pub const HEADERS_MAX: usize = 64;

/// A request the relay forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fast {
    /// The route index.
    pub route: usize,
    /// `HEAD`: the response has no body whatever its headers say.
    pub is_head: bool,
    /// The client asked to close the connection after this response.
    pub close: bool,
    /// Bytes of the head in the client's buffer.
    pub head_bytes: usize,
    /// The request head to send upstream.
    pub upstream_head: Vec<u8>,
    /// The consistent-hashing key, when the pool hashes.
    pub key: Option<Vec<u8>>,
    /// Method and target, kept only when the access log is on.
    pub logged: Option<(String, String)>,
}

/// What to do with the bytes at the start of a client's buffer: forward
/// it here, or hand the connection to hyper.
pub type Plan = service::front::Plan<Fast>;

/// Decides what to do with `buffer`, a client connection's unread bytes,
/// for the gateway `inner` and the client whose address is `client_ip`
/// (as text: formatted once per connection, not per request).
pub(crate) fn plan(buffer: &[u8], inner: &Inner, client_ip: &str) -> Plan {
    let mut storage = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let head = match service::front::parse_get(buffer, &mut storage) {
        FrontPlan::Fast(head) => head,
        FrontPlan::Partial => return Plan::Partial,
        FrontPlan::Full(reason) => return Plan::Full(reason),
    };
    let target = head.target;
    let (path, _) = target.split_once('?').unwrap_or((target, ""));
    if !target.bytes().all(is_target_byte) {
        return Plan::Full("target bytes");
    }
    match normalize::normalize_path(path) {
        Ok(normalized) if normalized.is_unchanged() => {}
        _ => return Plan::Full("path not canonical"),
    }
    let headers = head.headers;
    if !one_valid_host(headers) {
        return Plan::Full("host");
    }
    if inner.limiting.is_some() {
        return Plan::Full("rate limits");
    }
    if path == inner.config.metrics_path
        || inner
            .edge
            .as_ref()
            .is_some_and(|edge| path == edge.purge_path())
    {
        return Plan::Full("gateway's own path");
    }
    let Some(route) = inner.routes.find(path) else {
        return Plan::Full("no route");
    };
    let compiled = inner.routes.get(route);
    if compiled.cache.is_some() {
        return Plan::Full("cached route");
    }
    let key = inner.pools[compiled.pool]
        .hash_key()
        .and_then(|key| hash_key(key, path, headers, client_ip));
    let upstream_target = crate::routes::upstream_path(compiled, path);
    let query = &target[path.len()..];
    let method = if head.is_head { "HEAD" } else { "GET" };
    Plan::Fast(Fast {
        route,
        is_head: head.is_head,
        close: head.close,
        head_bytes: head.head_bytes,
        upstream_head: upstream_head(method, upstream_target, query, headers, client_ip),
        key,
        logged: inner
            .config
            .access_log
            .then(|| (method.to_string(), target.to_string())),
    })
}

/// Bytes the relay accepts in a target: `pchar`, `/`, `?` (RFC 3986).
/// Anything else goes to hyper, which accepts or refuses it.
fn is_target_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&byte)
}

/// Whether there is exactly one `Host`, and it is `host[:port]` (the
/// rules of [`crate::head`]; anything else is hyper's to refuse).
fn one_valid_host(headers: &[httparse::Header<'_>]) -> bool {
    let mut hosts = headers
        .iter()
        .filter(|header| header.name.eq_ignore_ascii_case("host"));
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => !host.value.is_empty() && crate::head::is_host(host.value),
        _ => false,
    }
}

/// The consistent-hashing key, as [`crate::proxy`] computes it.
fn hash_key(
    key: &HashKey,
    path: &str,
    headers: &[httparse::Header<'_>],
    client_ip: &str,
) -> Option<Vec<u8>> {
    match key {
        HashKey::ClientIp => Some(client_ip.as_bytes().to_vec()),
        HashKey::Path => Some(path.as_bytes().to_vec()),
        HashKey::Header(name) => headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name.as_str()))
            .map(|header| header.value.to_vec()),
    }
}

/// Whether the request header `name` is not forwarded as is: hop-by-hop
/// (see [`crate::headers`]) or replaced by the gateway's own.
fn replaced_upstream(name: &str) -> bool {
    HOP_BY_HOP_NAMES
        .iter()
        .chain(&["x-forwarded-proto", "x-forwarded-host"])
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// The head sent upstream: the request line with the route's target, the
/// client's end-to-end headers, and the forwarding headers of
/// [`crate::headers::to_upstream`] (`X-Forwarded-For` appended to the
/// first earlier value, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Via`).
pub fn upstream_head(
    method: &str,
    path: &str,
    query: &str,
    headers: &[httparse::Header<'_>],
    client_ip: &str,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let mut host: &[u8] = b"";
    let mut forwarded_for: Option<&[u8]> = None;
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(query.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for header in headers {
        if replaced_upstream(header.name) {
            continue;
        }
        if header.name.eq_ignore_ascii_case("x-forwarded-for") {
            if forwarded_for.is_none() {
                forwarded_for = Some(header.value);
            }
            continue;
        }
        if header.name.eq_ignore_ascii_case("host") {
            host = header.value;
        }
        push_header(&mut head, header.name.as_bytes(), header.value);
    }
    head.extend_from_slice(b"x-forwarded-for: ");
    if let Some(earlier) = forwarded_for.filter(|v| !v.trim_ascii().is_empty()) {
        head.extend_from_slice(earlier);
        head.extend_from_slice(b", ");
    }
    head.extend_from_slice(client_ip.as_bytes());
    head.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    push_header(&mut head, b"x-forwarded-host", host);
    push_header(&mut head, b"via", VIA.as_bytes());
    head.extend_from_slice(b"\r\n");
    head
}

/// Appends `name: value\r\n`.
pub fn push_header(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}
