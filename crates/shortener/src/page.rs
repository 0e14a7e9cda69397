//! The shortener's web page: a form to shorten, the result with a copy
//! button, and a link's stats. Server-rendered HTML; the only script is the
//! one-line copy button, so the page works (minus copying) without it.

use service::html::escape;

use crate::analytics::Stats;
use crate::host;
use crate::store::Link;

const STYLE: &str = "
body { font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 42rem; color: #1d2430; padding: 0 1rem; }
h1 { font-size: 1.7rem; } form { display: grid; gap: .6rem; }
input { font: inherit; padding: .55rem .7rem; border: 1px solid #c5ccd6; border-radius: 6px; }
button { font: inherit; padding: .55rem 1rem; border: 0; border-radius: 6px; background: #1a5fb4; color: white; cursor: pointer; }
.result { margin-top: 1.5rem; padding: 1rem; background: #eef6ee; border-radius: 8px; }
.error { margin-top: 1.5rem; padding: 1rem; background: #fbeaea; border-radius: 8px; color: #8c1d18; }
code { font: 14px ui-monospace, monospace; } small { color: #5a6473; }
table { border-collapse: collapse; } td, th { padding: .25rem .8rem .25rem 0; text-align: left; }
";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// The home page, with the outcome of a form post if there was one:
/// `Ok((short URL, link))` or `Err(message)`.
pub fn index(outcome: Option<Result<(String, Link), String>>) -> String {
    let result = match outcome {
        None => String::new(),
        Some(Ok((short, link))) => format!(
            "<div class=\"result\"><a id=\"short\" href=\"{short}\">{short}</a> \
             <button type=\"button\" onclick=\"navigator.clipboard.writeText(document.getElementById('short').href)\">Copy</button>\
             <br><small>&rarr; {long}</small><br><a href=\"/stats/{code}\">stats</a></div>",
            short = escape(&short),
            long = escape(&link.long_url),
            code = escape(&link.code),
        ),
        Some(Err(message)) => format!("<div class=\"error\">{}</div>", escape(&message)),
    };
    let body = format!(
        "<h1>Shorten a URL</h1>\
         <form method=\"post\" action=\"/\">\
         <input name=\"url\" type=\"url\" placeholder=\"https://example.com/a/very/long/path\" required maxlength=\"2048\">\
         <input name=\"alias\" placeholder=\"custom alias (optional)\" maxlength=\"64\" pattern=\"[A-Za-z0-9_\\-]*\">\
         <button type=\"submit\">Shorten</button></form>{result}\
         <p><small>API: <code>POST /api/v1/data/shorten {{\"longUrl\": ...}}</code> &middot; \
         Chapter 8 of System Design Interview.</small></p>"
    );
    layout("URL shortener", &body)
}

/// A link's click statistics, with the target's host in Unicode when it is
/// an internationalized (punycode) one.
pub fn stats(link: &Link, stats: &Stats) -> String {
    let rows = |list: &[(String, i64)]| -> String {
        if list.is_empty() {
            return "<tr><td><small>none yet</small></td></tr>".into();
        }
        list.iter()
            .map(|(name, count)| format!("<tr><td>{}</td><td>{count}</td></tr>", escape(name)))
            .collect()
    };
    let body = format!(
        "<p><a href=\"/\">&larr; shorten another</a></p><h1>/{code}</h1>\
         <p>&rarr; <a href=\"{long}\">{long}</a>{unicode}</p><p><strong>{clicks}</strong> clicks by people \
         <small>(bots and link previews are counted apart)</small></p>\
         <h3>By day</h3><table>{days}</table><h3>Referrers</h3><table>{refs}</table>\
         <h3>Browsers</h3><table>{agents}</table><h3>Bots and previews</h3><table>{bots}</table>",
        code = escape(&link.code),
        long = escape(&link.long_url),
        unicode = host::unicode_host(&link.long_url)
            .map(|host| format!("<br><small>host in Unicode: {}</small>", escape(&host)))
            .unwrap_or_default(),
        clicks = stats.clicks,
        days = rows(&stats.by_day),
        refs = rows(&stats.referrers),
        agents = rows(&stats.user_agents),
        bots = rows(&stats.bots),
    );
    layout(&format!("/{} stats", link.code), &body)
}

/// The page for an unknown or expired code.
pub fn not_found(code: &str) -> String {
    let body = format!(
        "<h1>No such link</h1><p><code>/{}</code> does not exist or has expired.</p>\
         <p><a href=\"/\">Shorten a URL</a></p>",
        escape(code)
    );
    layout("Link not found", &body)
}
