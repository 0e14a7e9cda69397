//! The rules file's schema and its validation, done while deserializing.
//!
//! Why validate inside `Deserialize` (`try_from` on each struct) rather than
//! after: the YAML parser attaches the position of the node being read to any
//! error raised there, so "requests_per_unit must be between 1 and …" comes
//! out as "…at line 7 column 9" with no span bookkeeping of our own.
//!
//! The shape follows envoyproxy/ratelimit: a `domain`, a tree of
//! `descriptors` (each a `key`, an optional `value`, limits, and nested
//! `descriptors`), and per limit a `unit` with an optional `unit_multiplier`
//! (any N seconds), `requests_per_unit`, plus our additions: `algorithm`,
//! `burst`, `mode: hard|soft` with `overshoot_percent`, `shadow_mode`, `name`.

use crate::algorithm::{Algorithm, COUNT_MAX, NANOS_PER_SECOND, Quota};
use serde::Deserialize;

/// Longest descriptor value (path prefix, header value) a rule may name.
pub const VALUE_BYTES_MAX: usize = 1024;
/// Deepest descriptor nesting accepted (envoy's trees are rarely past 3).
pub const DEPTH_MAX: usize = 8;

/// The unit of `requests_per_unit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// One second.
    #[serde(alias = "SECOND")]
    Second,
    /// 60 seconds.
    #[serde(alias = "MINUTE")]
    Minute,
    /// 3600 seconds.
    #[serde(alias = "HOUR")]
    Hour,
    /// 86400 seconds.
    #[serde(alias = "DAY")]
    Day,
}

impl Unit {
    /// The unit's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
        }
    }
}

/// Hard limits never let a request over; soft ones allow a configured overshoot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 경성: the count never exceeds the threshold.
    #[default]
    Hard,
    /// 연성: the count may exceed it by `overshoot_percent` for a while.
    Soft,
}

/// One limit as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    name: Option<String>,
    unit: Unit,
    #[serde(default, deserialize_with = "count")]
    unit_multiplier: Option<u64>,
    #[serde(deserialize_with = "count")]
    requests_per_unit: Option<u64>,
    algorithm: Option<Algorithm>,
    #[serde(default, deserialize_with = "count")]
    burst: Option<u64>,
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "percent")]
    overshoot_percent: Option<u64>,
    shadow_mode: Option<bool>,
}

/// One validated limit.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimit")]
pub struct LimitSpec {
    /// Explicit name (metrics label, `RateLimit-Policy`); derived if absent.
    pub name: Option<String>,
    /// Which algorithm enforces it.
    pub algorithm: Algorithm,
    /// The nominal quota, as written (what clients are told).
    pub nominal: Quota,
    /// The quota actually enforced: nominal plus a soft limit's overshoot.
    pub enforced: Quota,
    /// Hard or soft.
    pub mode: Mode,
    /// `None` inherits the descriptor's `shadow_mode`.
    pub shadow_mode: Option<bool>,
    /// The window in seconds (`unit` × `unit_multiplier`), for display.
    pub window_seconds: u64,
}

/// Largest `requests_per_unit` a `sliding_window_log` accepts: it keeps 8
/// bytes per admitted request per key.
pub const SLIDING_LOG_LIMIT_MAX: u64 = 100_000;

/// The algorithm when a rule names none: the notes' compromise between
/// precision and memory.
pub const DEFAULT_ALGORITHM: Algorithm = Algorithm::SlidingWindowCounter;

impl TryFrom<RawLimit> for LimitSpec {
    type Error = String;

