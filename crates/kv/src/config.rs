//! The server's settings: one struct, loadable from TOML, env and flags.
//!
//! Names follow Redis's `redis.conf` (with `_` for `-`) so an operator's
//! knowledge carries over: `maxmemory`, `maxmemory_policy`, `requirepass`,
//! `maxclients`, `timeout`, `proto_max_bulk_len`... Sizes accept `64mb`-style
//! strings as Redis does. Most of them can also be changed at run time with
//! `CONFIG SET` (see `command::config`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

pub mod cluster;

/// Which storage engine holds the keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Everything in RAM, bounded by `maxmemory`: the cache tier.
    Memory,
    /// Durable, on the `lsm` crate: the key-value store of chapter 6.
    #[default]
    Lsm,
}

/// When the durable engine makes a write durable (Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Before acknowledging every write: nothing acknowledged is ever lost.
    Always,
    /// Once a second in the background: up to ~1 s of writes lost on a crash.
    #[default]
    Everysec,
    /// Never explicitly: the OS decides (data in the page cache survives a
    /// process crash but not a power loss).
    No,
}

/// What to do when a write would push memory over `maxmemory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum EvictionPolicy {
    /// Refuse writes with an `OOM` error.
    #[default]
    #[serde(rename = "noeviction")]
    NoEviction,
    /// Evict the least recently used key (sampled).
    #[serde(rename = "allkeys-lru")]
    AllKeysLru,
    /// Evict the least frequently used key (sampled, decaying log counter).
    #[serde(rename = "allkeys-lfu")]
    AllKeysLfu,
    /// Evict the oldest inserted key (sampled).
    #[serde(rename = "allkeys-fifo")]
    AllKeysFifo,
    /// Evict the least recently used key among keys with a TTL.
    #[serde(rename = "volatile-lru")]
    VolatileLru,
    /// Evict the key closest to expiring.
    #[serde(rename = "volatile-ttl")]
    VolatileTtl,
}

impl EvictionPolicy {
    /// All policies, with their Redis names.
    pub const ALL: [(EvictionPolicy, &'static str); 6] = [
        (EvictionPolicy::NoEviction, "noeviction"),
        (EvictionPolicy::AllKeysLru, "allkeys-lru"),
        (EvictionPolicy::AllKeysLfu, "allkeys-lfu"),
        (EvictionPolicy::AllKeysFifo, "allkeys-fifo"),
        (EvictionPolicy::VolatileLru, "volatile-lru"),
        (EvictionPolicy::VolatileTtl, "volatile-ttl"),
    ];

    /// Whether only keys with a TTL are candidates.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru | EvictionPolicy::VolatileTtl
        )
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL
            .iter()
            .find(|(p, _)| p == self)
            .map(|(_, n)| *n)
            .unwrap_or("?");
        f.write_str(name)
    }
}

impl FromStr for EvictionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s))
            .map(|(p, _)| *p)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
                format!(
                    "unknown maxmemory policy '{s}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::Everysec),
            "no" => Ok(FsyncPolicy::No),
            _ => Err(format!(
                "unknown fsync policy '{s}' (expected always, everysec or no)"
            )),
        }
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "memory" => Ok(EngineKind::Memory),
            "lsm" => Ok(EngineKind::Lsm),
            _ => Err(format!("unknown engine '{s}' (expected memory or lsm)")),
        }
    }
}

