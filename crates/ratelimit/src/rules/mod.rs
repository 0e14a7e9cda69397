//! Rules on disk: which requests are limited, how, and by what key.
//!
//! The notes: "rules are kept on disk; workers read them often and cache them".
//! [`Rules`] is that cache — an immutable, validated tree compiled from the
//! YAML file — and [`reload::RulesWatcher`] re-reads the file when it changes.
//!
//! Matching follows envoyproxy/ratelimit. A request is described by its
//! [`Descriptors`] (remote address, path, method, headers, API key…). At each
//! level of the tree, for each key the request has, the most specific sibling
//! wins: an exact value (the longest prefix for `path`) beats a key-only
//! sibling. A matched node's limits all apply, and matching continues into its
//! children. A key-only node counts each distinct request value separately
//! (`remote_address` with no value = one counter per client); a node with a
//! value shares one counter among everything it matches (`path: /limited`
//! = one counter for every path under the prefix).

pub mod reload;
pub mod schema;

pub use schema::{DescriptorKey, LimitSpec, Mode, Unit};

use crate::algorithm::{Algorithm, Quota};
use schema::{DescriptorSpec, FileSpec};
use std::path::Path;
use std::sync::Arc;

/// Largest rules file read (rules are a config, not a database).
pub const FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Request values longer than this are replaced by their hash in counter keys,
/// bounding every key's size whatever a client sends.
pub const KEY_VALUE_BYTES_MAX: usize = 256;

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but is not valid; `message` names the line.
    #[error("invalid rules in {origin}: {message}")]
    Invalid {
        /// The file (or "<inline>").
        origin: String,
        /// What is wrong and where.
        message: String,
    },
}

/// One enforced limit, as compiled from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Unique within the file: the explicit `name` or the descriptor path.
    pub name: String,
    /// Which algorithm enforces it.
    pub algorithm: Algorithm,
    /// What clients are told (headers).
    pub nominal: Quota,
    /// What is enforced (nominal + soft overshoot).
    pub enforced: Quota,
    /// Hard or soft.
    pub mode: Mode,
    /// Count and log, never block.
    pub shadow: bool,
    /// `unit` × `unit_multiplier` in seconds.
    pub window_seconds: u64,
}

/// A compiled node of the descriptor tree.
#[derive(Debug)]
struct Node {
    key: DescriptorKey,
    value: Option<String>,
    limits: Vec<Arc<Rule>>,
    children: Vec<Node>,
}

/// A validated, immutable rule set.
#[derive(Debug)]
pub struct Rules {
    /// The file's `domain`: the namespace of every counter key.
    pub domain: String,
    /// Every limit in the file, in file order (for listings).
    pub all: Vec<Arc<Rule>>,
    roots: Vec<Node>,
}

/// A request's attributes, the input of matching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptors {
    entries: Vec<(DescriptorKey, String)>,
}

impl Descriptors {
    /// No attributes.
    pub fn new() -> Descriptors {
        Descriptors::default()
    }

    /// Adds (or replaces) an attribute.
    pub fn insert(&mut self, key: DescriptorKey, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The value of `key`, if the request has it.
    pub fn get(&self, key: &DescriptorKey) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses `key=value` as given on the command line.
    pub fn parse_pair(&mut self, pair: &str) -> Result<(), String> {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("descriptor {pair:?} is not key=value"))?;
        self.insert(DescriptorKey::parse(key.trim())?, value.trim());
        Ok(())
    }
}

/// Anything that can answer "what is this request's value for `key`?":
/// [`Descriptors`] for tools, a lazy view of an HTTP request in the layer
/// (so headers no rule mentions are never copied).
pub trait Attributes {
    /// The request's value for `key`, if it has one.
    fn attribute(&self, key: &DescriptorKey) -> Option<std::borrow::Cow<'_, str>>;
}

impl Attributes for Descriptors {
    fn attribute(&self, key: &DescriptorKey) -> Option<std::borrow::Cow<'_, str>> {
        self.get(key).map(std::borrow::Cow::Borrowed)
    }
}

/// A limit that applies to a request, with the counter it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The limit.
    pub rule: Arc<Rule>,
    /// The store key: domain, rule, algorithm and the matched values.
    pub counter_key: String,
}

