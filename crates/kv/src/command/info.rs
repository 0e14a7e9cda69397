//! `INFO`: the server's state as `field:value` lines, in Redis's sections.
//!
//! Monitoring tools and humans both read it; the field names are Redis's so
//! existing dashboards and scripts parse it. Figures that only make sense
//! for Redis's implementation (fork times, replication offsets) are left
//! out rather than faked. `commandstats` and `errorstats` come from the
//! per-command metrics and the error replies counted by code (`ERR`,
//! `WRONGTYPE`...), `cpu` from the process's own CPU times.

use std::fmt::Write;

use bytes::Bytes;

use super::{Ctx, is};
use crate::protocol::Frame;

/// Every section, in Redis's order, with its title; `commandstats` is
/// left out of the default set (as in Redis: `INFO all` includes it).
const SECTIONS: [(&str, &str); 10] = [
    ("server", "Server"),
    ("clients", "Clients"),
    ("memory", "Memory"),
    ("persistence", "Persistence"),
    ("stats", "Stats"),
    ("replication", "Replication"),
    ("cpu", "CPU"),
    ("commandstats", "Commandstats"),
    ("errorstats", "Errorstats"),
    ("keyspace", "Keyspace"),
];

pub(super) fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let asked = |name: &str| args[1..].iter().any(|a| is(a, name));
    let all = asked("all") || asked("everything");
    let default = args.len() == 1 || asked("default");
    let mut text = String::new();
    for (section, title) in SECTIONS {
        let wanted = all || asked(section) || (default && section != "commandstats");
        if !wanted {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let _ = write!(text, "# {title}\r\n");
        for (field, value) in fields(ctx, section) {
            let _ = write!(text, "{field}:{value}\r\n");
        }
    }
    Frame::Bulk(Bytes::from(text))
}

fn fields(ctx: &mut Ctx<'_>, section: &str) -> Vec<(String, String)> {
    static_fields(ctx, section)
        .into_iter()
        .map(|(field, value)| (field.to_string(), value))
        .chain(dynamic_fields(ctx, section))
        .collect()
}

/// Sections whose field names depend on the data (`commandstats`, `errorstats`).
fn dynamic_fields(ctx: &mut Ctx<'_>, section: &str) -> Vec<(String, String)> {
    let metrics = &ctx.state.metrics;
    match section {
        "commandstats" => super::table()
            .iter()
            .zip(&metrics.commands)
            .filter_map(|(spec, m)| {
                let (calls, usec) = (m.calls.get(), m.usec.get());
                let (rejected, failed) = (m.rejected.get(), m.errors.get());
                if calls == 0 && rejected == 0 {
                    return None;
                }
                let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
                Some((
                    format!("cmdstat_{}", spec.name),
                    format!("calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"),
                ))
            })
            .collect(),
        "replication" => super::replication::info_fields(ctx.state),
        "stats" => {
            let inner = ctx.state.repl.lock();
            vec![
                ("sync_full".into(), inner.sync_full.to_string()),
                ("sync_partial_ok".into(), inner.sync_partial_ok.to_string()),
                ("sync_partial_err".into(), inner.sync_partial_err.to_string()),
            ]
        }
        "errorstats" => metrics
            .error_codes()
            .into_iter()
            .map(|(code, count)| (format!("errorstat_{code}"), format!("count={count}")))
            .collect(),
        _ => Vec::new(),
    }
}

fn static_fields(ctx: &mut Ctx<'_>, section: &str) -> Vec<(&'static str, String)> {
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
                (
                    "total_error_replies",
                    metrics.error_replies.get().to_string(),
                ),
            ]
        }
        "cpu" => {
            let (user, sys, user_children, sys_children) = cpu_seconds();
            vec![
                ("used_cpu_sys", format!("{sys:.6}")),
                ("used_cpu_user", format!("{user:.6}")),
                ("used_cpu_sys_children", format!("{sys_children:.6}")),
                ("used_cpu_user_children", format!("{user_children:.6}")),
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

/// CPU seconds used by the process and its waited-for children: user,
/// system, children's user, children's system (from `/proc/self/stat`; all
/// 0 where it does not exist).
fn cpu_seconds() -> (f64, f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name, which may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> f64 {
        // `rest` starts at field 3 (state); utime is field 14.
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / CLOCK_TICKS_PER_SECOND
    };
    (field(14), field(15), field(16), field(17))
}

/// Linux's `USER_HZ` (the unit of `/proc/self/stat` times): 100 on every
/// architecture Linux supports.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

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

#[cfg(test)]
mod tests {
    use crate::command::local::LocalClient;
    use crate::config::Config;
    use crate::protocol::Frame;

    fn info(c: &mut LocalClient, args: &[&[u8]]) -> String {
        match c.run(args) {
            Frame::Bulk(text) => String::from_utf8(text.to_vec()).expect("utf-8"),
            other => panic!("INFO replied {other:?}"),
        }
    }

    #[test]
    fn commandstats_errorstats_cpu_and_keyspace_use_redis_names() {
        let mut c = LocalClient::memory(Config::default());
        c.run(&[b"SET", b"k", b"v"]);
        c.run(&[b"SET", b"k", b"v", b"EX", b"100"]);
        c.run(&[b"INCR", b"k"]);
        c.run(&[b"GET"]);
        c.run(&[b"NOSUCH"]);
        c.run(&[b"LCS", b"k", b"k", b"BOGUS"]);
        let stats = info(&mut c, &[b"INFO", b"commandstats"]);
        assert!(stats.starts_with("# Commandstats\r\n"), "{stats}");
        let set = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_set:"))
            .expect("set");
        assert!(set.starts_with("cmdstat_set:calls=2,usec="), "{set}");
        assert!(
            set.contains(",usec_per_call=") && set.ends_with(",rejected_calls=0,failed_calls=0")
        );
        let incr = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_incr:"))
            .expect("incr");
        assert!(incr.ends_with("rejected_calls=0,failed_calls=1"), "{incr}");
        let get = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_get:"))
            .expect("get");
        assert!(
            get.starts_with("cmdstat_get:calls=0,")
                && get.ends_with("rejected_calls=1,failed_calls=0"),
            "{get}"
        );
        let errors = info(&mut c, &[b"INFO", b"errorstats"]);
        assert_eq!(errors, "# Errorstats\r\nerrorstat_ERR:count=4\r\n");
        let all = info(&mut c, &[b"INFO"]);
        assert!(
            !all.contains("# Commandstats"),
            "commandstats is not a default section"
        );
        for title in ["# Server", "# Stats", "# CPU", "# Errorstats", "# Keyspace"] {
            assert!(all.contains(title), "{title} missing");
        }
        assert!(all.contains("total_error_replies:4\r\n"));
        assert!(all.contains("db0:keys=1,expires=1,avg_ttl=0\r\n"));
        let cpu = info(&mut c, &[b"INFO", b"CPU"]);
        for field in [
            "used_cpu_sys:",
            "used_cpu_user:",
            "used_cpu_sys_children:",
            "used_cpu_user_children:",
        ] {
            assert!(cpu.contains(field), "{field} missing in {cpu}");
        }
        let everything = info(&mut c, &[b"INFO", b"everything"]);
        let order: Vec<usize> = [
            "# Stats",
            "# CPU",
            "# Commandstats",
            "# Errorstats",
            "# Keyspace",
        ]
        .iter()
        .map(|t| everything.find(t).expect("section"))
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "Redis's section order"
        );
    }
}