/// Every setting of the key-value server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on; loopback by default so nothing is exposed by accident.
    pub bind: String,
    /// Storage engine.
    pub engine: EngineKind,
    /// Where the durable engine keeps its files.
    pub data_dir: PathBuf,
    /// Durability of acknowledged writes on the `lsm` engine.
    pub fsync: FsyncPolicy,
    /// Memory limit of the memory engine in bytes (`0` = unlimited, as Redis).
    #[serde(deserialize_with = "de_size")]
    pub maxmemory: u64,
    /// What to evict when over `maxmemory`.
    pub maxmemory_policy: EvictionPolicy,
    /// Keys sampled per eviction (Redis's `maxmemory-samples`): more is closer
    /// to exact LRU/LFU and costs more CPU per eviction.
    pub maxmemory_samples: usize,
    /// LFU counter growth: higher needs more hits to saturate (Redis's `lfu-log-factor`).
    pub lfu_log_factor: u32,
    /// An idle key's LFU counter drops by one per this many minutes (Redis's `lfu-decay-time`).
    pub lfu_decay_time: u32,
    /// Password every client must `AUTH` with; empty = no authentication.
    pub requirepass: String,
    /// Most simultaneous clients; the next one gets an error and is closed.
    pub maxclients: usize,
    /// Close a client idle for this many seconds (`0` = never, as Redis).
    pub timeout: u64,
    /// Largest bulk argument in bytes (Redis's `proto-max-bulk-len`).
    #[serde(deserialize_with = "de_size")]
    pub proto_max_bulk_len: u64,
    /// Largest unparsed input one client may buffer (`client-query-buffer-limit`).
    #[serde(deserialize_with = "de_size")]
    pub client_query_buffer_limit: u64,
    /// How far a subscriber may fall behind before it is disconnected
    /// (`client-output-buffer-limit pubsub`): `"32mb 8mb 60"` in Redis's
    /// syntax (hard limit, soft limit, seconds over the soft limit), or one
    /// size for a hard limit alone.
    #[serde(deserialize_with = "de_output_limits")]
    pub client_output_buffer_limit_pubsub: OutputLimits,
    /// Active expiry cycles per second (Redis's `hz`).
    pub hz: u32,
    /// Which keyspace events are published (Redis's `notify-keyspace-events`
    /// flags, e.g. `"KEA"`; empty = none, the default).
    #[serde(deserialize_with = "de_notify")]
    pub notify_keyspace_events: NotifyFlags,
    /// Accepted for `CONFIG GET save` (redis-benchmark asks); snapshots are not implemented.
    pub save: String,
    /// Accepted for `CONFIG GET appendonly`; the `lsm` engine's log plays that role.
    pub appendonly: String,
    /// Milliseconds a script may run before other clients get `BUSY` and
    /// `SCRIPT KILL` / `FUNCTION KILL` are served (Redis's
    /// `busy-reply-threshold`, alias `lua-time-limit`; `0` = never).
    pub busy_reply_threshold: u64,
    /// Cluster mode (`[cluster]`, off unless `cluster_bind` is set).
    pub cluster: cluster::ClusterSettings,
    /// `"host port"` of the primary to replicate at start (Redis's
    /// `replicaof`); empty = this server is a primary.
    pub replicaof: String,
    /// A replica refuses writes from its clients (Redis's `replica-read-only`).
    pub replica_read_only: bool,
    /// Bytes of the replication stream kept for partial resynchronization
    /// (Redis's `repl-backlog-size`, 1 MB by default).
    #[serde(deserialize_with = "de_size")]
    pub repl_backlog_size: u64,
    /// Writes are refused unless this many replicas acknowledged within
    /// `min_replicas_max_lag` seconds (Redis's `min-replicas-to-write`; 0 = off).
    pub min_replicas_to_write: u64,
    /// See `min_replicas_to_write` (Redis's `min-replicas-max-lag`).
    pub min_replicas_max_lag: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:6379".into(),
            engine: EngineKind::default(),
            data_dir: PathBuf::from("data/kv"),
            fsync: FsyncPolicy::default(),
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::default(),
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            requirepass: String::new(),
            maxclients: 10_000,
            timeout: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit_pubsub: OutputLimits::PUBSUB_DEFAULT,
            hz: 10,
            notify_keyspace_events: NotifyFlags::default(),
            save: String::new(),
            appendonly: "no".into(),
            busy_reply_threshold: 5000,
            cluster: cluster::ClusterSettings::default(),
            replicaof: String::new(),
            replica_read_only: true,
            repl_backlog_size: 1024 * 1024,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
        }
    }
}

/// Parses a Redis-style size: `1024`, `1k`, `1kb`, `64mb`, `2gb` (k = 1000,
/// kb = 1024, as in `redis.conf`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size '{text}' (try 100mb)"))?;
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size unit in '{text}' (use b, k, kb, m, mb, g or gb)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// One class of Redis's `client-output-buffer-limit`: a client whose
/// pending output reaches `hard_bytes`, or stays at or over `soft_bytes` for
/// more than `soft_seconds`, is disconnected. `0` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Disconnect at once at this many pending bytes (`0` = no hard limit).
    pub hard_bytes: u64,
    /// Disconnect after `soft_seconds` at or over this (`0` = no soft limit).
    pub soft_bytes: u64,
    /// How long a client may stay over the soft limit.
    pub soft_seconds: u64,
}

impl OutputLimits {
    /// Redis's default for the pubsub class: `32mb 8mb 60`.
    pub const PUBSUB_DEFAULT: OutputLimits = OutputLimits {
        hard_bytes: 32 * 1024 * 1024,
        soft_bytes: 8 * 1024 * 1024,
        soft_seconds: 60,
    };
}

impl fmt::Display for OutputLimits {
    /// As `CONFIG GET` shows it: `33554432 8388608 60`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.hard_bytes, self.soft_bytes, self.soft_seconds
        )
    }
}

