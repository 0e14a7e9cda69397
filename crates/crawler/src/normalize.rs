//! URL normalization: two spellings of one page must give one key, or the
//! URL-seen test lets duplicates through (the chapter's "이미 방문한 URL?").
//!
//! The WHATWG parser (`url`) already lowercases the scheme and host, drops
//! default ports, resolves dot segments and percent-encodes what must be. On
//! top of it we remove the fragment (never sent to the server), drop an empty
//! query (`?`), sort the query pairs (the order of parameters does not change
//! the page on the servers we crawl; an option, since some sites differ), and
//! uppercase percent-escapes (`%2f` and `%2F` are one byte). Only http and
//! https are crawlable.

use url::Url;

/// Why a URL is not crawlable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// It does not parse.
    #[error("not a URL: {0}")]
    Parse(String),
    /// Not http or https (mailto:, javascript:, ftp: ...).
    #[error("scheme {0} is not crawled (http and https are)")]
    Scheme(String),
    /// No host.
    #[error("URL has no host")]
    NoHost,
}

/// Normalization options.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeOptions {
    /// Sort query parameters by name, then value.
    pub sort_query: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self { sort_query: true }
    }
}

/// Parses `text` (absolute) and normalizes it.
pub fn normalize_str(text: &str, opts: NormalizeOptions) -> Result<Url, UrlError> {
    let url = Url::parse(text.trim()).map_err(|err| UrlError::Parse(err.to_string()))?;
    normalize(url, opts)
}

/// Resolves `href` against `base` and normalizes the result.
pub fn resolve(base: &Url, href: &str, opts: NormalizeOptions) -> Result<Url, UrlError> {
    let url = base
        .join(href.trim())
        .map_err(|err| UrlError::Parse(err.to_string()))?;
    normalize(url, opts)
}

/// Normalizes a parsed URL (see the module doc).
pub fn normalize(mut url: Url, opts: NormalizeOptions) -> Result<Url, UrlError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(UrlError::Scheme(other.to_string())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    url.set_fragment(None);
    // A trailing dot names the same host (`example.com.`).
    if let Some(host) = url.host_str()
        && host.len() > 1
        && host.ends_with('.')
        && url.domain().is_some()
    {
        let trimmed = host.trim_end_matches('.').to_string();
        if !trimmed.is_empty() {
            let _ = url.set_host(Some(&trimmed));
        }
    }
    let path = upper_escapes(url.path());
    if path != url.path() {
        url.set_path(&path);
    }
    match url.query() {
        None => {}
        Some("") => url.set_query(None),
        Some(query) => {
            let query = upper_escapes(query);
            let query = if opts.sort_query {
                let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
                pairs.sort_unstable();
                pairs.join("&")
            } else {
                query
            };
            url.set_query(if query.is_empty() { None } else { Some(&query) });
        }
    }
    Ok(url)
}

