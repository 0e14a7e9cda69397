//! The cache key: which requests are "the same object" (the notes: an edge
//! caches by "요청 경로, 질의 문자열, 쿠키, 요청 헤더").
//!
//! A key is built from the (already canonical, see [`crate::normalize`])
//! path, the `Host` (unless a route opts out), the query string normalised
//! as the route says ([`QueryMode`]), and the values of the headers and
//! cookies a route selects. `Vary` is *not* here: it is the origin's say,
//! per response, handled by [`super::vary`] inside one key.
//!
//! The parts are kept apart in [`Key`] so purging by URL or prefix can
//! match the path and query without re-parsing the joined string.

use http::HeaderMap;
use http::header::{COOKIE, HOST};

use super::config::{KeyOptions, QueryMode};

/// A request's cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The host part (empty when the route leaves it out).
    pub host: String,
    /// The path.
    pub path: String,
    /// The normalised query, without `?` (empty when none).
    pub query: String,
    /// Every part joined: what the store indexes by.
    pub full: String,
}

/// The key of a request for `path` and `query` with `headers`.
pub fn build(options: &KeyOptions, path: &str, query: Option<&str>, headers: &HeaderMap) -> Key {
    let host = if options.host {
        headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    } else {
        String::new()
    };
    let query = normalize_query(options, query.unwrap_or(""));
    let mut full = String::with_capacity(host.len() + path.len() + query.len() + 2);
    full.push_str(&host);
    full.push_str(path);
    if !query.is_empty() {
        full.push('?');
        full.push_str(&query);
    }
    for name in &options.headers {
        // `\n` cannot occur in a header value: the parts stay unambiguous.
        full.push_str("\nh:");
        full.push_str(name);
        full.push('=');
        for value in headers.get_all(name.as_str()) {
            full.push_str(&String::from_utf8_lossy(value.as_bytes()));
            full.push(',');
        }
    }
    for name in &options.cookies {
        full.push_str("\nc:");
        full.push_str(name);
        full.push('=');
        if let Some(value) = cookie(headers, name) {
            full.push_str(value);
        }
    }
    Key {
        host,
        path: path.to_string(),
        query,
        full,
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim())
        })
}

/// The query as the key sees it.
pub fn normalize_query(options: &KeyOptions, query: &str) -> String {
    match options.query {
        QueryMode::Exact => query.to_string(),
        QueryMode::Ignore => String::new(),
        QueryMode::Sorted | QueryMode::Allow => {
            let mut pairs: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .filter(|pair| {
                    options.query != QueryMode::Allow || {
                        let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
                        options.query_params.iter().any(|kept| kept == name)
                    }
                })
                .collect();
            pairs.sort_unstable();
            pairs.join("&")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn sorted_queries_are_one_object() {
        let options = KeyOptions::default();
        let h = headers(&[("host", "Example.com")]);
        let a = build(&options, "/a", Some("b=2&a=1"), &h);
        let b = build(&options, "/a", Some("a=1&&b=2"), &h);
        assert_eq!(a, b);
        assert_eq!(a.full, "example.com/a?a=1&b=2");
        let exact = KeyOptions {
            query: QueryMode::Exact,
            ..KeyOptions::default()
        };
        assert_ne!(
            build(&exact, "/a", Some("b=2&a=1"), &h),
            build(&exact, "/a", Some("a=1&b=2"), &h)
        );
    }

    #[test]
    fn allow_and_ignore_drop_parameters() {
        let allow = KeyOptions {
            query: QueryMode::Allow,
            query_params: vec!["page".into()],
            ..KeyOptions::default()
        };
        assert_eq!(normalize_query(&allow, "utm=x&page=2"), "page=2");
        let ignore = KeyOptions {
            query: QueryMode::Ignore,
            ..KeyOptions::default()
        };
        assert_eq!(normalize_query(&ignore, "v=1"), "");
    }

    #[test]
    fn selected_headers_and_cookies_split_objects() {
        let options = KeyOptions {
            host: false,
            headers: vec!["x-device".into()],
            cookies: vec!["lang".into()],
            ..KeyOptions::default()
        };
        let ko = headers(&[("x-device", "phone"), ("cookie", "sid=1; lang=ko")]);
        let en = headers(&[("x-device", "phone"), ("cookie", "lang=en; sid=1")]);
        let ko_again = headers(&[("x-device", "phone"), ("cookie", "lang=ko; sid=2")]);
        assert_ne!(
            build(&options, "/", None, &ko),
            build(&options, "/", None, &en)
        );
        assert_eq!(
            build(&options, "/", None, &ko),
            build(&options, "/", None, &ko_again)
        );
        assert_eq!(cookie(&ko, "lang"), Some("ko"));
        assert_eq!(cookie(&ko, "missing"), None);
    }
}
