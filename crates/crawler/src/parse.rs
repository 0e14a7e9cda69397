//! Content parser and URL extractor (콘텐츠 파서, URL 추출기), one
//! [`ContentHandler`] per content type so a new type plugs in without
//! touching the crawl loop (the chapter's extensibility, 확장성).
//!
//! HTML goes through `scraper` (html5ever, the browser-grade parser: any
//! byte soup parses, invalid UTF-8 is replaced). Links come from `a`, `area`,
//! `link` (`href`) and `iframe` (`src`), resolved against `<base href>` when
//! present; `rel=nofollow` links and pages with `<meta name=robots
//! content=nofollow>` give no links, `noindex` pages are not stored; the
//! canonical link is recorded. Sitemaps (`<loc>`) are read with `quick-xml`;
//! plain text contributes its text for duplicate detection only.

use scraper::{Html, Selector};
use url::Url;

/// A link found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target as written (resolved by the caller).
    pub href: String,
    /// Marked `rel=nofollow`.
    pub nofollow: bool,
}

/// What a handler extracted.
#[derive(Debug, Default, Clone)]
pub struct Extracted {
    /// Links, in document order.
    pub links: Vec<Link>,
    /// The base to resolve links against (`<base href>` or the page URL).
    pub base: Option<Url>,
    /// Text for near-duplicate detection.
    pub text: String,
    /// `<link rel=canonical>`.
    pub canonical: Option<String>,
    /// `<meta name=robots content=noindex>`.
    pub noindex: bool,
    /// `<meta name=robots content=nofollow>`.
    pub nofollow: bool,
    /// `<title>`.
    pub title: Option<String>,
}

/// Reads one content type.
pub trait ContentHandler: Send + Sync {
    /// Handler name (for stats).
    fn name(&self) -> &'static str;
    /// Whether this handler reads `media_type` at `url`.
    fn accepts(&self, media_type: &str, url: &Url) -> bool;
    /// Extracts links and text from `body`.
    fn extract(&self, url: &Url, body: &[u8]) -> Extracted;
}

/// The handlers in order; the first that accepts wins.
pub struct Handlers(Vec<Box<dyn ContentHandler>>);

impl Default for Handlers {
    fn default() -> Self {
        Self(vec![
            Box::new(SitemapHandler),
            Box::new(HtmlHandler),
            Box::new(TextHandler),
        ])
    }
}

impl Handlers {
    /// Adds a handler ahead of the built-in ones.
    pub fn register(&mut self, handler: Box<dyn ContentHandler>) {
        self.0.insert(0, handler);
    }

    /// The handler for a response, if any.
    pub fn find(&self, media_type: &str, url: &Url) -> Option<&dyn ContentHandler> {
        self.0
            .iter()
            .find(|h| h.accepts(media_type, url))
            .map(AsRef::as_ref)
    }

    /// Whether any handler reads `media_type` (the downloader's type filter).
    pub fn any_accepts(&self, media_type: &str, url: &Url) -> bool {
        self.find(media_type, url).is_some()
    }
}

/// HTML pages.
pub struct HtmlHandler;

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a fixed selector parses")
}

impl ContentHandler for HtmlHandler {
    fn name(&self) -> &'static str {
        "html"
    }

    fn accepts(&self, media_type: &str, _url: &Url) -> bool {
        matches!(media_type, "text/html" | "application/xhtml+xml" | "")
    }

    fn extract(&self, url: &Url, body: &[u8]) -> Extracted {
        let text = String::from_utf8_lossy(body);
        let doc = Html::parse_document(&text);
        let mut out = Extracted::default();
        for meta in doc.select(&selector("meta[name]")) {
            let name = meta.value().attr("name").unwrap_or_default();
            if name.eq_ignore_ascii_case("robots") {
                let content = meta
                    .value()
                    .attr("content")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                for word in content.split(',').map(str::trim) {
                    match word {
                        "nofollow" => out.nofollow = true,
                        "noindex" => out.noindex = true,
                        "none" => {
                            out.nofollow = true;
                            out.noindex = true;
                        }
                        _ => {}
                    }
                }
            }
        }
        out.base = doc
            .select(&selector("base[href]"))
            .next()
            .and_then(|b| b.value().attr("href"))
            .and_then(|href| url.join(href.trim()).ok())
            .or_else(|| Some(url.clone()));
        for link in doc.select(&selector("link[rel][href]")) {
            let rel = link.value().attr("rel").unwrap_or_default();
            if rel
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("canonical"))
            {
                out.canonical = link.value().attr("href").map(|h| h.trim().to_string());
            }
        }
        out.title = doc
            .select(&selector("title"))
            .next()
            .map(|t| t.text().collect::<String>().trim().to_string());
        if !out.nofollow {
            for el in doc.select(&selector("a[href], area[href], link[href], iframe[src]")) {
                let value = el.value();
                let href = value
                    .attr("href")
                    .or_else(|| value.attr("src"))
                    .unwrap_or_default();
                let rel = value.attr("rel").unwrap_or_default();
                if value.name() == "link"
                    && rel.split_ascii_whitespace().any(|r| {
                        r.eq_ignore_ascii_case("canonical") || r.eq_ignore_ascii_case("alternate")
                    })
                {
                    // The canonical is recorded, not crawled twice over.
                    continue;
                }
                let nofollow = rel
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("nofollow"));
                out.links.push(Link {
                    href: href.to_string(),
                    nofollow,
                });
            }
        }
        let body_sel = selector("body");
        out.text = doc
            .select(&body_sel)
            .next()
            .map(|b| b.text().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        out
    }
}

