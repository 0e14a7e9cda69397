//! Which hosts are "us": the redirect-loop check, done the way browsers
//! resolve hosts.
//!
//! A short link whose long URL points back at the shortener makes a redirect
//! loop (two such aliases pointing at each other cost a `curl -L` 16 clicks).
//! Comparing host strings is easy to defeat, because a browser reaches the
//! same address under many spellings; so the target host is first put in the
//! form a browser connects to ([`canonical`]), following WHATWG URL host
//! parsing through the `url` crate (the parser of the URL standard):
//!
//! - IPv4 shorthand and numeric forms are addresses: `127.1`, `2130706433`,
//!   `0x7f000001`, `0177.0.0.1` are all `127.0.0.1`;
//! - names are ASCII (IDNA → punycode) and lower case, and trailing dots are
//!   dropped (`localhost.`, `sho.rt.`); what is left is parsed again, so
//!   `127.0.0.1.` is an address too;
//! - an IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) is its IPv4 address.
//!
//! **The rule.** A URL points at us ([`OwnAddresses::contains`]) when
//!
//! - its host is a name of the configured public URL (`public_url`), at any
//!   port (a proxy in front of us may listen on another), or that URL's
//!   address at its port;
//! - or it is on the port we listen on, and its host is the bind address, or
//!   any address of this machine when bound to the unspecified address
//!   (`0.0.0.0`/`[::]`: the interface addresses at startup, and loopback);
//!   when bound to loopback or unspecified, any loopback spelling counts:
//!   the whole of `127.0.0.0/8` and `[::1]` (conservative: one of them may
//!   be another socket), `localhost` and `*.localhost` (RFC 6761: never
//!   resolved elsewhere), and `0.0.0.0`/`[::]`, which the kernel connects to
//!   this machine's loopback.
//!
//! Such URLs are refused outright rather than followed: a short link to one
//! of our own short links is never stored, so no redirect chain can pass
//! through us, whatever it would lead to (what Bitly-like services do). Other
//! ports on loopback are other local services and stay allowed.
//!
//! [`unicode_host`] turns a stored punycode host back into Unicode for the
//! stats page; links are stored and redirected in ASCII only.
//!
//! Not covered: names we are not told about that resolve to us (wildcard DNS
//! such as `127.0.0.1.nip.io`; resolving every target is slow and changes
//! over time), and loops through another service that proxies to us under a
//! name other than `public_url`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::{Host, Url};

/// A host as a browser connects to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canonical {
    /// An address; IPv4-mapped IPv6 addresses are given as IPv4.
    Ip(IpAddr),
    /// A name: ASCII (punycode), lower case, no trailing dot.
    Domain(String),
}

