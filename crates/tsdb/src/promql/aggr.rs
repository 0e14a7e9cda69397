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
    // The grouping labels, derived once per input set for the whole query.
    let kind = std::ptr::from_ref(&a.modifier) as usize;
    for e in input {
        let key = match &a.modifier {
            None => Metric::new(),
            Some(_) => ev
                .labels
                .derive(e.metric.clone(), kind, |m| group_key(m, &a.modifier)),
        };
        groups.entry(key).or_default().push(e);
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
                out.extend(select_k(members, k, op == "topk"));
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

/// `topk`/`bottomk` of one group as Prometheus picks them, ties included:
/// a heap of `k` with the smallest (largest for `bottomk`) on top, a later
/// element replacing the top only if strictly better, maintained by the
/// same sift steps as Go's `container/heap` (`engine.go`, `aggregationK`).
/// Which of equal values survives depends on those steps, so a stable sort
/// would pick differently; the result is sorted best first.
fn select_k(members: Vec<Element>, k: usize, top: bool) -> Vec<Element> {
    // Go's `Less` of vectorByValueHeap (topk) / vectorByReverseValueHeap (bottomk).
    let less = |a: f64, b: f64| a.is_nan() || if top { a < b } else { a > b };
    let mut h: Vec<Element> = Vec::with_capacity(k);
    if k == 0 {
        return h;
    }
    for e in members {
        if h.len() < k {
            h.push(e);
            let mut j = h.len() - 1; // up
            while j > 0 {
                let i = (j - 1) / 2;
                if !less(h[j].value, h[i].value) {
                    break;
                }
                h.swap(i, j);
                j = i;
            }
            continue;
        }
        let (head, v) = (h[0].value, e.value);
        let better = if top { head < v } else { head > v };
        if better || (head.is_nan() && !v.is_nan()) {
            h[0] = e;
            let mut i = 0; // down (Fix(0); `up` from the root is a no-op)
            loop {
                let j1 = 2 * i + 1;
                if j1 >= h.len() {
                    break;
                }
                let mut j = j1;
                if j1 + 1 < h.len() && less(h[j1 + 1].value, h[j1].value) {
                    j = j1 + 1;
                }
                if !less(h[j].value, h[i].value) {
                    break;
                }
                h.swap(i, j);
                i = j;
            }
        }
    }
    h.sort_by(|x, y| match (x.value.is_nan(), y.value.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ if top => y.value.total_cmp(&x.value),
        _ => x.value.total_cmp(&y.value),
    });
    h
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

#[cfg(test)]
mod tests {
    use super::*;

    fn el(name: &str, value: f64) -> Element {
        Element {
            metric: [("n".to_string(), name.to_string())].into_iter().collect(),
            value,
        }
    }

    fn names(v: Vec<Element>) -> Vec<String> {
        v.into_iter().map(|e| e.metric["n"].clone()).collect()
    }

    #[test]
    fn ties_go_as_in_prometheus_heap() {
        // Heap after a, b: a on top (equal values do not swap); c beats it.
        let got = select_k(vec![el("a", 3.0), el("b", 3.0), el("c", 5.0)], 2, true);
        assert_eq!(names(got), ["c", "b"]);
        // An equal later value never replaces the top.
        let got = select_k(vec![el("a", 5.0), el("b", 3.0), el("c", 3.0)], 2, true);
        assert_eq!(names(got), ["a", "b"]);
        let got = select_k(vec![el("a", 3.0), el("b", 3.0), el("c", 1.0)], 2, false);
        assert_eq!(names(got), ["c", "b"]);
        // NaN loses to any number.
        let got = select_k(vec![el("a", f64::NAN), el("b", 1.0)], 1, true);
        assert_eq!(names(got), ["b"]);
    }
}
