//! Binary operators: arithmetic, comparisons (filtering or `bool`), and the
//! set operators `and`/`or`/`unless`, with vector matching.
//!
//! Why a module: vector matching is PromQL's join. Two elements match when
//! their labels agree on the `on(...)` list, or on everything but the
//! `ignoring(...)` list and the metric name; one-to-one matching refuses
//! duplicates, `group_left`/`group_right` allow many on one side and copy
//! the listed labels from the "one" side, as Prometheus's engine does.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::eval::Evaluator;
use super::{Element, EvalError, Metric, Value};
use crate::labels::METRIC_NAME;

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// `lhs op rhs`; for comparisons, `Some(lhs)` when true, `None` when false
/// (or 1/0 with `bool`).
fn apply(op: &str, l: f64, r: f64, return_bool: bool) -> Option<f64> {
    let cmp = |b: bool| {
        if return_bool {
            Some(if b { 1.0 } else { 0.0 })
        } else {
            b.then_some(l)
        }
    };
    match op {
        "+" => Some(l + r),
        "-" => Some(l - r),
        "*" => Some(l * r),
        "/" => Some(l / r),
        "%" => Some(l % r),
        "^" => Some(l.powf(r)),
        "atan2" => Some(l.atan2(r)),
        "==" => cmp(l == r),
        "!=" => cmp(l != r),
        ">" => cmp(l > r),
        "<" => cmp(l < r),
        ">=" => cmp(l >= r),
        "<=" => cmp(l <= r),
        _ => None,
    }
}

/// The labels two elements are matched (or grouped) on: the `on`/`by`
/// list, or all but the `ignoring`/`without` list and the metric name.
pub(crate) fn signature(m: &Metric, matching: &Option<LabelModifier>) -> Metric {
    match matching {
        Some(LabelModifier::Include(ls)) => m
            .iter()
            .filter(|(k, _)| ls.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(ls)) => m
            .iter()
            .filter(|(k, _)| k.as_str() != METRIC_NAME && !ls.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => m
            .iter()
            .filter(|(k, _)| k.as_str() != METRIC_NAME)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Evaluates a binary expression at `t`.
pub fn binary(ev: &mut Evaluator<'_>, b: &BinaryExpr, t: i64) -> Result<Value, EvalError> {
    let op = b.op.to_string().to_lowercase();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval_inner(&b.lhs, t)?;
    let rhs = ev.eval_inner(&b.rhs, t)?;
    let drop_name = !is_comparison(&op) || return_bool;
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            Ok(Value::Scalar(apply(&op, l, r, true).unwrap_or(f64::NAN)))
        }
        (Value::Vector(v), Value::Scalar(s)) | (Value::Scalar(s), Value::Vector(v)) => {
            let vec_left = matches!(ev.eval_kind(&b.lhs), Kind::Vector);
            let out = v
                .into_iter()
                .filter_map(|mut e| {
                    let (l, r) = if vec_left { (e.value, s) } else { (s, e.value) };
                    let mut value = apply(&op, l, r, return_bool)?;
                    if is_comparison(&op) && !return_bool {
                        value = e.value;
                    }
                    if drop_name {
                        e.metric.remove(METRIC_NAME);
                    }
                    e.value = value;
                    Some(e)
                })
                .collect();
            Ok(Value::Vector(out))
        }
        (Value::Vector(l), Value::Vector(r)) => vector_binary(&op, b, l, r, return_bool, drop_name),
        _ => Err(EvalError::BadData(format!(
            "operator {op} of non-numeric operands"
        ))),
    }
}

enum Kind {
    Vector,
    Scalar,
}

impl Evaluator<'_> {
    fn eval_kind(&self, e: &promql_parser::parser::Expr) -> Kind {
        match e.value_type() {
            promql_parser::parser::value::ValueType::Scalar => Kind::Scalar,
            _ => Kind::Vector,
        }
    }
}

fn vector_binary(
    op: &str,
    b: &BinaryExpr,
    l: Vec<Element>,
    r: Vec<Element>,
    return_bool: bool,
    drop_name: bool,
) -> Result<Value, EvalError> {
    let (matching, card) = match &b.modifier {
        Some(m) => (m.matching.clone(), m.card.clone()),
        None => (None, VectorMatchCardinality::OneToOne),
    };
    match op {
        "and" | "unless" => {
            let sigs: BTreeSet<Metric> =
                r.iter().map(|e| signature(&e.metric, &matching)).collect();
            let keep = op == "and";
            return Ok(Value::Vector(
                l.into_iter()
                    .filter(|e| sigs.contains(&signature(&e.metric, &matching)) == keep)
                    .collect(),
            ));
        }
        "or" => {
            let sigs: BTreeSet<Metric> =
                l.iter().map(|e| signature(&e.metric, &matching)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|e| !sigs.contains(&signature(&e.metric, &matching))),
            );
            return Ok(Value::Vector(out));
        }
        _ => {}
    }
    // The "one" side is indexed; group_right swaps sides.
    let (many, one, swapped, include) = match &card {
        VectorMatchCardinality::OneToMany(ls) => (r, l, true, ls.labels.clone()),
        VectorMatchCardinality::ManyToOne(ls) => (l, r, false, ls.labels.clone()),
        _ => (l, r, false, Vec::new()),
    };
    let grouped = !matches!(
        card,
        VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany
    );
    let mut index: BTreeMap<Metric, Element> = BTreeMap::new();
    for e in one {
        let sig = signature(&e.metric, &matching);
        if index.insert(sig, e).is_some() {
            let side = if swapped { "left" } else { "right" };
            return Err(EvalError::Execution(format!(
                "found duplicate series for the match group on the {side} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side"
            )));
        }
    }
    let mut seen: BTreeSet<Metric> = BTreeSet::new();
    let mut out = Vec::new();
    for e in many {
        let sig = signature(&e.metric, &matching);
        let Some(o) = index.get(&sig) else { continue };
        let (lv, rv) = if swapped {
            (o.value, e.value)
        } else {
            (e.value, o.value)
        };
        let Some(mut value) = apply(op, lv, rv, return_bool) else {
            continue;
        };
        if is_comparison(op) && !return_bool {
            value = lv;
        }
        let mut metric = if grouped {
            e.metric.clone()
        } else {
            match &matching {
                Some(LabelModifier::Include(_)) => sig.clone(),
                Some(LabelModifier::Exclude(ls)) => e
                    .metric
                    .iter()
                    .filter(|(k, _)| !ls.labels.iter().any(|l| l == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                None => e.metric.clone(),
            }
        };
        if drop_name {
            metric.remove(METRIC_NAME);
        }
        for name in &include {
            match o.metric.get(name) {
                Some(v) => drop(metric.insert(name.clone(), v.clone())),
                None => drop(metric.remove(name)),
            }
        }
        if !seen.insert(metric.clone()) {
            let msg = if grouped {
                "multiple matches for labels: grouping labels must ensure unique matches"
            } else {
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            };
            return Err(EvalError::Execution(msg.into()));
        }
        out.push(Element { metric, value });
    }
    Ok(Value::Vector(out))
}