/// The canonical form of a host the `url` crate parsed.
pub fn canonical(host: Host<&str>) -> Canonical {
    match host {
        Host::Ipv4(ip) => Canonical::Ip(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Canonical::Ip(IpAddr::V6(ip).to_canonical()),
        Host::Domain(name) => {
            let trimmed = name.trim_end_matches('.');
            if trimmed.len() < name.len() {
                // `127.0.0.1.`: what is left may be an address.
                match Host::parse(trimmed) {
                    Ok(Host::Ipv4(ip)) => return canonical(Host::Ipv4(ip)),
                    Ok(Host::Ipv6(ip)) => return canonical(Host::Ipv6(ip)),
                    _ => {}
                }
            }
            Canonical::Domain(trimmed.to_ascii_lowercase())
        }
    }
}

/// The canonical host of `url`, if it has one.
pub fn canonical_host(url: &Url) -> Option<Canonical> {
    url.host().map(canonical)
}

/// The Unicode form of `url`'s host when it differs from the stored ASCII
/// (punycode) one, for people to read: `xn--bcher-kva.example` →
/// `bücher.example`. Never used for redirects or comparisons.
pub fn unicode_host(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    let Some(Host::Domain(ascii)) = parsed.host() else {
        return None;
    };
    let (unicode, outcome) = idna::domain_to_unicode(ascii);
    (outcome.is_ok() && unicode != ascii).then_some(unicode)
}

/// Whether `name` is `localhost` or a subdomain of it (RFC 6761: loopback).
fn is_localhost_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// What an address is compared as: every loopback and unspecified address
/// reaches this machine's loopback, so they compare as `127.0.0.1`.
fn comparison_key(ip: IpAddr) -> IpAddr {
    let ip = ip.to_canonical();
    if ip.is_loopback() || ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

/// Everywhere this server answers; see the module doc for the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnAddresses {
    /// The port we listen on.
    port: u16,
    /// Addresses (comparison keys) that are us on `port`.
    ips: Vec<IpAddr>,
    /// Addresses (comparison keys) that are us only on the given port.
    endpoints: Vec<(IpAddr, u16)>,
    /// Names that are us on any port.
    names: Vec<String>,
}

impl OwnAddresses {
    /// The addresses of a server bound to `bind`, with `interface_ips` (only
    /// used when `bind` is unspecified: see [`interface_ips`]) and the public
    /// base URL, if configured.
    pub fn new(bind: SocketAddr, interface_ips: &[IpAddr], public_url: Option<&Url>) -> Self {
        let mut ips = vec![comparison_key(bind.ip())];
        if bind.ip().is_unspecified() {
            ips.extend(interface_ips.iter().copied().map(comparison_key));
        }
        ips.sort();
        ips.dedup();
        let mut own = Self {
            port: bind.port(),
            ips,
            endpoints: Vec::new(),
            names: Vec::new(),
        };
        if let Some(url) = public_url
            && let Some(host) = canonical_host(url)
        {
            let port = url.port_or_known_default().unwrap_or(bind.port());
            match host {
                Canonical::Domain(name) if is_localhost_name(&name) => {
                    own.endpoints.push((IpAddr::V4(Ipv4Addr::LOCALHOST), port));
                }
                Canonical::Domain(name) => own.names.push(name),
                Canonical::Ip(ip) => own.endpoints.push((comparison_key(ip), port)),
            }
        }
        own
    }

    /// Whether a URL to `host` at `port` reaches this server.
    pub fn contains(&self, host: &Canonical, port: u16) -> bool {
        let ip = match host {
            Canonical::Domain(name) if is_localhost_name(name) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Canonical::Domain(name) => return self.names.iter().any(|own| own == name),
            Canonical::Ip(ip) => comparison_key(*ip),
        };
        self.endpoints.contains(&(ip, port)) || (port == self.port && self.ips.contains(&ip))
    }

    /// Whether `url` points at this server.
    pub fn contains_url(&self, url: &Url) -> bool {
        match (canonical_host(url), url.port_or_known_default()) {
            (Some(host), Some(port)) => self.contains(&host, port),
            _ => false,
        }
    }
}

/// This machine's interface addresses, for a server bound to the unspecified
/// address; empty (loopback is then still covered) if they cannot be listed.
pub fn interface_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(|interface| interface.ip()).collect(),
        Err(err) => {
            tracing::warn!("cannot list interface addresses for the loop check: {err}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(url: &str) -> Canonical {
        canonical_host(&Url::parse(url).unwrap()).unwrap()
    }

    fn ip(text: &str) -> Canonical {
        Canonical::Ip(text.parse().unwrap())
    }

    #[test]
    fn ipv4_shorthand_and_numeric_forms_are_addresses() {
        for form in [
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0177.0.0.1",
        ] {
            assert_eq!(
                host_of(&format!("http://{form}/")),
                ip("127.0.0.1"),
                "{form}"
            );
        }
        assert_eq!(host_of("http://0/"), ip("0.0.0.0"));
    }

    #[test]
    fn trailing_dots_are_dropped() {
        assert_eq!(host_of("http://127.0.0.1./"), ip("127.0.0.1"));
        assert_eq!(host_of("http://127.1./"), ip("127.0.0.1"));
        assert_eq!(
            host_of("http://localhost./"),
            Canonical::Domain("localhost".into())
        );
        assert_eq!(
            host_of("http://Sho.RT../"),
            Canonical::Domain("sho.rt".into())
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        assert_eq!(host_of("http://[::ffff:127.0.0.1]/"), ip("127.0.0.1"));
        assert_eq!(host_of("http://[::ffff:7f00:1]/"), ip("127.0.0.1"));
        assert_eq!(host_of("http://[0:0:0:0:0:ffff:a00:5]/"), ip("10.0.0.5"));
        assert_eq!(host_of("http://[::1]/"), ip("::1"), "plain IPv6 stays IPv6");
    }

    #[test]
    fn names_are_punycode_lower_case() {
        assert_eq!(
            host_of("http://BÜCHER.example/"),
            Canonical::Domain("xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn unicode_host_is_for_display_only() {
        assert_eq!(
            unicode_host("http://xn--bcher-kva.example/x").as_deref(),
            Some("bücher.example")
        );
        assert_eq!(unicode_host("http://example.com/x"), None);
        assert_eq!(unicode_host("http://127.0.0.1/x"), None);
    }

    fn loopback_server() -> OwnAddresses {
        let public = Url::parse("https://sho.rt").unwrap();
        OwnAddresses::new("127.0.0.1:8081".parse().unwrap(), &[], Some(&public))
    }

    fn is_us(own: &OwnAddresses, url: &str) -> bool {
        own.contains_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn every_loopback_spelling_on_our_port_is_us_when_bound_to_loopback() {
        let own = loopback_server();
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "[::ffff:127.0.0.1]",
            "127.0.0.1.",
            "127.2.3.4",
            "localhost",
            "localhost.",
            "LocalHost",
            "api.localhost",
            "0.0.0.0",
            "[::]",
            "[::1]",
        ] {
            assert!(is_us(&own, &format!("http://{host}:8081/x")), "{host}");
            assert!(
                !is_us(&own, &format!("http://{host}:9000/x")),
                "{host} on another port is another service"
            );
        }
        assert!(!is_us(&own, "http://10.0.0.5:8081/x"));
        assert!(!is_us(&own, "http://example.com:8081/x"));
    }

    #[test]
    fn public_names_are_us_on_any_port() {
        let own = loopback_server();
        for url in [
            "https://sho.rt/x",
            "http://sho.rt/x",
            "https://SHO.RT./x",
            "https://sho.rt:8443/x",
        ] {
            assert!(is_us(&own, url), "{url}");
        }
        assert!(!is_us(&own, "https://not.sho.rt/x"));
    }

    #[test]
    fn a_public_address_is_us_at_its_port() {
        let public = Url::parse("http://[::ffff:10.0.0.5]:8000").unwrap();
        let own = OwnAddresses::new("127.0.0.1:8081".parse().unwrap(), &[], Some(&public));
        assert!(is_us(&own, "http://10.0.0.5:8000/x"));
        assert!(is_us(&own, "http://167772165:8000/x"));
        assert!(!is_us(&own, "http://10.0.0.5:8001/x"));
        let local = Url::parse("http://localhost:8000").unwrap();
        let own = OwnAddresses::new("127.0.0.1:8081".parse().unwrap(), &[], Some(&local));
        assert!(is_us(&own, "http://127.1:8000/x"));
        assert!(is_us(&own, "http://[::1]:8000/x"));
    }

    #[test]
    fn unspecified_bind_covers_every_interface_and_loopback() {
        let interfaces: Vec<IpAddr> = vec![
            "127.0.0.1".parse().unwrap(),
            "192.168.1.20".parse().unwrap(),
            "fd00::20".parse().unwrap(),
        ];
        let own = OwnAddresses::new("0.0.0.0:8081".parse().unwrap(), &interfaces, None);
        for host in [
            "192.168.1.20",
            "3232235796",
            "[::ffff:192.168.1.20]",
            "[fd00::20]",
            "127.1",
            "[::1]",
            "0.0.0.0",
            "localhost.",
        ] {
            assert!(is_us(&own, &format!("http://{host}:8081/x")), "{host}");
        }
        assert!(!is_us(&own, "http://192.168.1.21:8081/x"));
    }

    #[test]
    fn a_specific_bind_address_is_us_but_loopback_is_not() {
        let own = OwnAddresses::new("10.0.0.5:8081".parse().unwrap(), &[], None);
        assert!(is_us(&own, "http://10.0.0.5:8081/x"));
        assert!(is_us(&own, "http://[::ffff:a00:5]:8081/x"));
        assert!(
            !is_us(&own, "http://127.0.0.1:8081/x"),
            "nothing of ours listens on loopback"
        );
    }
}
