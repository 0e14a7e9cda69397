//! PromQL functions: the `*_over_time` family, counter rates, math,
//! label manipulation, sorting, `histogram_quantile`, `absent`.
//!
//! Why a module: these carry Prometheus's numerical rules, which a
//! differential test holds us to: `rate`/`increase`/`delta` extrapolate to
//! the range's edges unless a sample is more than 1.1 average intervals
//! away, and never below a counter's zero; `deriv`/`predict_linear` use a
//! least-squares fit; `histogram_quantile` interpolates linearly within the
//! bucket, as `promql/quantile.go` does.

use promql_parser::parser::{Call, Expr};

use super::eval::Evaluator;
use super::memo::LabelMemo;
use super::{Element, EvalError, Metric, Series, Value};
use crate::labels::METRIC_NAME;

fn drop_name(mut m: Metric) -> Metric {
    m.remove(METRIC_NAME);
    m
}

/// Prometheus's `extrapolatedRate`.
pub(crate) fn extrapolated_rate(
    s: &[(i64, f64)],
    start: i64,
    end: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        let mut prev = first.1;
        for &(_, v) in &s[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first.0 - start) as f64 / 1000.0;
    let to_end = (end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg = sampled / (s.len() - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg / 2.0
    };
    let mut factor = interval / sampled;
    if rate {
        factor /= (end - start) as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_value(s: &[(i64, f64)], rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (prev, last) = (s[s.len() - 2], s[s.len() - 1]);
    let mut result = last.1 - prev.1;
    if rate && last.1 < prev.1 {
        result = last.1;
    }
    let dt = last.0 - prev.0;
    if dt == 0 {
        return None;
    }
    Some(if rate {
        result / (dt as f64 / 1000.0)
    } else {
        result
    })
}

/// Least squares over `(t - at) / 1000`: `(slope, intercept)`.
fn linear_regression(s: &[(i64, f64)], at: i64) -> (f64, f64) {
    let n = s.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    let const_y = s.iter().all(|p| p.1 == s[0].1);
    for &(t, v) in s {
        let x = (t - at) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    if const_y {
        return (0.0, s[0].1);
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// The φ-quantile of `v` as Prometheus's `quantile` computes it.
pub(crate) fn quantile(q: f64, v: &mut [f64]) -> f64 {
    if v.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    v[lower as usize] * (1.0 - w) + v[upper as usize] * w
}

fn stdvar(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
}

fn over_time(name: &str, s: &[(i64, f64)], param: f64) -> Option<f64> {
    let vals: Vec<f64> = s.iter().map(|p| p.1).collect();
    let n = vals.len() as f64;
    Some(match name {
        "avg_over_time" => {
            let mut mean = 0.0;
            for (i, v) in vals.iter().enumerate() {
                mean += (v - mean) / (i as f64 + 1.0);
            }
            mean
        }
        "sum_over_time" => vals.iter().sum(),
        "min_over_time" => vals
            .iter()
            .copied()
            .fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a }),
        "max_over_time" => vals
            .iter()
            .copied()
            .fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a }),
        "count_over_time" => n,
        "last_over_time" => *vals.last()?,
        "present_over_time" => 1.0,
        "stddev_over_time" => stdvar(&vals).sqrt(),
        "stdvar_over_time" => stdvar(&vals),
        "quantile_over_time" => quantile(param, &mut vals.clone()),
        "changes" => vals
            .windows(2)
            .filter(|w| w[0] != w[1] && !(w[0].is_nan() && w[1].is_nan()))
            .count() as f64,
        "resets" => vals.windows(2).filter(|w| w[1] < w[0]).count() as f64,
        _ => return None,
    })
}

fn math(name: &str, v: f64, a: f64, b: f64) -> Option<f64> {
    Some(match name {
        "abs" => v.abs(),
        "ceil" => v.ceil(),
        "floor" => v.floor(),
        "exp" => v.exp(),
        "sqrt" => v.sqrt(),
        "ln" => v.ln(),
        "log2" => v.log2(),
        "log10" => v.log10(),
        "sgn" => {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }
        "round" => {
            // Prometheus: floor(v / to_nearest + 0.5) * to_nearest.
            let to = if a == 0.0 { 1.0 } else { a };
            (v / to + 0.5).floor() * to
        }
        "clamp" => {
            if a > b {
                return None;
            } else {
                v.max(a).min(b)
            }
        }
        "clamp_min" => v.max(a),
        "clamp_max" => v.min(a),
        _ => return None,
    })
}

/// `histogram_quantile(q, buckets)`: Prometheus's `bucketQuantile`.
fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.len() < 2 || buckets[buckets.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    // Coalesce equal bounds, then force monotonic counts.
    let mut c: Vec<(f64, f64)> = Vec::new();
    for b in buckets {
        match c.last_mut() {
            Some(l) if l.0 == b.0 => l.1 += b.1,
            _ => c.push(b),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in &mut c {
        if b.1 > max {
            max = b.1;
        } else {
            b.1 = max;
        }
    }
    if c.len() < 2 {
        return f64::NAN;
    }
    let observations = c[c.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let rank = q * observations;
    let i = c.iter().position(|b| b.1 >= rank).unwrap_or(c.len() - 1);
    if i == c.len() - 1 {
        return c[c.len() - 2].0;
    }
    if i == 0 && c[0].0 <= 0.0 {
        return c[0].0;
    }
    let (mut start, end, mut count, mut r) = (0.0, c[i].0, c[i].1, rank);
    if i > 0 {
        start = c[i - 1].0;
        count -= c[i - 1].1;
        r -= c[i - 1].1;
    }
    start + (end - start) * (r / count)
}

fn arg(c: &Call, i: usize) -> Result<&Expr, EvalError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| EvalError::BadData(format!("missing argument {i} of {}", c.func.name)))
}

fn string_arg(c: &Call, i: usize) -> Result<String, EvalError> {
    match arg(c, i)? {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        Expr::Paren(p) => match p.expr.as_ref() {
            Expr::StringLiteral(s) => Ok(s.val.clone()),
            _ => Err(EvalError::BadData("expected a string".into())),
        },
        _ => Err(EvalError::BadData("expected a string".into())),
    }
}

fn map_matrix(
    labels: &mut LabelMemo,
    m: Vec<Series>,
    mut f: impl FnMut(&[(i64, f64)]) -> Option<f64>,
    keep_name: bool,
) -> Vec<Element> {
    m.into_iter()
        .filter_map(|s| {
            let value = f(&s.samples)?;
            Some(Element {
                metric: if keep_name {
                    s.metric
                } else {
                    labels.without_name(s.metric)
                },
                value,
            })
        })
        .collect()
}

/// Evaluates a function call at `t`.
pub fn call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Value, EvalError> {
    if let Some(v) = super::downsampled::call(ev, c, t)? {
        return Ok(v);
    }
    let name = c.func.name;
    let v = match name {
        "rate" | "increase" | "delta" => {
            let (m, start, end) = ev.eval_matrix(arg(c, 0)?, t)?;
            let counter = name != "delta";
            map_matrix(
                &mut ev.labels,
                m,
                |s| extrapolated_rate(s, start, end, counter, name == "rate"),
                false,
            )
        }
        "irate" | "idelta" => {
            let (m, _, _) = ev.eval_matrix(arg(c, 0)?, t)?;
            map_matrix(
                &mut ev.labels,
                m,
                |s| instant_value(s, name == "irate"),
                false,
            )
        }
        "deriv" => {
            let (m, _, _) = ev.eval_matrix(arg(c, 0)?, t)?;
            map_matrix(
                &mut ev.labels,
                m,
                |s| (s.len() >= 2).then(|| linear_regression(s, s[0].0).0),
                false,
            )
        }
        "predict_linear" => {
            let (m, _, _) = ev.eval_matrix(arg(c, 0)?, t)?;
            let d = ev.eval_scalar(arg(c, 1)?, t)?;
            map_matrix(
                &mut ev.labels,
                m,
                |s| {
                    (s.len() >= 2).then(|| {
                        let (slope, icpt) = linear_regression(s, t);
                        icpt + slope * d
                    })
                },
                false,
            )
        }
        "quantile_over_time" => {
            let q = ev.eval_scalar(arg(c, 0)?, t)?;
            let (m, _, _) = ev.eval_matrix(arg(c, 1)?, t)?;
            map_matrix(&mut ev.labels, m, |s| over_time(name, s, q), false)
        }
        "last_over_time" => {
            let (m, _, _) = ev.eval_matrix(arg(c, 0)?, t)?;
            map_matrix(&mut ev.labels, m, |s| over_time(name, s, 0.0), true)
        }
        n if n.ends_with("_over_time") || n == "changes" || n == "resets" => {
            let (m, _, _) = ev.eval_matrix(arg(c, 0)?, t)?;
            map_matrix(&mut ev.labels, m, |s| over_time(name, s, 0.0), false)
        }
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sgn" | "round"
        | "clamp" | "clamp_min" | "clamp_max" => {
            let vec = ev.eval_vector(arg(c, 0)?, t)?;
            let a = match c.args.args.get(1) {
                Some(e) => ev.eval_scalar(e, t)?,
                None => 1.0,
            };
            let b = match c.args.args.get(2) {
                Some(e) => ev.eval_scalar(e, t)?,
                None => 0.0,
            };
            vec.into_iter()
                .filter_map(|e| {
                    Some(Element {
                        value: math(name, e.value, a, b)?,
                        metric: drop_name(e.metric),
                    })
                })
                .collect()
        }
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "vector" => {
            let v = ev.eval_scalar(arg(c, 0)?, t)?;
            vec![Element {
                metric: Metric::new(),
                value: v,
            }]
        }
        "scalar" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            return Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }));
        }
        "timestamp" => {
            // Needs sample timestamps; approximated by the evaluation time's selector.
            return Err(EvalError::BadData(
                "timestamp() is not supported yet".into(),
            ));
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(c, 0)?, t)?;
            v.sort_by(|a, b| {
                if a.value.is_nan() {
                    std::cmp::Ordering::Greater
                } else if b.value.is_nan() {
                    std::cmp::Ordering::Less
                } else if name == "sort" {
                    a.value.total_cmp(&b.value)
                } else {
                    b.value.total_cmp(&a.value)
                }
            });
            v
        }
        "label_replace" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            let (dst, repl, src, re) = (
                string_arg(c, 1)?,
                string_arg(c, 2)?,
                string_arg(c, 3)?,
                string_arg(c, 4)?,
            );
            let re = regex::Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
                EvalError::BadData(format!(
                    "invalid regular expression in label_replace(): {e}"
                ))
            })?;
            if !crate::labels::valid_label_name(&dst) {
                return Err(EvalError::BadData(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            v.into_iter()
                .map(|mut e| {
                    let sv = e.metric.get(&src).cloned().unwrap_or_default();
                    if let Some(caps) = re.captures(&sv) {
                        let mut out = String::new();
                        caps.expand(&repl, &mut out);
                        if out.is_empty() {
                            e.metric.remove(&dst);
                        } else {
                            e.metric.insert(dst.clone(), out);
                        }
                    }
                    e
                })
                .collect()
        }
        "label_join" => {
            let v = ev.eval_vector(arg(c, 0)?, t)?;
            let (dst, sep) = (string_arg(c, 1)?, string_arg(c, 2)?);
            let srcs: Vec<String> = (3..c.args.args.len())
                .map(|i| string_arg(c, i))
                .collect::<Result<_, _>>()?;
            v.into_iter()
                .map(|mut e| {
                    let joined = srcs
                        .iter()
                        .map(|s| e.metric.get(s).cloned().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(&sep);
                    if joined.is_empty() {
                        e.metric.remove(&dst);
                    } else {
                        e.metric.insert(dst.clone(), joined);
                    }
                    e
                })
                .collect()
        }
        "absent" | "absent_over_time" => {
            let a = arg(c, 0)?;
            let empty = if name == "absent" {
                ev.eval_vector(a, t)?.is_empty()
            } else {
                ev.eval_matrix(a, t)?.0.is_empty()
            };
            if !empty {
                return Ok(Value::Vector(Vec::new()));
            }
            vec![Element {
                metric: absent_labels(a),
                value: 1.0,
            }]
        }
        "histogram_quantile" => {
            let q = ev.eval_scalar(arg(c, 0)?, t)?;
            let v = ev.eval_vector(arg(c, 1)?, t)?;
            let mut groups: std::collections::BTreeMap<Metric, Vec<(f64, f64)>> =
                Default::default();
            for e in v {
                let Some(le) = e.metric.get("le").and_then(|s| parse_le(s)) else {
                    continue;
                };
                let mut m = drop_name(e.metric);
                m.remove("le");
                groups.entry(m).or_default().push((le, e.value));
            }
            groups
                .into_iter()
                .map(|(metric, b)| Element {
                    metric,
                    value: bucket_quantile(q, b),
                })
                .collect()
        }
        other => {
            return Err(EvalError::BadData(format!(
                "function {other}() is not supported"
            )));
        }
    };
    Ok(Value::Vector(v))
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        s => s.parse().ok(),
    }
}

/// The labels `absent()` reports: the selector's equality matchers.
fn absent_labels(e: &Expr) -> Metric {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Metric::new(),
    };
    let mut m = Metric::new();
    let mut dup = std::collections::BTreeSet::new();
    for x in &vs.matchers.matchers {
        if matches!(x.op, promql_parser::label::MatchOp::Equal)
            && x.name != METRIC_NAME
            && m.insert(x.name.clone(), x.value.clone()).is_some()
        {
            dup.insert(x.name.clone());
        }
    }
    for d in dup {
        m.remove(&d);
    }
    m
}