    fn try_from(raw: RawLimit) -> Result<Self, String> {
        let limit = raw
            .requests_per_unit
            .ok_or("requests_per_unit is required")?;
        let multiplier = raw.unit_multiplier.unwrap_or(1);
        let window_seconds = raw.unit.seconds().saturating_mul(multiplier);
        let window_ns = window_seconds.saturating_mul(NANOS_PER_SECOND);
        let algorithm = raw.algorithm.unwrap_or(DEFAULT_ALGORITHM);
        let burst = match raw.burst {
            Some(b) if matches!(algorithm, Algorithm::TokenBucket | Algorithm::LeakingBucket) => b,
            Some(_) => {
                return Err(format!(
                    "burst applies to token_bucket and leaking_bucket, not {algorithm}"
                ));
            }
            None => limit,
        };
        let nominal = Quota::with_burst(limit, window_ns, burst).map_err(|e| e.to_string())?;
        if algorithm == Algorithm::SlidingWindowLog && limit > SLIDING_LOG_LIMIT_MAX {
            return Err(format!(
                "sliding_window_log keeps one timestamp per request: requests_per_unit {limit} is over \
                 {SLIDING_LOG_LIMIT_MAX}; use sliding_window_counter for large limits"
            ));
        }
        let mode = raw.mode.unwrap_or_default();
        let enforced = match (mode, raw.overshoot_percent) {
            (Mode::Hard, None) => nominal,
            (Mode::Hard, Some(_)) => return Err("overshoot_percent needs mode: soft".into()),
            (Mode::Soft, None) => {
                return Err("mode: soft needs overshoot_percent (1 to 1000)".into());
            }
            (Mode::Soft, Some(p)) => with_overshoot(algorithm, nominal, p)?,
        };
        if let Some(name) = &raw.name {
            check_name(name)?;
        }
        Ok(LimitSpec {
            name: raw.name,
            algorithm,
            nominal,
            enforced,
            mode,
            shadow_mode: raw.shadow_mode,
            window_seconds,
        })
    }
}

/// Reads a whole number in `min..=max`, failing *inside* the scalar so the
/// parser reports the scalar's own line and column.
struct Bounded {
    what: &'static str,
    min: u64,
    max: u64,
}

impl serde::de::Visitor<'_> for Bounded {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} as a whole number between {} and {}",
            self.what, self.min, self.max
        )
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "{} must be between {} and {}, got {v}",
                self.what, self.min, self.max
            ))),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(E::custom(format!(
                "{} must be between {} and {}, got {v}",
                self.what, self.min, self.max
            )))
        }
    }
}

fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_u64(Bounded {
        what: "a count (requests_per_unit, unit_multiplier, burst)",
        min: 1,
        max: COUNT_MAX,
    })
    .map(Some)
}

fn percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_u64(Bounded {
        what: "overshoot_percent",
        min: 1,
        max: 1000,
    })
    .map(Some)
}

/// A soft limit enforces `ceil(n × (1 + p/100))`: the bucket algorithms grow
/// their burst (the rate stays), the window algorithms their count.
fn with_overshoot(algorithm: Algorithm, nominal: Quota, percent: u64) -> Result<Quota, String> {
    let grow = |n: u64| n + (n * percent).div_ceil(100);
    let (limit, burst) = match algorithm {
        Algorithm::TokenBucket | Algorithm::LeakingBucket => (nominal.limit, grow(nominal.burst)),
        _ => (grow(nominal.limit), grow(nominal.burst)),
    };
    Quota::with_burst(limit, nominal.window_ns, burst).map_err(|e| e.to_string())
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 1-128 characters of [A-Za-z0-9_-./]"
        ))
    }
}

/// What a descriptor key names in a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DescriptorKey {
    /// The client's IP address.
    RemoteAddress,
    /// The request path; a rule's value matches as a prefix.
    Path,
    /// The HTTP method (upper case).
    Method,
    /// The API key header (configurable name in the layer).
    ApiKey,
    /// Any request header, by lower-case name.
    Header(String),
    /// A key supplied by the caller (CLI `--descriptor`, custom extractors).
    Generic(String),
}

