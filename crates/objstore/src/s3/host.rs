//! Virtual-host-style addressing: `BUCKET.DOMAIN[:port]` names the bucket in the
//! `Host` header instead of the path (what AWS SDKs do by default).
//!
//! Why a module: `s3s`'s own parser treats any unknown host as a bucket name (S3's
//! CNAME form), which turns path-style requests to `127.0.0.1:9000` into requests for
//! a bucket named `127.0.0.1:9000`. Here a host is virtual-host-style only when it
//! ends in `.DOMAIN` (the `domain` setting, e.g. `s3.localhost`); every other host,
//! the domain itself and IP addresses included, is path-style.

use std::borrow::Cow;

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The `Host` parser for base domain `domain` (lowercase, without a port).
pub(crate) struct Domain(pub(crate) String);

/// `host` without a trailing `:port`.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl S3Host for Domain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = strip_port(host).to_ascii_lowercase();
        let bucket = name
            .strip_suffix(self.0.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|b| !b.is_empty());
        Ok(match bucket {
            Some(b) => VirtualHost::new(self.0.as_str()).with_bucket(Cow::Owned(b.to_string())),
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subdomains_of_the_domain_name_buckets() {
        let d = Domain("s3.localhost".into());
        let bucket = |h: &str| d.parse_host_header(h).unwrap().bucket().map(str::to_string);
        assert_eq!(
            bucket("photos.s3.localhost:9000").as_deref(),
            Some("photos")
        );
        assert_eq!(bucket("Photos.S3.localhost").as_deref(), Some("photos"));
        assert_eq!(bucket("a.b.s3.localhost").as_deref(), Some("a.b"));
        assert_eq!(bucket("s3.localhost:9000"), None);
        assert_eq!(bucket("127.0.0.1:9000"), None);
        assert_eq!(bucket("xs3.localhost"), None);
        assert_eq!(bucket(".s3.localhost"), None);
    }
}
