//! `hyperscale metrics query 'expr'`: PromQL from the command line, like
//! `promtool query instant|range`, against any server that speaks the
//! Prometheus HTTP API (ours, or Prometheus itself). An instant query prints
//! one row per series; a range query (`--range 1h --step 15s`) one row per
//! series with its point count, first, last, min and max. `--json` prints
//! the API's `data` object unchanged.

use anyhow::{Context, bail};
use serde_json::Value;

use crate::output::{emit, emit_json};

/// Flags of `query`.
#[derive(clap::Args)]
pub struct QueryArgs {
    /// The PromQL expression.
    expr: String,
    /// Base URL of the Prometheus HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    server: String,
    /// Run a range query over this much time up to now (`1h`, `30m`).
    #[arg(long, value_parser = super::metrics::parse_duration_ms)]
    range: Option<i64>,
    /// Resolution of a range query.
    #[arg(long, default_value = "15s", value_parser = super::metrics::parse_duration_ms)]
    step: i64,
    /// Print the API's `data` as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the query and prints the result.
pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let now_ms = i64::try_from(clock::now_ms()).unwrap_or(i64::MAX);
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let base = args.server.trim_end_matches('/');
    let (url, params) = match args.range {
        None => (
            format!("{base}/api/v1/query"),
            vec![("query", args.expr.clone()), ("time", secs(now_ms))],
        ),
        Some(range_ms) => (
            format!("{base}/api/v1/query_range"),
            vec![
                ("query", args.expr.clone()),
                ("start", secs(now_ms - range_ms)),
                ("end", secs(now_ms)),
                ("step", secs(args.step)),
            ],
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reply: Value = runtime.block_on(async {
        let resp = reqwest::Client::new()
            .get(&url)
            .query(&params)
            .timeout(std::time::Duration::from_secs(130))
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        resp.json::<Value>()
            .await
            .with_context(|| format!("{url} did not answer with JSON"))
    })?;
    if reply["status"] != "success" {
        bail!(
            "{}: {}",
            reply["errorType"].as_str().unwrap_or("error"),
            reply["error"].as_str().unwrap_or("the query failed")
        );
    }
    let data = &reply["data"];
    if args.json {
        return emit_json(data);
    }
    emit(&(crate::table::render(&rows(data)) + "\n"))
}

/// The result as table rows, header first.
fn rows(data: &Value) -> Vec<Vec<String>> {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => vec![
            vec!["VALUE".into()],
            vec![result[1].as_str().unwrap_or("").into()],
        ],
        Some("matrix") => {
            let mut rows = vec![
                ["SERIES", "POINTS", "FIRST", "LAST", "MIN", "MAX"]
                    .map(String::from)
                    .to_vec(),
            ];
            for s in result.as_array().into_iter().flatten() {
                let values: Vec<f64> = s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p[1].as_str()?.parse().ok())
                    .collect();
                let fmt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
                rows.push(vec![
                    metric(&s["metric"]),
                    values.len().to_string(),
                    fmt(values.first().copied()),
                    fmt(values.last().copied()),
                    fmt(values.iter().copied().reduce(f64::min)),
                    fmt(values.iter().copied().reduce(f64::max)),
                ]);
            }
            rows
        }
        _ => {
            let mut rows = vec![vec!["SERIES".to_string(), "VALUE".to_string()]];
            for s in result.as_array().into_iter().flatten() {
                let value = s["value"][1].as_str().unwrap_or("").to_string();
                rows.push(vec![metric(&s["metric"]), value]);
            }
            rows
        }
    }
}

/// `name{a="b", c="d"}`, as Prometheus prints a series.
fn metric(m: &Value) -> String {
    let Some(map) = m.as_object() else {
        return String::new();
    };
    let name = map.get("__name__").and_then(Value::as_str).unwrap_or("");
    let labels: Vec<String> = map
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    if labels.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", labels.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_rows() {
        let vector = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "a"}, "value": [1, "1"]},
            {"metric": {}, "value": [1, "2.5"]}]});
        let table = rows(&vector);
        assert_eq!(table[1], vec![r#"up{job="a"}"#.to_string(), "1".into()]);
        assert_eq!(table[2], vec!["{}".to_string(), "2.5".into()]);
        let matrix = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {"__name__": "x"}, "values": [[1, "3"], [2, "1"], [3, "2"]]}]});
        assert_eq!(
            rows(&matrix)[1],
            ["x", "3", "3", "2", "1", "3"].map(String::from).to_vec()
        );
    }
}