/// `%2f` → `%2F` (RFC 3986 §6.2.2.1).
fn upper_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            out.push('%');
            out.push(bytes[i + 1].to_ascii_uppercase() as char);
            out.push(bytes[i + 2].to_ascii_uppercase() as char);
            i += 3;
        } else {
            let ch = text[i..].chars().next().expect("i is on a char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The politeness key of a URL: `host:port` (one back queue per key).
pub fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// A crude registrable domain: the last two labels of a name, the whole of an
/// IP address (no public-suffix list: `same-domain` scope on `a.co.uk` is wider
/// than it should be, and the docs say so).
pub fn domain_of(url: &Url) -> String {
    match url.domain() {
        Some(domain) => {
            let labels: Vec<&str> = domain.rsplitn(3, '.').collect();
            if labels.len() >= 2 {
                format!("{}.{}", labels[1], labels[0])
            } else {
                domain.to_string()
            }
        }
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(text: &str) -> String {
        normalize_str(text, NormalizeOptions::default())
            .expect("valid")
            .to_string()
    }

    #[test]
    fn equivalent_spellings_are_equal() {
        let canon = "http://example.com/a/c?x=1&y=2";
        for text in [
            "HTTP://EXAMPLE.com:80/a/b/../c?y=2&x=1",
            "http://example.com/a/./c?x=1&y=2#frag",
            "http://example.com./a/c?y=2&x=1",
            "http://Example.COM/a/c?x=1&y=2&",
        ] {
            assert_eq!(n(text), canon, "{text}");
        }
        assert_eq!(n("https://a.b:443/%7ex?"), "https://a.b/%7Ex");
        assert_eq!(n("http://a.b"), "http://a.b/");
    }

    #[test]
    fn non_http_schemes_are_refused() {
        let opts = NormalizeOptions::default();
        assert!(matches!(
            normalize_str("mailto:a@b.c", opts),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            normalize_str("javascript:void(0)", opts),
            Err(UrlError::Scheme(_))
        ));
        assert!(normalize_str("not a url", opts).is_err());
    }

    #[test]
    fn host_keys_and_domains() {
        let url = Url::parse("https://www.Example.com/x").expect("valid");
        assert_eq!(host_key(&url), "www.example.com:443");
        assert_eq!(domain_of(&url), "example.com");
        let ip = Url::parse("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(domain_of(&ip), "127.0.0.1");
    }

    fn url_strategy() -> impl Strategy<Value = String> {
        use proptest::sample::select;
        let scheme = select(vec!["http", "HTTP", "https"]);
        let host = select(vec!["example.com", "EXAMPLE.com", "a.b.c", "127.0.0.1"]);
        let port = select(vec!["", ":80", ":8080"]);
        let seg = select(vec!["a", "b", ".", "..", "%7e", "%7E", "x y", "é"]);
        let path = proptest::collection::vec(seg, 0..5).prop_map(|s| s.join("/"));
        let param = select(vec!["a=1", "b=2", "c=%2f", "d", ""]);
        let query = proptest::collection::vec(param, 0..4).prop_map(|q| q.join("&"));
        let frag = prop_oneof![Just(String::new()), Just("#top".to_string())];
        (scheme, host, port, path, query, frag)
            .prop_map(|(s, h, p, path, q, f)| format!("{s}://{h}{p}/{path}?{q}{f}"))
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(text in url_strategy()) {
            let opts = NormalizeOptions::default();
            let once = normalize_str(&text, opts).expect("valid");
            let twice = normalize(once.clone(), opts).expect("valid");
            prop_assert_eq!(once.as_str(), twice.as_str());
            let reparsed = normalize_str(once.as_str(), opts).expect("valid");
            prop_assert_eq!(once.as_str(), reparsed.as_str());
        }

        #[test]
        fn cosmetic_changes_normalize_equal(text in url_strategy(), shuffle in any::<u64>()) {
            let opts = NormalizeOptions::default();
            let base = normalize_str(&text, opts).expect("valid");
            // Same URL spelled differently: uppercase scheme and host, a
            // fragment, the query pairs in another order, lowercase escapes.
            let mut pairs: Vec<String> = base.query().unwrap_or("").split('&').map(str::to_string).collect();
            let mut rng = fastrand::Rng::with_seed(shuffle);
            rng.shuffle(&mut pairs);
            let query = pairs.join("&").to_lowercase_escapes();
            let host = base.host_str().expect("host").to_uppercase();
            let port = base.port().map(|p| format!(":{p}")).unwrap_or_default();
            let variant = format!("{}://{host}{port}{}?{query}#x", base.scheme().to_uppercase(), base.path());
            let other = normalize_str(&variant, opts).expect("valid");
            prop_assert_eq!(base.as_str(), other.as_str());
        }
    }

    trait LowerEscapes {
        fn to_lowercase_escapes(&self) -> String;
    }
    impl LowerEscapes for String {
        fn to_lowercase_escapes(&self) -> String {
            let mut out = String::new();
            let mut rest = self.as_str();
            while let Some(pos) = rest.find('%') {
                out.push_str(&rest[..pos]);
                let esc: String = rest[pos..].chars().take(3).collect();
                out.push_str(&esc.to_lowercase());
                rest = &rest[pos + esc.len()..];
            }
            out.push_str(rest);
            out
        }
    }
}
