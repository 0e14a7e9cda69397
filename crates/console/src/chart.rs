//! The metrics page's chart: one PromQL range query against the metrics
//! server's `/api/v1/query_range` (ours, or any Prometheus), drawn on the
//! server as an SVG line chart with a legend. No JavaScript and no chart
//! library: the page works in any browser and its numbers are in the HTML.

use std::fmt::Write;
use std::time::Duration;

use serde::Deserialize;
use service::html::escape;

/// Points per series the page asks for (the step is the range over this).
const POINTS: u64 = 120;
/// Longest query text the page forwards.
pub const QUERY_BYTES_MAX: usize = 4096;
/// How long the page waits for the metrics server.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One series of a range query.
#[derive(Debug, Deserialize)]
pub struct Series {
    /// Its labels.
    pub metric: std::collections::BTreeMap<String, String>,
    /// `[unix seconds, "value"]` pairs.
    pub values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct Reply {
    status: String,
    #[serde(default)]
    data: Option<Matrix>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    result: Vec<Series>,
}

/// Runs `query` over the last `range_s` seconds against `server` (a base
/// URL such as `http://127.0.0.1:9090`); the error is a line for the page.
pub async fn query_range(
    server: &str,
    query: &str,
    range_s: u64,
    now_s: u64,
) -> Result<Vec<Series>, String> {
    let step_s = (range_s / POINTS).max(1);
    let start = now_s.saturating_sub(range_s).to_string();
    let end = now_s.to_string();
    let step = step_s.to_string();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
    let url = format!("{}/api/v1/query_range", server.trim_end_matches('/'));
    let response = client
        .get(&url)
        .query(&[
            ("query", query),
            ("start", &start),
            ("end", &end),
            ("step", &step),
        ])
        .send()
        .await
        .map_err(|err| format!("the metrics server at {server} did not answer: {err}"))?;
    let reply: Reply = response
        .json()
        .await
        .map_err(|err| format!("the metrics server sent an unreadable reply: {err}"))?;
    match (reply.status.as_str(), reply.data) {
        ("success", Some(matrix)) => Ok(matrix.result),
        _ => Err(reply.error.unwrap_or_else(|| "query failed".into())),
    }
}

const COLORS: &[&str] = &[
    "#1a5fb4", "#c01c28", "#26a269", "#e66100", "#613583", "#865e3c", "#0b7285", "#5e5c64",
    "#a51d2d", "#2ec27e",
];

/// The name a series goes by in the legend: its `system` label, or all its
/// labels.
pub fn series_name(series: &Series) -> String {
    if let Some(system) = series.metric.get("system") {
        return system.clone();
    }
    let labels: Vec<String> = series
        .metric
        .iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("{{{}}}", labels.join(", "))
}

/// An SVG line chart of `series` over `[start_s, end_s]`, and its legend
/// (each name with its latest value).
pub fn render(series: &[Series], start_s: u64, end_s: u64) -> String {
    const W: f64 = 900.0;
    const H: f64 = 280.0;
    const LEFT: f64 = 60.0;
    const BOTTOM: f64 = 24.0;
    let points = |s: &Series| -> Vec<(f64, f64)> {
        s.values
            .iter()
            .filter_map(|(t, v)| Some((*t, v.parse::<f64>().ok().filter(|v| v.is_finite())?)))
            .collect()
    };
    let max = series
        .iter()
        .flat_map(|s| points(s).into_iter().map(|(_, v)| v))
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let span_s = (end_s.saturating_sub(start_s)).max(1) as f64;
    let x = |t: f64| LEFT + (t - start_s as f64) / span_s * (W - LEFT - 10.0);
    let y = |v: f64| (H - BOTTOM) - v / top * (H - BOTTOM - 10.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\">\
         <line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{W}\" y2=\"{base}\" stroke=\"#999\"/>\
         <line x1=\"{LEFT}\" y1=\"10\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"#999\"/>\
         <text x=\"{label_x}\" y=\"16\" font-size=\"11\" text-anchor=\"end\">{top:.3}</text>\
         <text x=\"{label_x}\" y=\"{base}\" font-size=\"11\" text-anchor=\"end\">0</text>\
         <text x=\"{LEFT}\" y=\"{H}\" font-size=\"11\">-{span_s}s</text>\
         <text x=\"{W}\" y=\"{H}\" font-size=\"11\" text-anchor=\"end\">now</text>",
        base = H - BOTTOM,
        label_x = LEFT - 4.0,
    );
    let mut legend =
        String::from("<table class=\"legend\"><tr><th>Series</th><th>Latest</th></tr>");
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts = points(s);
        let path: Vec<String> = pts
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let name = escape(&series_name(s));
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"><title>{name}</title></polyline>",
            path.join(" ")
        );
        let latest = pts
            .last()
            .map(|(_, v)| format!("{v:.3}"))
            .unwrap_or_default();
        let _ = write!(
            legend,
            "<tr><td><span style=\"color:{color}\">&#9632;</span> <span class=\"series\">{name}</span></td><td>{latest}</td></tr>"
        );
    }
    svg.push_str("</svg>");
    legend.push_str("</table>");
    svg + &legend
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_is_a_line_and_a_legend_row() {
        let series: Vec<Series> = serde_json::from_str(
            r#"[{"metric":{"system":"kv"},"values":[[100,"1"],[110,"3"]]},
                {"metric":{"system":"<mq>"},"values":[[100,"NaN"],[110,"2"]]}]"#,
        )
        .unwrap();
        let svg = render(&series, 100, 110);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">kv</span>") && svg.contains("&lt;mq&gt;"));
        assert!(svg.contains("<td>3.000</td>") && !svg.contains("<mq>"));
        // The highest point (3 at the end) is drawn at the right edge.
        assert!(svg.contains(&format!("{:.1},", 900.0 - 10.0)));
    }
}
