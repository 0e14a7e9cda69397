//! PromQL: the query language of Prometheus, evaluated over [`Db`].
//!
//! Why a module: the chapter's query service must answer dashboards and
//! alerts, and PromQL is what Grafana, `promtool` and every Prometheus client
//! speak. Parsing is delegated to `promql-parser` (GreptimeTeam's crate, the
//! parser the Rust ecosystem maintains: a yacc grammar generated from
//! Prometheus's own, used in production by GreptimeDB, with the same
//! operator precedence, duration and string-escape rules), because a
//! hand-written parser would only be a second source of divergence. The
//! evaluator is ours: it walks the AST step by step as Prometheus's engine
//! does ([`eval`]): instant selectors with the 5-minute lookback and
//! staleness markers, range selectors, `offset` and `@`, subqueries,
//! functions ([`functions`]), aggregations ([`aggr`]) and binary operators
//! with vector matching ([`binary`]).
//!
//! Every query is bounded ([`QueryLimits`]): samples loaded, series
//! returned, steps, and a deadline; each breach is an [`EvalError`] worded as
//! Prometheus words it.

pub mod aggr;
pub mod binary;
mod cache;
mod downsampled;
pub mod eval;
pub mod functions;
mod memo;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::Db;

pub use eval::Evaluator;

/// A label set during evaluation (name → value, sorted by name), shared:
/// cloning it is a reference count, not a copy of every label.
///
/// Why shared: a range query evaluates its selectors at every step, and each
/// step hands every series' labels to the next stage; with owned maps that
/// was one allocation per label per series per step (600,000 a step for
/// 10,000 series), the bulk of a dashboard's range-query time. Writing
/// through it (`insert`, `remove`: [`std::ops::DerefMut`]) copies the map
/// only when another holder shares it.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Metric(std::sync::Arc<BTreeMap<String, String>>);

impl Metric {
    /// No labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether both are the same shared set (not just equal).
    pub fn same_as(&self, other: &Metric) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }

    /// The shared set's address: its identity while it is alive.
    pub(crate) fn identity(&self) -> usize {
        std::sync::Arc::as_ptr(&self.0) as usize
    }

    /// The labels as an owned map (copied only if shared).
    pub fn into_map(self) -> BTreeMap<String, String> {
        std::sync::Arc::unwrap_or_clone(self.0)
    }
}

impl std::ops::Deref for Metric {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Metric {
    fn deref_mut(&mut self) -> &mut Self::Target {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl std::fmt::Debug for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromIterator<(String, String)> for Metric {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(std::sync::Arc::new(iter.into_iter().collect()))
    }
}

impl From<BTreeMap<String, String>> for Metric {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(std::sync::Arc::new(map))
    }
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// Its labels.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
}

/// One series of a range vector (matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its labels.
    pub metric: Metric,
    /// `(t_ms, value)` in time order.
    pub samples: Vec<(i64, f64)>,
}

/// What an expression evaluates to at one instant.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string literal.
    String(String),
    /// An instant vector.
    Vector(Vec<Element>),
    /// A range vector.
    Matrix(Vec<Series>),
}

/// Bounds of one query.
#[derive(Clone, Debug)]
pub struct QueryLimits {
    /// Samples loaded into memory at once (Prometheus's `--query.max-samples`).
    pub samples_max: usize,
    /// Series in a result.
    pub series_max: usize,
    /// Steps of a range query (Prometheus refuses more than 11 000).
    pub steps_max: i64,
    /// Wall-clock budget (Prometheus's `--query.timeout`, 2 min).
    pub timeout: Duration,
    /// How far back an instant selector looks (5 min).
    pub lookback_ms: i64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            samples_max: 50_000_000,
            series_max: 500_000,
            steps_max: 11_000,
            timeout: Duration::from_secs(120),
            lookback_ms: 5 * 60_000,
        }
    }
}

/// Why a query failed, as the HTTP API reports it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The query does not parse or is ill-typed (`bad_data`, HTTP 400).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (`execution`, HTTP 422).
    #[error("{0}")]
    Execution(String),
    /// The deadline passed (`timeout`, HTTP 503).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
}

impl EvalError {
    pub(crate) fn too_many_samples() -> Self {
        EvalError::Execution(
            "query processing would load too many samples into memory in query execution".into(),
        )
    }
}

/// A result of [`instant_query`] / [`range_query`].
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    /// An instant query's value at `t_ms`.
    Instant {
        /// Evaluation time.
        t_ms: i64,
        /// The value (never a matrix unless the expression is a range selector).
        value: Value,
    },
    /// A range query's series (a scalar result becomes one series without labels).
    Range(Vec<Series>),
}

/// Parses `query` into an AST, errors worded as Prometheus's `bad_data`.
pub fn parse(query: &str) -> Result<promql_parser::parser::Expr, EvalError> {
    if query.len() > 64 * 1024 {
        return Err(EvalError::BadData(
            "query is longer than 65536 bytes".into(),
        ));
    }
    promql_parser::parser::parse(query)
        .map_err(|e| EvalError::BadData(format!("invalid parameter \"query\": {e}")))
}

/// Evaluates `query` at `t_ms`.
pub fn instant_query(
    db: &Db,
    query: &str,
    t_ms: i64,
    limits: &QueryLimits,
) -> Result<QueryValue, EvalError> {
    let expr = parse(query)?;
    let mut ev = Evaluator::new(db, limits, t_ms, t_ms, 0, Instant::now());
    let value = ev.eval(&expr, t_ms)?;
    Ok(QueryValue::Instant { t_ms, value })
}

/// Evaluates `query` at every step from `start_ms` to `end_ms`.
pub fn range_query(
    db: &Db,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    limits: &QueryLimits,
) -> Result<QueryValue, EvalError> {
    if step_ms <= 0 {
        return Err(EvalError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if end_ms < start_ms {
        return Err(EvalError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    if (end_ms - start_ms) / step_ms > limits.steps_max {
        return Err(EvalError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let expr = parse(query)?;
    match expr.value_type() {
        promql_parser::parser::value::ValueType::Vector
        | promql_parser::parser::value::ValueType::Scalar => {}
        t => {
            return Err(EvalError::BadData(format!(
                "invalid parameter \"query\": invalid expression type \"{t}\" for range query, must be Scalar or instant Vector"
            )));
        }
    }
    let mut ev = Evaluator::new(db, limits, start_ms, end_ms, step_ms, Instant::now());
    let mut out: BTreeMap<Metric, Vec<(i64, f64)>> = BTreeMap::new();
    let mut points = 0usize;
    let mut t = start_ms;
    while t <= end_ms {
        match ev.eval(&expr, t)? {
            Value::Scalar(v) => out.entry(Metric::new()).or_default().push((t, v)),
            Value::Vector(v) => {
                for e in v {
                    out.entry(e.metric).or_default().push((t, e.value));
                }
            }
            _ => return Err(EvalError::Execution("range query of a non-vector".into())),
        }
        points += out.len();
        if points > limits.samples_max {
            return Err(EvalError::too_many_samples());
        }
        if out.len() > limits.series_max {
            return Err(EvalError::Execution(format!(
                "query returned more than {} series",
                limits.series_max
            )));
        }
        t += step_ms;
    }
    Ok(QueryValue::Range(
        out.into_iter()
            .map(|(metric, samples)| Series { metric, samples })
            .collect(),
    ))
}
