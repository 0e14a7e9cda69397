//! Descriptor extraction: what a rules file can ask about an HTTP request.
//!
//! Why a lazy view: the rules decide which attributes matter, so the view
//! answers `remote_address`, `path`, `method`, `api_key` and `header:<name>`
//! only when matching asks, and copies nothing else.
//!
//! The client address comes from the connection (axum's `ConnectInfo`, a
//! plain `SocketAddr` or our [`PeerAddr`] in the request extensions). A
//! client can write any `X-Forwarded-For` it likes, so that header is believed
//! only when the connection comes from a configured trusted proxy; then the
//! client is the rightmost address in the chain that is not itself a trusted
//! proxy (the leftmost entries were written by the client and prove nothing).

use crate::rules::{Attributes, DescriptorKey};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// The peer address of a connection, for servers that are not axum: insert it
/// into each request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR network like 10.0.0.0/8");
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            Some(len) => len
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= bits)
                .ok_or_else(bad)?,
            None => bits,
        };
        Ok(Cidr {
            network,
            prefix_len,
        })
    }
}

impl Cidr {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                self.prefix_len,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), u128::from(ip), self.prefix_len, 128)
            }
            _ => false,
        }
    }
}

fn masked(net: u128, ip: u128, prefix_len: u8, bits: u32) -> bool {
    let shift = bits - u32::from(prefix_len);
    shift == bits || (net >> shift) == (ip >> shift)
}

/// The connection's peer address, from whichever extension the server set.
pub fn peer_ip<B>(request: &http::Request<B>) -> Option<IpAddr> {
    let ext = request.extensions();
    ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| ext.get::<PeerAddr>().map(|p| p.0.ip()))
        .or_else(|| ext.get::<SocketAddr>().map(|s| s.ip()))
}

/// The client address after applying the trusted-proxy rule.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &http::HeaderMap,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    chain
        .iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or(chain.first().copied())
        .or(Some(peer))
}

/// A lazy [`Attributes`] view of one request.
pub struct RequestView<'a> {
    /// The request head.
    pub method: &'a http::Method,
    /// The request URI.
    pub uri: &'a http::Uri,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The client address (after the trusted-proxy rule).
    pub client: Option<IpAddr>,
    /// Header carrying the API key.
    pub api_key_header: &'a http::HeaderName,
}

impl Attributes for RequestView<'_> {
    fn attribute(&self, key: &DescriptorKey) -> Option<Cow<'_, str>> {
        let header = |name: &str| {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed)
        };
        match key {
            DescriptorKey::RemoteAddress => self.client.map(|ip| Cow::Owned(ip.to_string())),
            DescriptorKey::Path => Some(Cow::Borrowed(self.uri.path())),
            DescriptorKey::Method => Some(Cow::Borrowed(self.method.as_str())),
            DescriptorKey::ApiKey => self
                .headers
                .get(self.api_key_header)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed),
            DescriptorKey::Header(name) => header(name),
            DescriptorKey::Generic(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            "::1"
                .parse::<Cidr>()
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.0.0.2".parse().unwrap(),
        );
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let proxy = Some("10.0.0.1".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            Some("203.0.113.7".parse().unwrap())
        );
        let stranger = Some("198.51.100.1".parse().unwrap());
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger);
        assert_eq!(client_ip(stranger, &headers, &[]), stranger);
    }
}
