//! Replays one traffic pattern through several algorithms, side by side.
//!
//! Why it exists: the chapter's comparisons are about behaviour over time
//! (the fixed window's boundary burst, the token bucket's burst allowance,
//! the leaking bucket's steady outflow). `hyperscale ratelimit simulate`
//! prints this module's table so they can be seen, and tests pin them.
//!
//! A pattern is a comma-separated list of `AT:COUNT` (COUNT requests at
//! instant AT) or `FROM-TO/EVERY:COUNT` (COUNT requests every EVERY from FROM
//! until before TO). Times are numbers with `ms`, `s` (default) or `m`:
//! `59s:10,60s:10` is the boundary burst; `0-60/1:2` is 2 per second.

use crate::algorithm::{Algorithm, NANOS_PER_SECOND, Nanos, Quota, State};

/// Most arrivals one simulation accepts (keeps the CLI bounded).
pub const ARRIVALS_MAX: u64 = 10_000_000;

/// One group of simultaneous arrivals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    /// When they arrive.
    pub at_ns: Nanos,
    /// How many.
    pub count: u64,
}

/// Parses a duration: `250ms`, `1.5s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Nanos, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e9)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60e9)
    } else {
        (text, 1e9)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 2s or 1m"))?;
    if !(0.0..=1e7).contains(&value) {
        return Err(format!(
            "duration {text:?} must be between 0 and 10^7 units"
        ));
    }
    Ok((value * scale).round() as Nanos)
}

/// Parses a burst pattern (see the module docs).
pub fn parse_pattern(text: &str) -> Result<Vec<Burst>, String> {
    let mut bursts = Vec::new();
    let mut total = 0u64;
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (when, count) = item
            .rsplit_once(':')
            .ok_or_else(|| format!("{item:?} is not AT:COUNT or FROM-TO/EVERY:COUNT"))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| format!("count in {item:?} is not a whole number"))?;
        let instants = match when.split_once('/') {
            Some((range, every)) => {
                let (from, to) = range
                    .split_once('-')
                    .ok_or_else(|| format!("{item:?}: a repeat needs FROM-TO/EVERY"))?;
                let (from, to, every) = (
                    parse_duration(from)?,
                    parse_duration(to)?,
                    parse_duration(every)?,
                );
                if every == 0 || to < from {
                    return Err(format!("{item:?}: EVERY must be > 0 and TO ≥ FROM"));
                }
                (0..)
                    .map(|i| from + i * every)
                    .take_while(|&t| t < to)
                    .collect()
            }
            None => vec![parse_duration(when)?],
        };
        for at_ns in instants {
            total = total.saturating_add(count);
            if total > ARRIVALS_MAX {
                return Err(format!("the pattern has over {ARRIVALS_MAX} requests"));
            }
            bursts.push(Burst { at_ns, count });
        }
    }
    if bursts.is_empty() {
        return Err("the pattern is empty".into());
    }
    bursts.sort_by_key(|b| b.at_ns);
    Ok(bursts)
}

/// One row of the table: a tick and what each algorithm admitted in it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// Start of the tick.
    pub at_ns: Nanos,
    /// Requests that arrived in the tick.
    pub offered: u64,
    /// Admitted per algorithm (same order as [`Simulation::algorithms`]).
    pub admitted: Vec<u64>,
}

/// The outcome of one replay.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Simulation {
    /// The algorithms compared.
    pub algorithms: Vec<Algorithm>,
    /// Ticks in which something arrived.
    pub rows: Vec<Row>,
    /// Admitted in total, per algorithm.
    pub admitted_total: Vec<u64>,
    /// Most admitted within any window of the quota's length, per algorithm
    /// (for the leaking bucket, counted when requests leave the queue).
    pub max_in_any_window: Vec<u64>,
}

/// Replays `bursts` through each algorithm under `quota`, grouped by `tick_ns`.
pub fn run(
    algorithms: &[Algorithm],
    quota: &Quota,
    bursts: &[Burst],
    tick_ns: Nanos,
) -> Simulation {
    let tick_ns = tick_ns.max(1);
    let mut rows: Vec<Row> = Vec::new();
    let mut times: Vec<Vec<Nanos>> = vec![Vec::new(); algorithms.len()];
    let mut states: Vec<State> = algorithms
        .iter()
        .map(|a| State::new(*a, quota, 0))
        .collect();
    for burst in bursts {
        let tick = burst.at_ns / tick_ns * tick_ns;
        if rows.last().is_none_or(|r| r.at_ns != tick) {
            rows.push(Row {
                at_ns: tick,
                offered: 0,
                admitted: vec![0; algorithms.len()],
            });
        }
        let row = rows.last_mut().expect("pushed above");
        row.offered += burst.count;
        for (i, state) in states.iter_mut().enumerate() {
            for _ in 0..burst.count {
                let decision = state.check(quota, burst.at_ns);
                if decision.allowed {
                    row.admitted[i] += 1;
                    times[i].push(burst.at_ns + decision.delay_ns);
                }
            }
        }
    }
    let max_in_any_window = times
        .iter_mut()
        .map(|t| max_in_window(t, quota.window_ns))
        .collect();
    let admitted_total = times.iter().map(|t| t.len() as u64).collect();
    Simulation {
        algorithms: algorithms.to_vec(),
        rows,
        admitted_total,
        max_in_any_window,
    }
}

/// Largest number of `times` inside any half-open window `(t − w, t]`.
fn max_in_window(times: &mut [Nanos], window_ns: Nanos) -> u64 {
    times.sort_unstable();
    let mut start = 0;
    let mut best = 0;
    for end in 0..times.len() {
        while times[start] + window_ns <= times[end] {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

/// Formats nanoseconds as seconds for tables.
pub fn seconds(ns: Nanos) -> String {
    let whole = ns / NANOS_PER_SECOND;
    let millis = ns % NANOS_PER_SECOND / 1_000_000;
    if millis == 0 {
        format!("{whole}s")
    } else {
        format!("{whole}.{millis:03}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse() {
        assert_eq!(
            parse_pattern("59s:10, 1m:10").unwrap(),
            vec![
                Burst {
                    at_ns: 59 * NANOS_PER_SECOND,
                    count: 10
                },
                Burst {
                    at_ns: 60 * NANOS_PER_SECOND,
                    count: 10
                },
            ]
        );
        assert_eq!(parse_pattern("0-1/250ms:2").unwrap().len(), 4);
        assert!(parse_pattern("5:x").is_err());
        assert!(parse_pattern("0-1/0:2").is_err());
        assert!(parse_pattern("").is_err());
    }

    #[test]
    fn the_boundary_burst_side_by_side() {
        let quota = Quota::new(10, 60 * NANOS_PER_SECOND).unwrap();
        let bursts = parse_pattern("59s:10,60s:10").unwrap();
        let sim = run(&Algorithm::ALL, &quota, &bursts, NANOS_PER_SECOND);
        let max = |a: Algorithm| {
            sim.max_in_any_window[Algorithm::ALL.iter().position(|x| *x == a).unwrap()]
        };
        assert_eq!(
            max(Algorithm::FixedWindow),
            20,
            "fixed window lets 2N through across the boundary"
        );
        assert_eq!(max(Algorithm::SlidingWindowLog), 10);
        assert_eq!(max(Algorithm::TokenBucket), 10);
        assert!(max(Algorithm::SlidingWindowCounter) <= 11);
        assert!(max(Algorithm::LeakingBucket) <= 10);
    }
}
