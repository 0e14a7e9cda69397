//! Results and errors in the JSON shapes of Prometheus's HTTP API.
//!
//! Why a module: clients (Grafana, `promtool`, client libraries) parse these
//! exact shapes: `{"status":"success","data":{"resultType":..,"result":..}}`,
//! sample values as strings (`"1.5"`, `"+Inf"`, `"NaN"`), timestamps as
//! float seconds, and failures as `{"status":"error","errorType":..,"error":..}`
//! with the HTTP status Prometheus uses for each error type.

use serde_json::{Value as Json, json};

use crate::promql::aggr::format_value;
use crate::promql::{EvalError, Metric, QueryValue, Series, Value};

/// A timestamp as Prometheus writes it: seconds, milliseconds as decimals.
pub fn timestamp(t_ms: i64) -> Json {
    if t_ms % 1000 == 0 {
        return Json::from(t_ms / 1000);
    }
    let s = t_ms as f64 / 1000.0;
    serde_json::Number::from_f64(s).map_or(Json::Null, Json::Number)
}

fn metric(m: &Metric) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn point(t_ms: i64, v: f64) -> Json {
    json!([timestamp(t_ms), format_value(v)])
}

fn matrix(m: &[Series]) -> Json {
    Json::Array(
        m.iter()
            .map(|s| {
                json!({
                    "metric": metric(&s.metric),
                    "values": s.samples.iter().map(|&(t, v)| point(t, v)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// The `data` of a query result.
pub fn query_data(v: &QueryValue) -> Json {
    match v {
        QueryValue::Range(series) => json!({"resultType": "matrix", "result": matrix(series)}),
        QueryValue::Instant { t_ms, value } => match value {
            Value::Scalar(x) => json!({"resultType": "scalar", "result": point(*t_ms, *x)}),
            Value::String(s) => json!({"resultType": "string", "result": [timestamp(*t_ms), s]}),
            Value::Vector(v) => json!({
                "resultType": "vector",
                "result": v.iter().map(|e| json!({"metric": metric(&e.metric), "value": point(*t_ms, e.value)})).collect::<Vec<_>>(),
            }),
            Value::Matrix(m) => json!({"resultType": "matrix", "result": matrix(m)}),
        },
    }
}

/// A success envelope.
pub fn success(data: Json) -> Json {
    json!({"status": "success", "data": data})
}

/// An error envelope and its HTTP status, as Prometheus maps error types.
pub fn error(e: &EvalError) -> (u16, Json) {
    let (status, kind) = match e {
        EvalError::BadData(_) => (400, "bad_data"),
        EvalError::Execution(_) => (422, "execution"),
        EvalError::Timeout(_) => (503, "timeout"),
    };
    (
        status,
        json!({"status": "error", "errorType": kind, "error": e.to_string()}),
    )
}
