//! What the shortener accepts, checked before anything is stored.
//!
//! The chapter's shortener takes any long URL; a real one must refuse what
//! would hurt it or its users: schemes other than `http`/`https` (`javascript:`
//! links become stored XSS on the stats page), URLs longer than browsers and
//! proxies reliably handle, and URLs pointing back at the shortener itself,
//! which would make redirect loops. Custom aliases are limited to characters
//! that survive in a path without escaping.

/// Why a long URL or alias was refused; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest alias accepted; short links are meant to be short.
pub const ALIAS_CHARS_MAX: usize = 64;

/// Checks a long URL: scheme, length, a host, and not our own host.
/// `own_hosts` are the `host[:port]` forms under which the shortener is reached.
pub fn long_url(url: &str, url_bytes_max: usize, own_hosts: &[String]) -> Result<(), Invalid> {
    if url.len() > url_bytes_max {
        return Err(Invalid(format!(
            "longUrl is {} bytes; the limit is {url_bytes_max}",
            url.len()
        )));
    }
    if url.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err(Invalid(
            "longUrl must not contain spaces or control characters".into(),
        ));
    }
    let (default_port, rest) = scheme_rest(url)
        .ok_or_else(|| Invalid("longUrl must start with http:// or https://".into()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Drop any user:password@ so `http://evil@us/` is judged by its real host.
    let host_port = authority
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host_port.is_empty() || host_port.starts_with(':') {
        return Err(Invalid("longUrl has no host".into()));
    }
    let (host, port) = split_port(&host_port);
    let port = port.unwrap_or(default_port);
    let points_at_us = own_hosts.iter().any(|own| {
        let own = own.to_ascii_lowercase();
        let (own_host, own_port) = split_port(&own);
        // An own host given without a port (a public name) matches any port.
        own_host == host && own_port.is_none_or(|own_port| own_port == port)
    });
    if points_at_us {
        return Err(Invalid(
            "longUrl points at this shortener, which would loop".into(),
        ));
    }
    Ok(())
}

/// The scheme's default port and what follows `scheme://`.
fn scheme_rest(url: &str) -> Option<(u16, &str)> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") {
        Some((443, &url[8..]))
    } else if lower.starts_with("http://") {
        Some((80, &url[7..]))
    } else {
        None
    }
}

/// Splits `host[:port]`; IPv6 literals keep their brackets.
fn split_port(host_port: &str) -> (&str, Option<u16>) {
    match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (host_port, None),
    }
}

/// Checks a custom alias: 1 to 64 of `A-Z a-z 0-9 - _`, not a reserved path.
pub fn alias(alias: &str) -> Result<(), Invalid> {
    if alias.is_empty() || alias.len() > ALIAS_CHARS_MAX {
        return Err(Invalid(format!(
            "alias must be 1 to {ALIAS_CHARS_MAX} characters"
        )));
    }
    if !alias
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        return Err(Invalid(
            "alias may only contain letters, digits, '-' and '_'".into(),
        ));
    }
    if matches!(
        alias,
        "api" | "healthz" | "metrics" | "static" | "favicon.ico"
    ) {
        return Err(Invalid(format!("alias `{alias}` is reserved")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec!["sho.rt".to_string(), "127.0.0.1:8081".to_string()]
    }

    #[test]
    fn accepts_plain_web_urls() {
        assert!(long_url("https://example.com/a?b=c#d", 2048, &own()).is_ok());
        assert!(long_url("HTTP://Example.com", 2048, &own()).is_ok());
    }

    #[test]
    fn refuses_other_schemes_long_urls_and_loops() {
        assert!(long_url("javascript:alert(1)", 2048, &own()).is_err());
        assert!(long_url("ftp://example.com", 2048, &own()).is_err());
        assert!(long_url("https://", 2048, &own()).is_err());
        assert!(long_url("https://a.com/ b", 2048, &own()).is_err());
        let long = format!("https://a.com/{}", "x".repeat(2048));
        assert!(long_url(&long, 2048, &own()).is_err());
        assert!(long_url("https://sho.rt/abc", 2048, &own()).is_err());
        assert!(long_url("http://user@127.0.0.1:8081/x", 2048, &own()).is_err());
        assert!(long_url("http://sho.rt:80/x", 2048, &own()).is_err());
        assert!(long_url("https://SHO.RT/x", 2048, &own()).is_err());
        assert!(
            long_url("http://127.0.0.1:9000/x", 2048, &own()).is_ok(),
            "another local service"
        );
    }

    #[test]
    fn aliases() {
        assert!(alias("my-link_1").is_ok());
        assert!(alias("").is_err());
        assert!(alias("a/b").is_err());
        assert!(alias("api").is_err());
        assert!(alias(&"a".repeat(65)).is_err());
    }
}
