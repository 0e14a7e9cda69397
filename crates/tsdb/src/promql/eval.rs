//! The expression walk: what each AST node means at one evaluation instant.
//!
//! Why a module: selectors are where PromQL meets storage, and their rules
//! are subtle: an instant selector takes each series' newest sample at most
//! `lookback` old (5 min), unless that sample is a staleness marker; a range
//! selector takes every sample in `[t - range, t]` minus stale markers;
//! `offset` shifts the instant back, `@` pins it (`start()`/`end()` are the
//! range query's ends); a subquery evaluates its inner expression at its own
//! step, aligned to multiples of the step as Prometheus aligns them.

use std::time::{Instant, SystemTime};

use promql_parser::label::MatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::cache::SelectorCache;
use super::{Element, EvalError, Metric, QueryLimits, Series, Value};
use crate::chunk::is_stale;
use crate::{Db, MatchType, Matcher};

/// Evaluates expressions of one query.
pub struct Evaluator<'a> {
    pub(crate) db: &'a Db,
    pub(crate) limits: &'a QueryLimits,
    start_ms: i64,
    end_ms: i64,
    pub(crate) step_ms: i64,
    started: Instant,
    /// Samples currently loaded by range selectors of this step.
    loaded: usize,
    /// Selectors' series loaded once for the whole query.
    cache: SelectorCache,
    /// Label sets derived from those series, once per query.
    pub(crate) labels: super::memo::LabelMemo,
}

fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

impl<'a> Evaluator<'a> {
    /// An evaluator for a query over `[start_ms, end_ms]`.
    pub fn new(
        db: &'a Db,
        limits: &'a QueryLimits,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        started: Instant,
    ) -> Self {
        Self {
            db,
            limits,
            start_ms,
            end_ms,
            step_ms,
            started,
            loaded: 0,
            cache: SelectorCache::default(),
            labels: Default::default(),
        }
    }

    fn check_deadline(&self, stage: &'static str) -> Result<(), EvalError> {
        if self.started.elapsed() > self.limits.timeout {
            return Err(EvalError::Timeout(stage));
        }
        Ok(())
    }

