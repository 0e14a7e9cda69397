//! Aggregation operators: `sum`, `avg`, `min`, `max`, `count`, `group`,
//! `stddev`, `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`, with
//! `by` / `without`.
//!
//! Why a module: the chapter puts aggregation at query time ("aggregation
//! at query time" over raw series), and grouping has its own rules: `by`
//! keeps only the named labels, `without` drops them and the metric name;
//! `topk`/`bottomk` keep whole series.

use std::collections::BTreeMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::eval::Evaluator;
use super::functions::quantile;
use super::{Element, EvalError, Metric, Value};

fn group_key(m: &Metric, modifier: &Option<LabelModifier>) -> Metric {
    match modifier {
        None => Metric::new(),
        Some(_) => super::binary::signature(m, modifier),
    }
}

/// Evaluates an aggregation at `t`.
pub fn aggregate(ev: &mut Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Value, EvalError> {
    let op = a.op.to_string().to_lowercase();
    let param = match &a.param {
        Some(p) if op != "count_values" => Some(ev.eval_scalar(p, t)?),
        _ => None,
    };
    let label = match (&a.param, op.as_str()) {
        (Some(p), "count_values") => match ev.eval_inner(p, t)? {
            Value::String(s) => {
                if !crate::labels::valid_label_name(&s) {
                    return Err(EvalError::BadData(format!("invalid label name {s:?}")));
                }
                Some(s)
            }
            _ => {
                return Err(EvalError::BadData(
                    "count_values needs a string label".into(),
                ));
            }
        },
        _ => None,
    };
    let input = ev.eval_vector(&a.expr, t)?;
    let mut groups: BTreeMap<Metric, Vec<Element>> = BTreeMap::new();
    for e in input {
        groups
            .entry(group_key(&e.metric, &a.modifier))
            .or_default()
            .push(e);
    }
    let mut out = Vec::new();
    for (key, members) in groups {
        let vals: Vec<f64> = members.iter().map(|e| e.value).collect();
        let n = vals.len() as f64;
        let one = |value: f64| Element {
            metric: key.clone(),
            value,
        };
        match op.as_str() {
            "sum" => out.push(one(vals.iter().sum())),
            "avg" => {
                let mut mean = 0.0;
                for (i, v) in vals.iter().enumerate() {
                    mean += (v - mean) / (i as f64 + 1.0);
                }
                out.push(one(mean))
            }
            "count" => out.push(one(n)),
            "group" => out.push(one(1.0)),
            "min" => out
                .push(one(vals.iter().copied().fold(f64::NAN, |a, b| {
                    if a.is_nan() || b < a { b } else { a }
                }))),
            "max" => out
                .push(one(vals.iter().copied().fold(f64::NAN, |a, b| {
                    if a.is_nan() || b > a { b } else { a }
                }))),
            "stddev" | "stdvar" => {
                let mean = vals.iter().sum::<f64>() / n;
                let var = vals.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                out.push(one(if op == "stddev" { var.sqrt() } else { var }))
            }
            "quantile" => out.push(one(quantile(param.unwrap_or(f64::NAN), &mut vals.clone()))),
            "topk" | "bottomk" => {
                let k = param.unwrap_or(0.0);
                if k < 1.0 {
                    continue;
                }
                let k = if k >= members.len() as f64 {
                    members.len()
                } else {
                    k as usize
                };
                let mut m = members;
                m.sort_by(|x, y| match (x.value.is_nan(), y.value.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if op == "topk" => y.value.total_cmp(&x.value),
                    _ => x.value.total_cmp(&y.value),
                });
                out.extend(m.into_iter().take(k));
            }
            "count_values" => {
                let label = label.clone().unwrap_or_default();
                let mut counts: BTreeMap<String, f64> = BTreeMap::new();
                for v in vals {
                    *counts.entry(format_value(v)).or_default() += 1.0;
                }
                for (v, c) in counts {
                    let mut m = key.clone();
                    m.insert(label.clone(), v);
                    out.push(Element {
                        metric: m,
                        value: c,
                    });
                }
            }
            other => {
                return Err(EvalError::BadData(format!(
                    "aggregation {other} is not supported"
                )));
            }
        }
    }
    Ok(Value::Vector(out))
}

/// A float as Prometheus prints it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}
