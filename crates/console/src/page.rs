//! The console's HTML, written by hand: a few small functions and one style
//! sheet. Every dynamic string goes through `service::html::escape`, since
//! system names and down-reasons could carry `<` or `&`.

use service::html::escape;
use service::{Status, SystemInfo};

const STYLE: &str = "
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; color: #1d2430; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0; } p.sub { color: #5a6473; margin-top: .2rem; }
table { border-collapse: collapse; width: 100%; margin-top: 1.2rem; }
th, td { text-align: left; padding: .5rem .7rem; border-bottom: 1px solid #e3e7ee; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: #5a6473; }
code { font: 13px ui-monospace, monospace; }
.up { color: #0f7b3e; font-weight: 600; } .down { color: #b3261e; font-weight: 600; }
.starting { color: #9a6700; font-weight: 600; }
pre { background: #f5f7fa; padding: 1rem; overflow-x: auto; font-size: 13px; }
a { color: #1a5fb4; }
";

/// The page around `body`, reloading itself every `refresh_s` seconds.
pub(crate) fn layout(title: &str, refresh_s: u32, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{refresh_s}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        title = escape(title)
    )
}

fn status_cell(status: &Status) -> String {
    let reason = match status {
        Status::Down(reason) => format!(" <small>{}</small>", escape(reason)),
        _ => String::new(),
    };
    format!(
        "<span class=\"{word}\">{word}</span>{reason}",
        word = status.word()
    )
}

/// The list of every system.
pub fn index(systems: &[(SystemInfo, Status)]) -> String {
    let mut rows = String::new();
    for (info, status) in systems {
        let open = match &info.link {
            Some(link) => format!("<a href=\"{0}\">{0}</a>", escape(link)),
            None => String::from("&mdash;"),
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"/systems/{name}\"><strong>{name}</strong></a><br><small>{title}</small></td>\
             <td>{chapter}</td><td>{status}</td><td>{protocol}</td><td><code>{endpoint}</code></td><td>{open}</td></tr>",
            name = escape(&info.name),
            title = escape(&info.title),
            chapter = escape(&info.chapter),
            status = status_cell(status),
            protocol = escape(&info.protocol),
            endpoint = escape(&info.endpoint),
        ));
    }
    let up = systems
        .iter()
        .filter(|(_, status)| *status == Status::Up)
        .count();
    let body = format!(
        "<h1>Hyperscale</h1><p class=\"sub\">Every system of <em>System Design Interview</em>, \
         running for real. {up} of {total} systems up.</p>\
         <table><thead><tr><th>System</th><th>Chapter</th><th>Health</th><th>Protocol</th>\
         <th>Endpoint</th><th>Open</th></tr></thead><tbody>{rows}</tbody></table>\
         <p class=\"sub\"><a href=\"/metrics\">Metrics: request rates</a>. \
         <a href=\"/alerts\">Alerts and silences</a>, <a href=\"/alerts/history\">alert history</a>. \
         JSON: <a href=\"/api/systems\">/api/systems</a>. This page refreshes every 5 s.</p>",
        total = systems.len()
    );
    layout("Hyperscale console", 5, &body)
}

/// One system and its live metrics.
pub fn system(info: &SystemInfo, status: &Status, metrics: &[String]) -> String {
    let metrics_text = if metrics.is_empty() {
        String::from("(no metrics yet)")
    } else {
        escape(&metrics.join("\n"))
    };
    let body = format!(
        "<p><a href=\"/\">&larr; all systems</a></p><h1>{name}</h1><p class=\"sub\">{title} &middot; {chapter}</p>\
         <table><tr><th>Health</th><td>{status}</td></tr><tr><th>Protocol</th><td>{protocol}</td></tr>\
         <tr><th>Endpoint</th><td><code>{endpoint}</code></td></tr></table>\
         <h2>Metrics</h2><pre>{metrics_text}</pre>",
        name = escape(&info.name),
        title = escape(&info.title),
        chapter = escape(&info.chapter),
        status = status_cell(status),
        protocol = escape(&info.protocol),
        endpoint = escape(&info.endpoint),
    );
    layout(&format!("{} - Hyperscale", info.name), 5, &body)
}

/// What the metrics page shows.
pub struct ChartView<'a> {
    /// The charted PromQL expression.
    pub query: &'a str,
    /// The expression charted when none is given (every request rate).
    pub default_query: &'a str,
    /// How far back the chart reaches.
    pub range_s: u64,
    /// The chart (SVG and legend), or why there is none.
    pub chart: Result<String, String>,
    /// Systems without a series in the default chart.
    pub missing: &'a [String],
}

/// The metrics page: a query box and a line chart, by default of every
/// system's request rate.
pub fn metrics(view: &ChartView) -> String {
    let chart = match &view.chart {
        Ok(svg) => svg.clone(),
        Err(err) => format!("<p class=\"down\">{}</p>", escape(err)),
    };
    let missing = if view.missing.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"sub\">No request counter (or no scrape yet) for: {}.</p>",
            escape(&view.missing.join(", "))
        )
    };
    let title = if view.query == view.default_query {
        "Requests per second, by system"
    } else {
        "Query"
    };
    let body = format!(
        "<p><a href=\"/\">&larr; all systems</a></p><h1>Metrics</h1>\
         <p class=\"sub\">{title}, last {range_s} s, from the metrics server's \
         <code>/api/v1/query_range</code>. This page refreshes every 15 s.</p>\
         <form method=\"get\" action=\"/metrics\"><input name=\"query\" size=\"90\" value=\"{query}\">\
         <input name=\"range_s\" size=\"6\" value=\"{range_s}\"> <button>Run</button></form>\
         {chart}{missing}<p class=\"sub\"><code>{query}</code></p>",
        range_s = view.range_s,
        query = escape(view.query),
    );
    layout("Metrics - Hyperscale", 15, &body)
}

/// The page for a name that is not running.
pub fn not_found(name: &str) -> String {
    let body = format!(
        "<p><a href=\"/\">&larr; all systems</a></p><h1>No system named {}</h1>",
        escape(name)
    );
    layout("Not found - Hyperscale", 60, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_each_system_with_status() {
        let info = crate::info("127.0.0.1:8080");
        let html = index(&[(info, Status::Down("<boom>".into()))]);
        assert!(html.contains("<strong>console</strong>"));
        assert!(html.contains("class=\"down\""));
        assert!(html.contains("&lt;boom&gt;") && !html.contains("<boom>"));
        assert!(html.contains("0 of 1 systems up"));
    }
}