impl DescriptorKey {
    /// Parses `remote_address`, `path`, `method`, `api_key`, `header:<name>`
    /// or a generic `[a-z0-9_]+` key.
    pub fn parse(text: &str) -> Result<DescriptorKey, String> {
        let key = match text {
            "remote_address" => DescriptorKey::RemoteAddress,
            "path" => DescriptorKey::Path,
            "method" => DescriptorKey::Method,
            "api_key" => DescriptorKey::ApiKey,
            _ => match text.strip_prefix("header:") {
                Some(name) => {
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        format!("{name:?} in {text:?} is not a valid HTTP header name")
                    })?;
                    DescriptorKey::Header(name.to_ascii_lowercase())
                }
                None if !text.is_empty()
                    && text.len() <= 64
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
                {
                    DescriptorKey::Generic(text.to_owned())
                }
                None => {
                    return Err(format!(
                        "descriptor key {text:?} is not one of remote_address, path, method, api_key, \
                         header:<name>, or a custom [a-z0-9_] key"
                    ));
                }
            },
        };
        Ok(key)
    }

    /// The key as written in rules files.
    pub fn as_string(&self) -> String {
        match self {
            DescriptorKey::RemoteAddress => "remote_address".into(),
            DescriptorKey::Path => "path".into(),
            DescriptorKey::Method => "method".into(),
            DescriptorKey::ApiKey => "api_key".into(),
            DescriptorKey::Header(name) => format!("header:{name}"),
            DescriptorKey::Generic(name) => name.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescriptor {
    key: String,
    value: Option<String>,
    rate_limit: Option<LimitSpec>,
    #[serde(default)]
    rate_limits: Vec<LimitSpec>,
    #[serde(default)]
    descriptors: Vec<DescriptorSpec>,
    shadow_mode: Option<bool>,
}

/// One validated node of the descriptor tree.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawDescriptor")]
pub struct DescriptorSpec {
    /// Which request attribute this level matches.
    pub key: DescriptorKey,
    /// `None`: any value (one counter per distinct value); `Some`: only this
    /// value (a prefix for `path`).
    pub value: Option<String>,
    /// Limits at this level; every one must pass.
    pub limits: Vec<LimitSpec>,
    /// Nested levels, refining the match.
    pub descriptors: Vec<DescriptorSpec>,
    /// Count and log, never block (inherited by nested levels).
    pub shadow_mode: Option<bool>,
}

impl TryFrom<RawDescriptor> for DescriptorSpec {
    type Error = String;

    fn try_from(raw: RawDescriptor) -> Result<Self, String> {
        let key = DescriptorKey::parse(&raw.key)?;
        let value = match raw.value {
            Some(v) if v.is_empty() || v.len() > VALUE_BYTES_MAX => {
                return Err(format!(
                    "value of {:?} must be 1 to {VALUE_BYTES_MAX} bytes",
                    raw.key
                ));
            }
            Some(v) if key == DescriptorKey::Path && !v.starts_with('/') => {
                return Err(format!(
                    "a path value is a prefix starting with '/', got {v:?}"
                ));
            }
            Some(v) if key == DescriptorKey::Method => Some(v.to_ascii_uppercase()),
            other => other,
        };
        let mut limits = raw.rate_limits;
        limits.extend(raw.rate_limit);
        if limits.is_empty() && raw.descriptors.is_empty() {
            return Err(format!(
                "descriptor {:?} has no rate_limit(s) and no nested descriptors",
                raw.key
            ));
        }
        check_siblings(&raw.descriptors)?;
        let depth = 1 + raw
            .descriptors
            .iter()
            .map(DescriptorSpec::depth)
            .max()
            .unwrap_or(0);
        if depth > DEPTH_MAX {
            return Err(format!(
                "descriptors nest {depth} levels deep; at most {DEPTH_MAX}"
            ));
        }
        Ok(DescriptorSpec {
            key,
            value,
            limits,
            descriptors: raw.descriptors,
            shadow_mode: raw.shadow_mode,
        })
    }
}

impl DescriptorSpec {
    fn depth(&self) -> usize {
        1 + self
            .descriptors
            .iter()
            .map(DescriptorSpec::depth)
            .max()
            .unwrap_or(0)
    }
}

/// Two siblings with the same key and value would be ambiguous.
fn check_siblings(siblings: &[DescriptorSpec]) -> Result<(), String> {
    for (i, a) in siblings.iter().enumerate() {
        if siblings[..i]
            .iter()
            .any(|b| b.key == a.key && b.value == a.value)
        {
            return Err(format!(
                "two sibling descriptors have key {:?} and value {:?}; merge them",
                a.key.as_string(),
                a.value
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    domain: String,
    #[serde(default)]
    descriptors: Vec<DescriptorSpec>,
}

/// A whole validated rules file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFile")]
pub struct FileSpec {
    /// Namespace of every counter key, so several rule sets share one store.
    pub domain: String,
    /// The top level of the descriptor tree.
    pub descriptors: Vec<DescriptorSpec>,
}

impl TryFrom<RawFile> for FileSpec {
    type Error = String;

    fn try_from(raw: RawFile) -> Result<Self, String> {
        check_name(&raw.domain).map_err(|e| format!("domain: {e}"))?;
        check_siblings(&raw.descriptors)?;
        Ok(FileSpec {
            domain: raw.domain,
            descriptors: raw.descriptors,
        })
    }
}