impl Rules {
    /// Reads and validates a rules file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let io = |source| RulesError::Io {
            path: path.display().to_string(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > FILE_BYTES_MAX {
            return Err(RulesError::Invalid {
                origin: path.display().to_string(),
                message: format!(
                    "file is {size} bytes; rules files are limited to {FILE_BYTES_MAX}"
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Rules::parse(&text, &path.display().to_string())
    }

    /// Validates rules from text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Rules, RulesError> {
        let invalid = |message: String| RulesError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let spec: FileSpec = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut all = Vec::new();
        let roots = compile_level(&spec.descriptors, "", false, &mut all);
        for (i, rule) in all.iter().enumerate() {
            if all[..i].iter().any(|other| other.name == rule.name) {
                return Err(invalid(format!(
                    "two limits are named {:?}; names must be unique",
                    rule.name
                )));
            }
        }
        Ok(Rules {
            domain: spec.domain,
            all,
            roots,
        })
    }

    /// Every limit that applies to a request described by `request`.
    pub fn matching(&self, request: &(impl Attributes + ?Sized)) -> Vec<Match> {
        let mut found = Vec::new();
        let mut key = format!("rl:{}", escape(&self.domain));
        match_level(&self.roots, request, &mut key, &mut found);
        found
    }
}

fn compile_level(
    specs: &[DescriptorSpec],
    parent: &str,
    shadow: bool,
    all: &mut Vec<Arc<Rule>>,
) -> Vec<Node> {
    specs
        .iter()
        .map(|spec| {
            let segment = match &spec.value {
                Some(v) => format!("{}={v}", spec.key.as_string()),
                None => spec.key.as_string(),
            };
            let path = if parent.is_empty() {
                segment
            } else {
                format!("{parent}/{segment}")
            };
            let shadow = spec.shadow_mode.unwrap_or(shadow);
            let limits: Vec<Arc<Rule>> = spec
                .limits
                .iter()
                .enumerate()
                .map(|(i, limit)| {
                    let name = match &limit.name {
                        Some(name) => name.clone(),
                        None if spec.limits.len() > 1 => format!("{path}#{}", i + 1),
                        None => path.clone(),
                    };
                    let rule = Arc::new(Rule {
                        name,
                        algorithm: limit.algorithm,
                        nominal: limit.nominal,
                        enforced: limit.enforced,
                        mode: limit.mode,
                        shadow: limit.shadow_mode.unwrap_or(shadow),
                        window_seconds: limit.window_seconds,
                    });
                    all.push(rule.clone());
                    rule
                })
                .collect();
            let children = compile_level(&spec.descriptors, &path, shadow, all);
            Node {
                key: spec.key.clone(),
                value: spec.value.clone(),
                limits,
                children,
            }
        })
        .collect()
}

fn match_level(
    nodes: &[Node],
    request: &(impl Attributes + ?Sized),
    key: &mut String,
    found: &mut Vec<Match>,
) {
    for (i, node) in nodes.iter().enumerate() {
        // Visit each distinct key once, at its first sibling.
        if nodes[..i].iter().any(|n| n.key == node.key) {
            continue;
        }
        let Some(value) = request.attribute(&node.key) else {
            continue;
        };
        let Some(best) = best_sibling(nodes, &node.key, &value) else {
            continue;
        };
        let counted = best.value.as_deref().unwrap_or(&value);
        let saved = key.len();
        key.push(':');
        key.push_str(&escape(&best.key.as_string()));
        key.push('=');
        key.push_str(&bounded(counted));
        for rule in &best.limits {
            let counter_key = format!("{key}:{}:{}", escape(&rule.name), rule.algorithm.name());
            found.push(Match {
                rule: rule.clone(),
                counter_key,
            });
        }
        match_level(&best.children, request, key, found);
        key.truncate(saved);
    }
}

/// The most specific sibling with `key` matching `value`.
fn best_sibling<'a>(nodes: &'a [Node], key: &DescriptorKey, value: &str) -> Option<&'a Node> {
    let same_key = nodes.iter().filter(|n| n.key == *key);
    let exact = if *key == DescriptorKey::Path {
        same_key
            .clone()
            .filter(|n| {
                n.value
                    .as_deref()
                    .is_some_and(|prefix| value.starts_with(prefix))
            })
            .max_by_key(|n| n.value.as_ref().map_or(0, String::len))
    } else if *key == DescriptorKey::Method {
        same_key.clone().find(|n| {
            n.value
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
    } else {
        same_key.clone().find(|n| n.value.as_deref() == Some(value))
    };
    exact.or_else(|| same_key.clone().find(|n| n.value.is_none()))
}

/// Escapes the key separator so values cannot forge another key.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace(':', "\\:")
}

/// Escaped value, or its hash when too long to keep as is.
fn bounded(value: &str) -> String {
    if value.len() <= KEY_VALUE_BYTES_MAX {
        escape(value)
    } else {
        format!("#{:016x}", xxhash_rust::xxh3::xxh3_64(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests;