    /// The instant a selector reads at: `t`, or its `@`, minus its offset.
    pub(crate) fn ref_time(&self, t: i64, at: &Option<AtModifier>, offset: &Option<Offset>) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.start_ms,
            Some(AtModifier::End) => self.end_ms,
            Some(AtModifier::At(st)) => match st.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => duration_ms(&d),
                Err(e) => -duration_ms(&e.duration()),
            },
        };
        base.saturating_sub(offset_ms(offset))
    }

    pub(crate) fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, EvalError> {
        let mut out = Vec::new();
        if let Some(name) = &vs.name {
            out.push(Matcher::eq(crate::labels::METRIC_NAME, name));
        }
        if !vs.matchers.or_matchers.is_empty() {
            return Err(EvalError::BadData(
                "\"or\" inside a selector is not supported".into(),
            ));
        }
        for m in &vs.matchers.matchers {
            let kind = match m.op {
                MatchOp::Equal => MatchType::Equal,
                MatchOp::NotEqual => MatchType::NotEqual,
                MatchOp::Re(_) => MatchType::Regex,
                MatchOp::NotRe(_) => MatchType::NotRegex,
            };
            out.push(
                Matcher::new(kind, m.name.clone(), m.value.clone())
                    .map_err(|e| EvalError::BadData(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// The selector's series with samples in `[min_t, max_t]`: sliced from
    /// the query's cache, or loaded over the rest of the query's window and
    /// cached (see [`super::cache`]).
    fn select(
        &mut self,
        vs: &VectorSelector,
        min_t: i64,
        max_t: i64,
        last_only: bool,
    ) -> Result<Vec<Series>, EvalError> {
        self.check_deadline("query preparation")?;
        let matchers = Self::matchers(vs)?;
        let key = Self::cache_key(&matchers);
        if let Some(hit) = self.cache.get(&key, min_t, max_t, last_only) {
            return Ok(hit);
        }
        let span = self.end_ms.saturating_sub(self.start_ms).max(0);
        let wide_max = max_t.saturating_add(span);
        if wide_max > max_t
            && let Ok(series) = self.load(&matchers, min_t, wide_max)
        {
            let sliced = super::cache::slice(&series, min_t, max_t, last_only);
            if self.cache.put(
                key.clone(),
                min_t,
                wide_max,
                series,
                self.limits.samples_max,
            ) {
                return Ok(sliced);
            }
        }
        // An instant query, or a window too big to keep: read just this step.
        let series = self.load(&matchers, min_t, max_t)?;
        if span == 0 {
            self.cache
                .put(key, min_t, max_t, series.clone(), self.limits.samples_max);
        }
        Ok(series)
    }

    /// The selector cache's key for `matchers`.
    fn cache_key(matchers: &[Matcher]) -> String {
        matchers
            .iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join("\u{1}")
    }

    fn load(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Result<Vec<Series>, EvalError> {
        let got = self
            .db
            .select(matchers, min_t, max_t)
            .map_err(|e| match e {
                crate::Error::QueryTooLarge { .. } => EvalError::too_many_samples(),
                e => EvalError::Execution(e.to_string()),
            })?;
        if got.len() > self.limits.series_max {
            return Err(EvalError::Execution(format!(
                "query would touch more than {} series",
                self.limits.series_max
            )));
        }
        Ok(got
            .into_iter()
            .map(|(labels, samples)| Series {
                metric: labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect(),
                samples,
            })
            .collect())
    }

    fn instant_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Element>, EvalError> {
        let rt = self.ref_time(t, &vs.at, &vs.offset);
        let min_t = rt.saturating_sub(self.limits.lookback_ms);
        // The steps after the first: straight from the query's cache.
        let key = Self::cache_key(&Self::matchers(vs)?);
        if let Some(elements) = self.cache.last(&key, min_t, rt, |v| !is_stale(v)) {
            self.check_deadline("query preparation")?;
            return Ok(elements);
        }
        let series = self.select(vs, min_t, rt, true)?;
        Ok(series
            .into_iter()
            .filter_map(|s| {
                let &(_, v) = s.samples.last()?;
                (!is_stale(v)).then_some(Element {
                    metric: s.metric,
                    value: v,
                })
            })
            .collect())
    }

    fn range_selector(
        &mut self,
        vs: &VectorSelector,
        range_ms: i64,
        t: i64,
    ) -> Result<Vec<Series>, EvalError> {
        let rt = self.ref_time(t, &vs.at, &vs.offset);
        let mut series = self.select(vs, rt.saturating_sub(range_ms), rt, false)?;
        for s in &mut series {
            s.samples.retain(|&(_, v)| !is_stale(v));
            self.loaded += s.samples.len();
        }
        if self.loaded > self.limits.samples_max {
            return Err(EvalError::too_many_samples());
        }
        series.retain(|s| !s.samples.is_empty());
        Ok(series)
    }

    /// Counts `n` more samples (or points) loaded at this step, refusing past
    /// the query's limit.
    pub(crate) fn count_loaded(&mut self, n: usize) -> Result<(), EvalError> {
        self.loaded += n;
        if self.loaded > self.limits.samples_max {
            return Err(EvalError::too_many_samples());
        }
        Ok(())
    }

    /// Evaluates `expr` at instant `t`.
    pub fn eval(&mut self, expr: &Expr, t: i64) -> Result<Value, EvalError> {
        self.loaded = 0;
        self.eval_inner(expr, t)
    }

    pub(crate) fn eval_inner(&mut self, expr: &Expr, t: i64) -> Result<Value, EvalError> {
        self.check_deadline("inner eval")?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval_inner(&p.expr, t),
            Expr::Unary(u) => match self.eval_inner(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .map(|mut e| {
                            e.metric.remove(crate::labels::METRIC_NAME);
                            e.value = -e.value;
                            e
                        })
                        .collect(),
                )),
                _ => Err(EvalError::BadData("unary minus of a non-number".into())),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, t)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.range_selector(
                &ms.vs,
                duration_ms(&ms.range),
                t,
            )?)),
            Expr::Subquery(sq) => {
                let range = duration_ms(&sq.range);
                let step = sq
                    .step
                    .as_ref()
                    .map(duration_ms)
                    .unwrap_or(self.step_ms.max(60_000))
                    .max(1);
                let rt = self.ref_time(t, &sq.at, &sq.offset);
                let start = rt.saturating_sub(range);
                // Prometheus aligns subquery steps to absolute multiples of the step.
                let mut ts = start.div_euclid(step) * step;
                if ts < start {
                    ts += step;
                }
                let mut out: std::collections::BTreeMap<Metric, Vec<(i64, f64)>> =
                    Default::default();
                let saved = self.loaded;
                while ts <= rt {
                    match self.eval_inner(&sq.expr, ts)? {
                        Value::Vector(v) => {
                            for e in v {
                                out.entry(e.metric).or_default().push((ts, e.value));
                            }
                        }
                        Value::Scalar(v) => out.entry(Metric::new()).or_default().push((ts, v)),
                        _ => return Err(EvalError::BadData("subquery of a non-vector".into())),
                    }
                    self.loaded = saved + out.values().map(Vec::len).sum::<usize>();
                    if self.loaded > self.limits.samples_max {
                        return Err(EvalError::too_many_samples());
                    }
                    ts += step;
                }
                Ok(Value::Matrix(
                    out.into_iter()
                        .map(|(metric, samples)| Series { metric, samples })
                        .collect(),
                ))
            }
            Expr::Call(c) => super::functions::call(self, c, t),
            Expr::Aggregate(a) => super::aggr::aggregate(self, a, t),
            Expr::Binary(b) => super::binary::binary(self, b, t),
            Expr::Extension(_) => Err(EvalError::BadData("unsupported expression".into())),
        }
    }

    /// Evaluates to a scalar (a function or aggregation parameter).
    pub(crate) fn eval_scalar(&mut self, expr: &Expr, t: i64) -> Result<f64, EvalError> {
        match self.eval_inner(expr, t)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(EvalError::BadData("expected a scalar".into())),
        }
    }

    /// Evaluates to an instant vector.
    pub(crate) fn eval_vector(&mut self, expr: &Expr, t: i64) -> Result<Vec<Element>, EvalError> {
        match self.eval_inner(expr, t)? {
            Value::Vector(v) => Ok(v),
            _ => Err(EvalError::BadData("expected an instant vector".into())),
        }
    }

    /// Evaluates to a range vector, with the range's bounds `(start, end)`.
    pub(crate) fn eval_matrix(
        &mut self,
        expr: &Expr,
        t: i64,
    ) -> Result<(Vec<Series>, i64, i64), EvalError> {
        let (range, at, offset) = match expr {
            Expr::MatrixSelector(ms) => (duration_ms(&ms.range), &ms.vs.at, &ms.vs.offset),
            Expr::Subquery(sq) => (duration_ms(&sq.range), &sq.at, &sq.offset),
            _ => return Err(EvalError::BadData("expected a range vector".into())),
        };
        let end = self.ref_time(t, at, offset);
        match self.eval_inner(expr, t)? {
            Value::Matrix(m) => Ok((m, end - range, end)),
            _ => Err(EvalError::BadData("expected a range vector".into())),
        }
    }
}
