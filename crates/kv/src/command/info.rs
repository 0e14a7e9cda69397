//! `INFO`: the server's state as `field:value` lines, in Redis's sections.
//!
//! Monitoring tools and humans both read it; the field names are Redis's so
//! existing dashboards and scripts parse it. Figures that only make sense
//! for Redis's implementation (fork times, replication offsets) are left
//! out rather than faked.

use std::fmt::Write;

use bytes::Bytes;

use super::{Ctx, is};
use crate::protocol::Frame;

const SECTIONS: [&str; 6] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "keyspace",
];

pub(super) fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let wanted: Vec<&str> = if args.len() == 1
        || args[1..]
            .iter()
            .any(|a| is(a, "all") || is(a, "everything") || is(a, "default"))
    {
        SECTIONS.to_vec()
    } else {
        SECTIONS
            .iter()
            .copied()
            .filter(|s| args[1..].iter().any(|a| is(a, s)))
            .collect()
    };
    let mut text = String::new();
    for section in wanted {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let mut title = section.to_string();
        title[..1].make_ascii_uppercase();
        let _ = write!(text, "# {title}\r\n");
        for (field, value) in fields(ctx, section) {
            let _ = write!(text, "{field}:{value}\r\n");
        }
    }
    Frame::Bulk(Bytes::from(text))
}

fn fields(ctx: &mut Ctx<'_>, section: &str) -> Vec<(&'static str, String)> {
    let state = ctx.state;
    match section {
        "server" => {
            let uptime = state.started.elapsed().as_secs();
            vec![
                ("redis_version", super::server::REDIS_VERSION.into()),
                ("hyperscale_version", env!("CARGO_PKG_VERSION").into()),
                ("redis_mode", "standalone".into()),
                ("os", std::env::consts::OS.into()),
                ("arch_bits", (usize::BITS).to_string()),
                ("process_id", std::process::id().to_string()),
                ("tcp_port", state.port.to_string()),
                ("uptime_in_seconds", uptime.to_string()),
                ("uptime_in_days", (uptime / 86_400).to_string()),
                ("hz", state.config.read().hz.to_string()),
                ("executable", "hyperscale".into()),
            ]
        }
        "clients" => vec![
            ("connected_clients", state.clients.count().to_string()),
            ("maxclients", state.config.read().maxclients.to_string()),
            (
                "pubsub_clients",
                state.clients.subscribed_count().to_string(),
            ),
            ("blocked_clients", ctx.ks().blocked_clients().to_string()),
        ],
        "memory" => {
            let memory = ctx.ks().engine().memory();
            vec![
                ("used_memory", memory.used_bytes.to_string()),
                ("used_memory_human", human(memory.used_bytes)),
                ("maxmemory", memory.maxmemory.to_string()),
                ("maxmemory_human", human(memory.maxmemory)),
                ("maxmemory_policy", memory.policy.to_string()),
                ("maxmemory_samples", memory.samples.to_string()),
                (
                    "mem_accounting",
                    "estimated (key and value bytes plus a fixed per-key overhead)".into(),
                ),
            ]
        }
        "persistence" => {
            let mut lines = vec![("loading", "0".to_string())];
            lines.extend(ctx.ks().engine().persistence_info());
            lines
        }
        "stats" => {
            let stats = ctx.ks().stats();
            let metrics = &state.metrics;
            let commands: u64 = metrics.commands.iter().map(|c| c.calls.get()).sum();
            vec![
                (
                    "total_connections_received",
                    metrics.connections_accepted.get().to_string(),
                ),
                ("total_commands_processed", commands.to_string()),
                (
                    "rejected_connections",
                    metrics.connections_rejected.get().to_string(),
                ),
                ("expired_keys", stats.expired_keys.to_string()),
                ("evicted_keys", stats.evicted_keys.to_string()),
                ("keyspace_hits", stats.keyspace_hits.to_string()),
                ("keyspace_misses", stats.keyspace_misses.to_string()),
                (
                    "pubsub_channels",
                    state.hub.channels(None).len().to_string(),
                ),
                ("pubsub_patterns", state.hub.numpat().to_string()),
            ]
        }
        "keyspace" => {
            let (keys, expires) = {
                let engine = ctx.ks().engine();
                (engine.len(), engine.volatile_len())
            };
            if keys == 0 {
                Vec::new()
            } else {
                vec![("db0", format!("keys={keys},expires={expires},avg_ttl=0"))]
            }
        }
        _ => Vec::new(),
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}
