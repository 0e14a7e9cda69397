//! What the shortener accepts, checked before anything is stored.
//!
//! The chapter's shortener takes any long URL; a real one must refuse what
//! would hurt it or its users: schemes other than `http`/`https` (`javascript:`
//! links become stored XSS on the stats page), URLs longer than browsers and
//! proxies reliably handle, URLs with credentials (`https://paypal.com@evil.example/`
//! shows a trusted name before the real host: a phishing staple), and URLs pointing back at the shortener itself,
//! which would make redirect loops ([`crate::host`] says what "us" is). URLs
//! are parsed with the `url` crate, the URL standard's parser, so what is
//! judged here is what a browser will request. Custom aliases are limited to characters
//! that survive in a path without escaping.

use url::Url;

use crate::host::OwnAddresses;

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

/// Checks a long URL: length, parses it as browsers do (WHATWG, the `url`
/// crate), then scheme, host, no credentials, length once encoded, and not
/// pointing at us ([`crate::host`]). Returns the parsed URL, whose
/// serialization is what gets stored and sent in `Location`: ASCII only
/// (IDNA hosts as punycode, other non-ASCII percent-encoded).
pub fn long_url(url: &str, url_bytes_max: usize, own: &OwnAddresses) -> Result<Url, Invalid> {
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
    let parsed = Url::parse(url).map_err(|err| Invalid(format!("longUrl is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid(
            "longUrl must start with http:// or https://".into(),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Invalid("longUrl has no host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Invalid(
            "longUrl must not contain a user name or password (`user:pass@host`): \
             such links are a phishing staple; remove the part before `@`"
                .into(),
        ));
    }
    if parsed.as_str().len() > url_bytes_max {
        return Err(Invalid(format!(
            "longUrl is {} bytes once encoded (punycode host, percent-encoded path); \
             the limit is {url_bytes_max}",
            parsed.as_str().len()
        )));
    }
    if own.contains_url(&parsed) {
        return Err(Invalid(
            "longUrl points at this shortener, which would loop; \
             shorten the link's destination instead"
                .into(),
        ));
    }
    Ok(parsed)
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

    fn own() -> OwnAddresses {
        let public = Url::parse("https://sho.rt").unwrap();
        OwnAddresses::new("127.0.0.1:8081".parse().unwrap(), &[], Some(&public))
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
        assert!(long_url("http://user:pw@example.com/x", 2048, &own()).is_err());
        let encoded_long = format!("https://a.com/{}", "ü".repeat(500));
        assert!(
            long_url(&encoded_long, 2048, &own()).is_err(),
            "1 KB of text, 3 KB percent-encoded"
        );
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
