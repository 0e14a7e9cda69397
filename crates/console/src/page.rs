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
.tier { display: flex; gap: .8rem; align-items: stretch; margin: .4rem 0; flex-wrap: wrap; }
.tier > h3 { width: 8.5rem; font-size: .8rem; text-transform: uppercase; color: #5a6473; margin: .6rem 0; }
.box { border: 1px solid #c9d1dc; border-radius: 6px; padding: .5rem .8rem; min-width: 11rem; background: #fbfcfe; }
.box.down { border-color: #b3261e; background: #fdf1f0; } .rate { font-size: 1.2rem; font-weight: 600; }
.arrow { text-align: center; color: #8a93a3; margin: 0; }
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

/// The running stage of the chapter, drawn tier by tier (see
/// [`crate::topology`]).
pub fn topology(
    topology: &crate::topology::Topology,
    live: &crate::topology::Live,
    systems: &[(SystemInfo, Status)],
    switchable: &[&str],
) -> String {
    let mut tiers = String::new();
    for tier in crate::topology::TIERS {
        let boxes: Vec<_> = topology.boxes.iter().filter(|b| b.tier == tier).collect();
        if boxes.is_empty() {
            continue;
        }
        if !tiers.is_empty() {
            tiers.push_str("<p class=\"arrow\">&darr;</p>");
        }
        let mut cards = String::new();
        for b in boxes {
            let status = systems
                .iter()
                .find(|(info, _)| info.name == b.name)
                .map(|(_, status)| status.clone())
                .unwrap_or(Status::Down("not running".into()));
            let rate = live.rates.get(&b.name).copied().unwrap_or(0.0);
            let dc = b
                .datacenter
                .as_deref()
                .map(|dc| format!(" &middot; {}", escape(dc)))
                .unwrap_or_default();
            let rotation: Vec<String> = live
                .rotations
                .iter()
                .filter(|r| r.balancer == b.name)
                .map(|r| {
                    let word = if r.up { "up" } else { "down" };
                    let target = r.target.as_deref().unwrap_or(&r.upstream);
                    format!("<span class=\"{word}\">{} {word}</span>", escape(target))
                })
                .collect();
            let rotation = if rotation.is_empty() {
                String::new()
            } else {
                format!("<br><small>{}</small>", rotation.join(", "))
            };
            let class = if status == Status::Up {
                "box"
            } else {
                "box down"
            };
            let button = if switchable.contains(&b.name.as_str()) {
                let action = if status == Status::Up {
                    "stop"
                } else {
                    "start"
                };
                format!(
                    "<form method=\"post\" action=\"/topology/{}/{action}\"><button>{action}</button></form>",
                    escape(&b.name)
                )
            } else {
                String::new()
            };
            cards.push_str(&format!(
                "<div class=\"{class}\" data-box=\"{name}\"><a href=\"/systems/{name}\"><strong>{name}</strong></a>{dc} \
                 {status}<br><small>{serves}</small><br><code>{endpoint}</code><br>\
                 <span class=\"rate\">{rate:.1}</span> req/s{rotation}{button}</div>",
                name = escape(&b.name),
                status = status_cell(&status),
                serves = escape(&b.serves),
                endpoint = escape(&b.endpoint),
            ));
        }
        tiers.push_str(&format!(
            "<div class=\"tier\"><h3>{}</h3>{cards}</div>",
            escape(tier)
        ));
    }
    let datacenters: Vec<String> = live
        .datacenters
        .iter()
        .map(|(dc, up)| {
            let word = if *up { "up" } else { "down" };
            format!("{} <span class=\"{word}\">{word}</span>", escape(dc))
        })
        .collect();
    let datacenters = if datacenters.is_empty() {
        String::new()
    } else {
        format!("<p>Data centers: {}</p>", datacenters.join(", "))
    };
    let events: Vec<String> = live
        .events
        .iter()
        .rev()
        .map(|e| {
            format!(
                "<li><code>{}</code> {}</li>",
                time_of_day(e.at_ms),
                escape(&e.text)
            )
        })
        .collect();
    let events = if events.is_empty() {
        String::from("<p class=\"sub\">No failover yet: stop a box and watch.</p>")
    } else {
        format!("<ul>{}</ul>", events.join(""))
    };
    let body = format!(
        "<p><a href=\"/\">&larr; all systems</a></p><h1>{stage}</h1>\
         <p class=\"sub\">Clients enter at <code>{front}</code>. Rates are requests per second \
         over the last few seconds; this page refreshes every 2 s. \
         JSON: <a href=\"/api/topology\">/api/topology</a>.</p>{tiers}{datacenters}\
         <h2>Failovers</h2>{events}",
        stage = escape(&topology.stage),
        front = escape(&topology.front_door),
    );
    layout(&format!("{} - Hyperscale", topology.stage), 2, &body)
}

/// `HH:MM:SS` UTC of a time in ms since the Unix epoch.
fn time_of_day(at_ms: u64) -> String {
    let s = (at_ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `/topology` when `up` runs no stage.
pub fn no_topology() -> String {
    let body = "<p><a href=\"/\">&larr; all systems</a></p><h1>No stage runs</h1>\
                <p>Start one of chapter 1's stages with \
                <code>hyperscale up --config examples/scale/1-single-server.toml</code>.</p>";
    layout("No stage - Hyperscale", 60, body)
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