/// Redis's errors for a malformed `client-output-buffer-limit` value.
pub(crate) const OUTPUT_LIMIT_ARITY: &str =
    "Wrong number of arguments in buffer limit configuration.";
const OUTPUT_LIMIT_CLASS: &str = "Invalid client class specified in buffer limit configuration.";
const OUTPUT_LIMIT_VALUE: &str =
    "Error in hard, soft or soft_seconds setting in buffer limit configuration.";

/// Parses Redis's `client-output-buffer-limit` value (`<class> <hard> <soft>
/// <seconds>`, repeated) into the pubsub class's limits, starting from
/// `current` (classes not named keep their values, as in Redis). Only the
/// pubsub class has limits here: replies to normal clients are flushed every
/// 64 KiB and there are no replicas, so `normal` and `replica` (`slave`)
/// must be `0 0 0`, what `CONFIG GET` reports for them.
pub(crate) fn parse_output_limits(
    text: &str,
    current: OutputLimits,
) -> Result<OutputLimits, String> {
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err(OUTPUT_LIMIT_ARITY.into());
    }
    let mut pubsub = current;
    for group in words.chunks_exact(4) {
        let class = group[0].to_ascii_lowercase();
        if !matches!(class.as_str(), "normal" | "replica" | "slave" | "pubsub") {
            return Err(OUTPUT_LIMIT_CLASS.into());
        }
        let hard = parse_size(group[1]).map_err(|_| OUTPUT_LIMIT_VALUE.to_string())?;
        let soft = parse_size(group[2]).map_err(|_| OUTPUT_LIMIT_VALUE.to_string())?;
        let seconds = group[3]
            .parse::<u64>()
            .ok()
            .filter(|&s| s <= i32::MAX as u64)
            .ok_or_else(|| OUTPUT_LIMIT_VALUE.to_string())?;
        let limits = OutputLimits {
            hard_bytes: hard,
            soft_bytes: soft,
            soft_seconds: seconds,
        };
        if class == "pubsub" {
            pubsub = limits;
        } else if limits
            != (OutputLimits {
                hard_bytes: 0,
                soft_bytes: 0,
                soft_seconds: 0,
            })
        {
            return Err(format!(
                "only the pubsub class has output buffer limits on this server ({class} must be 0 0 0)"
            ));
        }
    }
    Ok(pubsub)
}

fn de_output_limits<'de, D: Deserializer<'de>>(de: D) -> Result<OutputLimits, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Limits {
        Number(u64),
        Text(String),
    }
    let hard_only = |hard_bytes| OutputLimits {
        hard_bytes,
        soft_bytes: 0,
        soft_seconds: 0,
    };
    match Limits::deserialize(de)? {
        Limits::Number(n) => Ok(hard_only(n)),
        Limits::Text(text) if !text.trim().contains(' ') => parse_size(&text)
            .map(hard_only)
            .map_err(serde::de::Error::custom),
        Limits::Text(text) => {
            parse_output_limits(&format!("pubsub {text}"), OutputLimits::PUBSUB_DEFAULT)
                .map_err(serde::de::Error::custom)
        }
    }
}

fn de_notify<'de, D: Deserializer<'de>>(de: D) -> Result<NotifyFlags, D::Error> {
    let text = String::deserialize(de)?;
    NotifyFlags::parse(&text).map_err(serde::de::Error::custom)
}

/// The event classes of keyspace notifications (`notify-keyspace-events`),
/// as bits. Keyspace (`K`) and keyevent (`E`) say *where* events are
/// published; the classes say *which*; nothing is published unless both a
/// channel kind and the event's class are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyFlags(pub u32);

impl NotifyFlags {
    /// `K`: `__keyspace@0__:<key>` channels.
    pub const KEYSPACE: u32 = 1;
    /// `E`: `__keyevent@0__:<event>` channels.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (DEL, EXPIRE, RENAME...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: string commands.
    pub const STRING: u32 = 1 << 3;
    /// `l`: list commands.
    pub const LIST: u32 = 1 << 4;
    /// `s`: set commands.
    pub const SET: u32 = 1 << 5;
    /// `h`: hash commands.
    pub const HASH: u32 = 1 << 6;
    /// `z`: sorted-set commands.
    pub const ZSET: u32 = 1 << 7;
    /// `x`: keys expired.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: keys evicted.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`: stream commands.
    pub const STREAM: u32 = 1 << 10;
    /// `m`: key misses (a read command, or a write reading a key, found none).
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: module events (no modules here; accepted for compatibility).
    pub const MODULE: u32 = 1 << 12;
    /// `n`: a key was created (before the event of the command that created it).
    pub const NEW: u32 = 1 << 13;
    /// `A`: the alias for `g$lshzxetd`.
    pub const ALL: u32 = Self::GENERIC
        | Self::STRING
        | Self::LIST
        | Self::SET
        | Self::HASH
        | Self::ZSET
        | Self::EXPIRED
        | Self::EVICTED
        | Self::STREAM
        | Self::MODULE;

