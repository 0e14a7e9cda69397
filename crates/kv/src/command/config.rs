//! `CONFIG GET` / `CONFIG SET`: the settings, read and changed at run time.
//!
//! Names are Redis's (`maxmemory-policy`, not `maxmemory_policy`) so tools
//! written for Redis work: `redis-benchmark` reads `save` and `appendonly`
//! at start, operators raise `maxmemory` on a live cache. Settings that only
//! make sense at start (the address, the engine, its directory) are
//! readable and refuse to change.

use bytes::Bytes;

use super::{Ctx, Spec, is, printable};
use crate::config::{Config, NotifyFlags, parse_output_limits, parse_size};
use crate::pattern::glob_match;
use crate::protocol::Frame;

pub(super) fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "config",
        arity: -2,
        flags: 0,
        keys: (0, 0, 0),
        group: "server",
        summary: "Reads (GET) and changes (SET) the server's settings.",
        handler: config,
    }]
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One setting: its Redis name, how to show it, how to change it (`None` =
/// fixed at start).
struct Param {
    name: &'static str,
    get: Getter,
    set: Option<Setter>,
}

fn int<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

fn size(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|_| "argument must be a memory value".to_string())
}

/// Redis's bounds check for a numeric setting (`numericBoundaryCheck`):
/// out-of-range values are refused, never silently clamped.
fn within(value: u64, min: u64, max: u64) -> Result<u64, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "argument must be between {min} and {max} inclusive"
        ))
    }
}

/// Redis's bounds: `proto-max-bulk-len` and `client-query-buffer-limit` are
/// 1mb..LONG_MAX, `maxclients` 1..UINT_MAX, `maxmemory-samples` 1..64,
/// `timeout` and `hz` 0..INT_MAX.
const MB: u64 = 1024 * 1024;
const LONG_MAX: u64 = i64::MAX as u64;
const UINT_MAX: u64 = u32::MAX as u64;
const INT_MAX: u64 = i32::MAX as u64;

fn params() -> Vec<Param> {
    let p = |name, get, set| Param { name, get, set };
    vec![
        p("bind", (|c: &Config| c.bind.clone()) as Getter, None),
        p(
            "port",
            |c| c.bind.rsplit(':').next().unwrap_or("0").to_string(),
            None,
        ),
        p("dir", |c| c.data_dir.display().to_string(), None),
        p("databases", |_| "1".into(), None),
        p(
            "appendfsync",
            |c| format!("{:?}", c.fsync).to_lowercase(),
            None,
        ),
        p("lfu-log-factor", |c| c.lfu_log_factor.to_string(), None),
        p("lfu-decay-time", |c| c.lfu_decay_time.to_string(), None),
        p(
            "maxmemory",
            |c| c.maxmemory.to_string(),
            Some(|c, v| {
                c.maxmemory = size(v)?;
                Ok(())
            }),
        ),
        p(
            "maxmemory-policy",
            |c| c.maxmemory_policy.to_string(),
            Some(|c, v| {
                c.maxmemory_policy = v.parse()?;
                Ok(())
            }),
        ),
        p(
            "replica-read-only",
            |c| if c.replica_read_only { "yes" } else { "no" }.into(),
            Some(|c, v| {
                c.replica_read_only = match v.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err("argument must be 'yes' or 'no'".into()),
                };
                Ok(())
            }),
        ),
        p(
            "repl-backlog-size",
            |c| c.repl_backlog_size.to_string(),
            Some(|c, v| {
                c.repl_backlog_size = within(size(v)?, 16 * 1024, LONG_MAX)?;
                Ok(())
            }),
        ),
        p(
            "min-replicas-to-write",
            |c| c.min_replicas_to_write.to_string(),
            Some(|c, v| {
                c.min_replicas_to_write = within(int(v)?, 0, INT_MAX)?;
                Ok(())
            }),
        ),
        p(
            "min-replicas-max-lag",
            |c| c.min_replicas_max_lag.to_string(),
            Some(|c, v| {
                c.min_replicas_max_lag = within(int(v)?, 0, INT_MAX)?;
                Ok(())
            }),
        ),
        p(
            "maxmemory-samples",
            |c| c.maxmemory_samples.to_string(),
            Some(|c, v| {
                c.maxmemory_samples = within(int(v)?, 1, 64)? as usize;
                Ok(())
            }),
        ),
        p(
            "requirepass",
            |c| c.requirepass.clone(),
            Some(|c, v| {
                c.requirepass = v.to_string();
                Ok(())
            }),
        ),
        p(
            "maxclients",
            |c| c.maxclients.to_string(),
            Some(|c, v| {
                c.maxclients = within(int(v)?, 1, UINT_MAX)? as usize;
                Ok(())
            }),
        ),
        p(
            "timeout",
            |c| c.timeout.to_string(),
            Some(|c, v| {
                c.timeout = within(int(v)?, 0, INT_MAX)?;
                Ok(())
            }),
        ),
        p(
            "proto-max-bulk-len",
            |c| c.proto_max_bulk_len.to_string(),
            Some(|c, v| {
                c.proto_max_bulk_len = within(size(v)?, MB, LONG_MAX)?;
                Ok(())
            }),
        ),
        p(
            "client-query-buffer-limit",
            |c| c.client_query_buffer_limit.to_string(),
            Some(|c, v| {
                c.client_query_buffer_limit = within(size(v)?, MB, LONG_MAX)?;
                Ok(())
            }),
        ),
        p(
            "client-output-buffer-limit",
            |c| {
                let pubsub = c.client_output_buffer_limit_pubsub;
                format!("normal 0 0 0 slave 0 0 0 pubsub {pubsub}")
            },
            Some(|c, v| {
                c.client_output_buffer_limit_pubsub =
                    parse_output_limits(v, c.client_output_buffer_limit_pubsub)?;
                Ok(())
            }),
        ),
        p(
            "hz",
            |c| c.hz.to_string(),
            Some(|c, v| {
                // Redis accepts 0..INT_MAX and runs at 1..500 (`updateHZ`).
                c.hz = within(int(v)?, 0, INT_MAX)?.clamp(1, 500) as u32;
                Ok(())
            }),
        ),
        p(
            "notify-keyspace-events",
            |c| c.notify_keyspace_events.to_string(),
            Some(|c, v| {
                c.notify_keyspace_events = NotifyFlags::parse(v)?;
                Ok(())
            }),
        ),
        p(
            "busy-reply-threshold",
            |c| c.busy_reply_threshold.to_string(),
            Some(|c, v| {
                c.busy_reply_threshold = within(int(v)?, 0, LONG_MAX)?;
                Ok(())
            }),
        ),
        p(
            "lua-time-limit",
            |c| c.busy_reply_threshold.to_string(),
            Some(|c, v| {
                c.busy_reply_threshold = within(int(v)?, 0, LONG_MAX)?;
                Ok(())
            }),
        ),
        p(
            "save",
            |c| c.save.clone(),
            Some(|c, v| {
                c.save = v.to_string();
                Ok(())
            }),
        ),
        p(
            "appendonly",
            |c| c.appendonly.clone(),
            Some(|c, v| {
                if v != "yes" && v != "no" {
                    return Err("argument must be 'yes' or 'no'".to_string());
                }
                c.appendonly = v.to_string();
                Ok(())
            }),
        ),
    ]
}

fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = &args[1];
    if is(sub, "get") {
        if args.len() < 3 {
            return Frame::error("ERR wrong number of arguments for 'config|get' command");
        }
        let config = ctx.state.config.read();
        let pairs = params()
            .into_iter()
            .filter(|p| {
                args[2..]
                    .iter()
                    .any(|pattern| glob_match(&pattern.to_ascii_lowercase(), p.name.as_bytes()))
            })
            .map(|p| (Frame::bulk(p.name), Frame::bulk((p.get)(&config))))
            .collect();
        Frame::Map(pairs)
    } else if is(sub, "set") {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return Frame::error("ERR wrong number of arguments for 'config|set' command");
        }
        set(ctx, &args[2..])
    } else if is(sub, "resetstat") && args.len() == 2 {
        Frame::OK
    } else if is(sub, "rewrite") && args.len() == 2 {
        Frame::error("ERR The server is running without a config file")
    } else {
        Frame::error(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            printable(sub, 128)
        ))
    }
}

/// Applies all pairs or none (Redis 7 semantics), then pushes memory
/// settings down to the engine.
fn set(ctx: &mut Ctx<'_>, pairs: &[Bytes]) -> Frame {
    let table = params();
    let mut updated = ctx.state.config.read().clone();
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let Some(param) = table.iter().find(|p| p.name == name) else {
            return Frame::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                printable(&pair[0], 128)
            ));
        };
        let Some(setter) = param.set else {
            return Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            ));
        };
        let value = String::from_utf8_lossy(&pair[1]);
        if let Err(why) = setter(&mut updated, &value) {
            // `why` may quote the client's value: keep the reply one line.
            let why = printable(why.as_bytes(), 256);
            return Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ));
        }
    }
    // The engine's value limit caps proto-max-bulk-len (see `Server::open`).
    if let Some(max) = ctx.ks().engine().value_bytes_max()
        && updated.proto_max_bulk_len > max
    {
        return Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between {MB} and {max} inclusive (the largest value this engine stores)"
        ));
    }
    let (maxmemory, policy, samples, notify) = (
        updated.maxmemory,
        updated.maxmemory_policy,
        updated.maxmemory_samples,
        updated.notify_keyspace_events,
    );
    ctx.state
        .hub
        .set_limits(updated.client_output_buffer_limit_pubsub);
    *ctx.state.config.write() = updated;
    ctx.ks()
        .engine_mut()
        .configure_memory(maxmemory, policy, samples);
    ctx.ks().set_notify(notify.0);
    Frame::OK
}