/// `sitemap.xml` (urlset and sitemapindex).
pub struct SitemapHandler;

impl ContentHandler for SitemapHandler {
    fn name(&self) -> &'static str {
        "sitemap"
    }

    fn accepts(&self, media_type: &str, url: &Url) -> bool {
        matches!(media_type, "application/xml" | "text/xml") || url.path().ends_with("sitemap.xml")
    }

    fn extract(&self, url: &Url, body: &[u8]) -> Extracted {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_reader(body);
        let mut out = Extracted {
            base: Some(url.clone()),
            ..Default::default()
        };
        let mut in_loc = false;
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => in_loc = e.local_name().as_ref() == b"loc",
                Ok(Event::End(_)) => in_loc = false,
                Ok(Event::Text(t)) if in_loc => {
                    let text = String::from_utf8_lossy(t.as_ref()).trim().to_string();
                    if !text.is_empty() {
                        out.links.push(Link {
                            href: text,
                            nofollow: false,
                        });
                    }
                }
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
            buf.clear();
            if out.links.len() >= 50_000 {
                // The sitemap protocol's own limit per file.
                break;
            }
        }
        out
    }
}

/// Plain text: no links, text for dedup.
pub struct TextHandler;

impl ContentHandler for TextHandler {
    fn name(&self) -> &'static str {
        "text"
    }

    fn accepts(&self, media_type: &str, _url: &Url) -> bool {
        media_type == "text/plain"
    }

    fn extract(&self, url: &Url, body: &[u8]) -> Extracted {
        Extracted {
            base: Some(url.clone()),
            text: String::from_utf8_lossy(body).into_owned(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://a.b/dir/page.html").expect("valid")
    }

    #[test]
    fn html_links_base_nofollow_canonical() {
        let html = br#"<html><head><base href="/other/"><link rel="canonical" href="http://a.b/canon">
            <link rel="stylesheet" href="s.css"><title> T </title></head><body>
            <a href="x.html">x</a><a href="y" rel="nofollow">y</a><area href="z"><iframe src="f"></iframe>
            <a href="mailto:q@r">m</a></body></html>"#;
        let out = HtmlHandler.extract(&url(), html);
        assert_eq!(out.base.expect("base").as_str(), "http://a.b/other/");
        assert_eq!(out.canonical.as_deref(), Some("http://a.b/canon"));
        assert_eq!(out.title.as_deref(), Some("T"));
        let hrefs: Vec<(&str, bool)> = out
            .links
            .iter()
            .map(|l| (l.href.as_str(), l.nofollow))
            .collect();
        assert_eq!(
            hrefs,
            vec![
                ("s.css", false),
                ("x.html", false),
                ("y", true),
                ("z", false),
                ("f", false),
                ("mailto:q@r", false)
            ]
        );
    }

    #[test]
    fn meta_robots() {
        let html = br#"<meta name="ROBOTS" content="noindex, nofollow"><a href="x">x</a>"#;
        let out = HtmlHandler.extract(&url(), html);
        assert!(out.noindex && out.nofollow);
        assert!(out.links.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 256) as u8).collect();
        let _ = HtmlHandler.extract(&url(), &junk);
        let _ = SitemapHandler.extract(&url(), &junk);
        let _ = HtmlHandler.extract(&url(), b"<a href=\"\xff\xfe\">");
    }

    #[test]
    fn sitemap_locs() {
        let xml = b"<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"><url><loc> http://a.b/1 </loc></url><url><loc>http://a.b/2</loc><lastmod>2024</lastmod></url></urlset>";
        let out =
            SitemapHandler.extract(&Url::parse("http://a.b/sitemap.xml").expect("valid"), xml);
        let hrefs: Vec<&str> = out.links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(hrefs, vec!["http://a.b/1", "http://a.b/2"]);
        let handlers = Handlers::default();
        assert_eq!(
            handlers.find("text/html", &url()).map(|h| h.name()),
            Some("html")
        );
        assert_eq!(
            handlers.find("text/plain", &url()).map(|h| h.name()),
            Some("text")
        );
        assert!(handlers.find("image/png", &url()).is_none());
    }
}
