//! Layered configuration: a TOML file, then `HYPERSCALE_<SYSTEM>_*` environment
//! variables, then command-line flags, each overriding the one before.
//!
//! Why this shape: operators keep the stable settings in a file checked into
//! their deployment, override one value per environment with a variable, and
//! try things on the command line. All three end up in one TOML table that is
//! deserialized once into the system's own config struct, so a system declares
//! its settings exactly once (a `#[derive(Deserialize)]` struct with
//! `#[serde(deny_unknown_fields, default)]`) and gets all three sources free.
//!
//! Every error names the key and where its value came from ("flag
//! `--maxmemory`", "env HYPERSCALE_KV_MAXMEMORY", "file kv.toml"), because
//! "invalid type: string, expected u64" alone does not tell a user what to fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Where each layer of a system's configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The TOML file given by `--config`, if any. A missing file is an error:
    /// a user who names a file expects it to be read.
    pub file: Option<PathBuf>,
    /// Prefix of the environment variables for this system, e.g.
    /// `HYPERSCALE_KV_`. `HYPERSCALE_KV_MAXMEMORY=1gb` sets key `maxmemory`;
    /// a double underscore descends into a table (`LIMITS__BODY_BYTES_MAX`).
    /// Empty means "ignore the environment".
    pub env_prefix: String,
    /// Values from flags, highest precedence: (dotted key, value).
    pub overrides: Vec<(String, toml::Value)>,
}

impl ConfigSources {
    /// Sources with a file (optional) and an environment prefix, no flags yet.
    pub fn new(file: Option<PathBuf>, env_prefix: impl Into<String>) -> Self {
        Self {
            file,
            env_prefix: env_prefix.into(),
            overrides: Vec::new(),
        }
    }

    /// Adds a flag override when the flag was given (`None` leaves lower
    /// layers in charge, which is why flags are `Option`s in every CLI).
    pub fn flag<V: Into<toml::Value>>(mut self, key: &str, value: Option<V>) -> Self {
        if let Some(value) = value {
            self.overrides.push((key.to_string(), value.into()));
        }
        self
    }
}

/// A configuration that could not be loaded; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML; `toml` reports the line and column.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file named by `--config`.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key is unknown or its value has the wrong type or range.
    #[error("config key `{key}` (from {origin}): {message}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// Which layer set it: a file, an environment variable or a flag.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Loads `T` from the layered sources and the process environment. See the
/// module doc.
pub fn load<T: DeserializeOwned>(sources: &ConfigSources) -> Result<T, ConfigError> {
    load_with_env(sources, std::env::vars())
}

/// [`load`] with the environment given explicitly (tests, embedding).
pub fn load_with_env<T: DeserializeOwned>(
    sources: &ConfigSources,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut merged = toml::Table::new();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    if let Some(path) = &sources.file {
        let table = read_file(path)?;
        let origin = format!("file {}", path.display());
        for key in leaf_keys(&table, "") {
            origins.insert(key, origin.clone());
        }
        merged = table;
    }
    if !sources.env_prefix.is_empty() {
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(&sources.env_prefix) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            set_dotted(&mut merged, &key, parse_scalar(&raw));
            origins.insert(key, format!("env {name}"));
        }
    }
    for (key, value) in &sources.overrides {
        set_dotted(&mut merged, key, value.clone());
        origins.insert(
            key.clone(),
            format!("flag --{}", key.replace(['_', '.'], "-")),
        );
    }
    deserialize(merged, &origins)
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|err| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: err.to_string().trim().replace('\n', " "),
        })
}