    const CLASSES: [(char, u32); 11] = [
        ('g', Self::GENERIC),
        ('$', Self::STRING),
        ('l', Self::LIST),
        ('s', Self::SET),
        ('h', Self::HASH),
        ('z', Self::ZSET),
        ('x', Self::EXPIRED),
        ('e', Self::EVICTED),
        ('t', Self::STREAM),
        ('d', Self::MODULE),
        ('n', Self::NEW),
    ];

    /// Parses Redis's flag string; the error is Redis's text.
    pub fn parse(text: &str) -> Result<NotifyFlags, String> {
        let mut flags = 0;
        for c in text.chars() {
            flags |= match c {
                'A' => Self::ALL,
                'K' => Self::KEYSPACE,
                'E' => Self::KEYEVENT,
                'm' => Self::KEY_MISS,
                other => match Self::CLASSES.iter().find(|(name, _)| *name == other) {
                    Some((_, bit)) => *bit,
                    None => {
                        return Err(
                            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()
                        );
                    }
                },
            };
        }
        Ok(NotifyFlags(flags))
    }

    /// Whether an event of `class` is published anywhere.
    pub fn wants(self, class: u32) -> bool {
        self.0 & class != 0 && self.0 & (Self::KEYSPACE | Self::KEYEVENT) != 0
    }
}

impl fmt::Display for NotifyFlags {
    /// Redis's canonical form (`CONFIG GET` shows `AKE` for `KEA`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = self.0;
        if flags & Self::ALL == Self::ALL {
            f.write_str("A")?;
        } else {
            for (name, bit) in Self::CLASSES {
                if flags & bit != 0 {
                    write!(f, "{name}")?;
                }
            }
        }
        for (name, bit) in [
            ('K', Self::KEYSPACE),
            ('E', Self::KEYEVENT),
            ('m', Self::KEY_MISS),
        ] {
            if flags & bit != 0 {
                write!(f, "{name}")?;
            }
        }
        Ok(())
    }
}

fn de_size<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(de)? {
        Size::Number(n) => Ok(n),
        Size::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_redis_conf() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("1k").unwrap(), 1000);
        assert_eq!(parse_size("1KB").unwrap(), 1024);
        assert_eq!(parse_size("64mb").unwrap(), 64 << 20);
        assert!(parse_size("1tb").is_err());
        assert!(parse_size("mb").is_err());
    }

    #[test]
    fn output_limits_parse_redis_syntax() {
        let current = OutputLimits::PUBSUB_DEFAULT;
        let set = |text| parse_output_limits(text, current);
        assert_eq!(
            set("pubsub 1mb 256kb 5").unwrap(),
            OutputLimits {
                hard_bytes: 1 << 20,
                soft_bytes: 256 << 10,
                soft_seconds: 5
            }
        );
        assert_eq!(set("normal 0 0 0 slave 0 0 0").unwrap(), current);
        assert_eq!(set("pubsub 1mb").unwrap_err(), OUTPUT_LIMIT_ARITY);
        assert_eq!(set("master 0 0 0").unwrap_err(), OUTPUT_LIMIT_CLASS);
        assert_eq!(set("pubsub -1 0 0").unwrap_err(), OUTPUT_LIMIT_VALUE);
        assert_eq!(set("pubsub 0 0 1x").unwrap_err(), OUTPUT_LIMIT_VALUE);
        assert!(
            set("replica 256mb 64mb 60")
                .unwrap_err()
                .contains("only the pubsub class")
        );
        assert_eq!(current.to_string(), "33554432 8388608 60");
    }

    #[test]
    fn output_limits_load_from_redis_text_or_one_size() {
        use serde::de::value::{Error, StrDeserializer, U64Deserializer};
        let text = |t| de_output_limits(StrDeserializer::<Error>::new(t));
        assert_eq!(text("2mb 1mb 10").unwrap().soft_seconds, 10);
        assert_eq!(text("64kb").unwrap().hard_bytes, 64 << 10);
        assert!(text("2mb 1mb").is_err());
        let number = de_output_limits(U64Deserializer::<Error>::new(1000)).unwrap();
        assert_eq!((number.hard_bytes, number.soft_bytes), (1000, 0));
    }

    #[test]
    fn policies_roundtrip_their_names() {
        for (policy, name) in EvictionPolicy::ALL {
            assert_eq!(name.parse::<EvictionPolicy>().unwrap(), policy);
            assert_eq!(policy.to_string(), name);
        }
    }
}