fn deserialize<T: DeserializeOwned>(
    merged: toml::Table,
    origins: &BTreeMap<String, String>,
) -> Result<T, ConfigError> {
    let value = toml::Value::Table(merged);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        // Depending on the deserializer an unknown field is reported at the
        // field or at its parent; always name the field itself.
        let key = match unknown_field_name(&message) {
            Some(field) if path == "." => field,
            Some(field) if path == field || path.ends_with(&format!(".{field}")) => path,
            Some(field) => format!("{path}.{field}"),
            None => path,
        };
        let message = message.lines().next().unwrap_or_default().to_string();
        let origin = origins
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "defaults".to_string());
        ConfigError::Invalid {
            key,
            origin,
            message,
        }
    })
}

/// Extracts `foo` from serde's "unknown field `foo`, expected ..." message.
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Reads an environment value as TOML when it parses as a scalar or array
/// (`8080`, `true`, `["a","b"]`), and as a plain string otherwise, so users
/// need not quote strings in their shell.
fn parse_scalar(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| raw.into()),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_string(), value);
            return;
        }
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        current = entry.as_table_mut().expect("just made a table");
    }
}

fn leaf_keys(table: &toml::Table, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => keys.extend(leaf_keys(inner, &key)),
            _ => keys.push(key),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        bind: String,
        maxmemory: u64,
        limits: Limits,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Limits {
        body_bytes_max: u64,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                bind: "127.0.0.1:1".into(),
                maxmemory: 0,
                limits: Limits::default(),
            }
        }
    }

    impl Default for Limits {
        fn default() -> Self {
            Self { body_bytes_max: 10 }
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn layers_override_in_order_file_env_flag() {
        let f = file("bind = \"0.0.0.0:1\"\nmaxmemory = 5\n[limits]\nbody_bytes_max = 7\n");
        let env = [
            ("HYPERSCALE_T_MAXMEMORY".to_string(), "6".to_string()),
            (
                "HYPERSCALE_T_LIMITS__BODY_BYTES_MAX".to_string(),
                "8".to_string(),
            ),
            ("OTHER_MAXMEMORY".to_string(), "1".to_string()),
        ];
        let sources = ConfigSources::new(Some(f.path().into()), "HYPERSCALE_T_")
            .flag("maxmemory", Some(9_i64))
            .flag::<i64>("unset", None);
        let demo: Demo = load_with_env(&sources, env).unwrap();
        assert_eq!(
            demo.bind, "0.0.0.0:1",
            "file value kept when nothing overrides"
        );
        assert_eq!(demo.maxmemory, 9, "flag beats env and file");
        assert_eq!(
            demo.limits.body_bytes_max, 8,
            "env beats file, nested via __"
        );
    }

    #[test]
    fn defaults_apply_without_sources() {
        let demo: Demo = load(&ConfigSources::default()).unwrap();
        assert_eq!(demo, Demo::default());
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let f = file("[limits]\nbody_bytes_mx = 3\n");
        let err = load::<Demo>(&ConfigSources::new(Some(f.path().into()), "")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`limits.body_bytes_mx`"), "{text}");
        assert!(text.contains("from file"), "{text}");
    }

    #[test]
    fn bad_type_from_flag_names_the_flag() {
        let sources = ConfigSources::new(None, "").flag("maxmemory", Some("lots"));
        let text = load::<Demo>(&sources).unwrap_err().to_string();
        assert!(
            text.contains("`maxmemory`") && text.contains("flag --maxmemory"),
            "{text}"
        );
    }

    #[test]
    fn syntax_error_reports_file_and_line() {
        let f = file("bind = \n");
        let text = load::<Demo>(&ConfigSources::new(Some(f.path().into()), ""))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("not valid TOML") && text.contains("line 1"),
            "{text}"
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        let sources = ConfigSources::new(Some("/nonexistent/hyperscale.toml".into()), "");
        assert!(matches!(
            load::<Demo>(&sources),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn env_strings_need_no_quotes() {
        assert_eq!(
            parse_scalar("127.0.0.1:80"),
            toml::Value::String("127.0.0.1:80".into())
        );
        assert_eq!(parse_scalar("42"), toml::Value::Integer(42));
        assert_eq!(parse_scalar("true"), toml::Value::Boolean(true));
    }
}
