//! Replication commands (`REPLICAOF`, `REPLCONF`, `PSYNC`, `WAIT`,
//! `ROLE`), `INFO replication`, and the two rules every write passes:
//! a read-only replica refuses clients' writes, and a primary with
//! `min-replicas-to-write` refuses writes without enough good replicas.
//!
//! What a command cannot do without a socket is left to the connection as
//! a [`ReplRequest`]: `PSYNC` hands the socket to the feeder
//! (`replication::primary`), `WAIT` waits for acknowledgements. Every
//! write that succeeds is appended to the stream by [`propagate`], under
//! the keyspace lock, with Redis's rewrites for what would not replay the
//! same way (`SPOP` becomes `SREM` of what it popped, `XADD *` carries the
//! id it made).

use std::time::Duration;

use bytes::Bytes;

use super::{Ctx, Handler, Spec, WRITE, int_arg, is};
use crate::protocol::Frame;
use crate::state::State;
use crate::state::repl::Target;
use crate::state::session::{ConnState, ReplRequest};

pub(super) fn specs() -> Vec<Spec> {
    let s = super::in_group("server");
    // No flags, no key arguments: (name, arity, summary, handler).
    #[rustfmt::skip]
    let table: [(&'static str, i32, &'static str, Handler); 7] = [
        ("replicaof", 3, "Follows a primary, or stops (NO ONE).", replicaof),
        ("slaveof", 3, "Old name of REPLICAOF.", replicaof),
        ("replconf", -1, "Replica settings and acknowledgements.", replconf),
        ("psync", -3, "Starts the replication stream (partial or full).", psync),
        ("sync", 1, "Starts the replication stream (full, old SYNC).", psync),
        ("wait", 3, "Waits for replicas to acknowledge this client's writes.", wait),
        ("role", 1, "Returns the replication role.", role),
    ];
    table
        .into_iter()
        .map(|(name, arity, summary, handler)| s(name, arity, 0, (0, 0, 0), summary, handler))
        .collect()
}

fn replicaof(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if is(&args[1], "no") && is(&args[2], "one") {
        ctx.state.repl.set_target(None);
        return Frame::OK;
    }
    let port = match int_arg(&args[2]) {
        Ok(port) if (0..=65535).contains(&port) => port as u16,
        _ => return Frame::error("ERR Invalid master port"),
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if ctx.state.repl.set_target(Some(Target { host, port })) {
        Frame::OK
    } else {
        Frame::SimpleOwned("OK Already connected to specified master".into())
    }
}

fn replconf(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len().is_multiple_of(2) {
        return super::syntax_error();
    }
    for pair in args[1..].chunks(2) {
        let (option, value) = (&pair[0], &pair[1]);
        if is(option, "listening-port") {
            match int_arg(value) {
                Ok(port) if (0..=65535).contains(&port) => ctx.conn.listening_port = port as u16,
                _ => return Frame::error("ERR Invalid listening port"),
            }
        } else if is(option, "ack") || is(option, "getack") {
            // Only meaningful on a replication link (the feeder reads ACKs
            // itself); a stray one gets no reply, as in Redis.
            return Frame::Sequence(Vec::new());
        } else if !(is(option, "capa") || is(option, "ip-address") || is(option, "rdb-only")) {
            return Frame::error(format!(
                "ERR Unrecognized REPLCONF option: {}",
                super::printable(option, 64)
            ));
        }
    }
    Frame::OK
}

fn psync(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.conn.multi.is_some() || ctx.conn.subscribed() {
        return Frame::error("ERR Replica can't interact with the keyspace");
    }
    if let Some(link) = &ctx.state.repl.lock().master
        && !link.up
    {
        return Frame::error("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    let request = if args.len() == 1 {
        ReplRequest::Psync {
            replid: "?".into(),
            offset: -1,
            legacy: true,
        }
    } else {
        let offset = match int_arg(&args[2]) {
            Ok(offset) => offset,
            Err(err) => return err,
        };
        ReplRequest::Psync {
            replid: String::from_utf8_lossy(&args[1]).into_owned(),
            offset,
            legacy: false,
        }
    };
    ctx.conn.repl_request = Some(request);
    Frame::Sequence(Vec::new())
}

fn wait(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.state.repl.is_replica() {
        return Frame::error(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        );
    }
    let numreplicas = match int_arg(&args[1]) {
        Ok(n) => n.clamp(0, i64::from(u32::MAX)) as usize,
        Err(err) => return err,
    };
    let timeout_ms = match int_arg(&args[2]) {
        Ok(t) if t < 0 => return Frame::error("ERR timeout is negative"),
        Ok(t) => t as u64,
        Err(err) => return err,
    };
    let repl = &ctx.state.repl;
    let offset = repl.lock().offset;
    let acked = repl.acked(offset);
    if acked >= numreplicas || ctx.depth > 1 || ctx.conn.multi.is_some() {
        return Frame::Integer(acked as i64);
    }
    // Ask the replicas for an acknowledgement now rather than at their next
    // second (in the stream, under the lock, as any write).
    ctx.ks();
    repl.propagate(&[
        Bytes::from_static(b"REPLCONF"),
        Bytes::from_static(b"GETACK"),
        Bytes::from_static(b"*"),
    ]);
    ctx.conn.repl_request = Some(ReplRequest::Wait {
        numreplicas,
        offset,
        deadline_ms: (timeout_ms > 0).then(|| ctx.now_ms.saturating_add(timeout_ms)),
    });
    Frame::Sequence(Vec::new())
}

fn role(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let inner = ctx.state.repl.lock();
    let offset = inner.offset as i64;
    match &inner.master {
        Some(link) => {
            let state = if link.up {
                "connected"
            } else if link.syncing {
                "sync"
            } else {
                "connect"
            };
            Frame::Array(vec![
                Frame::bulk("slave"),
                Frame::bulk(&link.target.host),
                Frame::Integer(i64::from(link.target.port)),
                Frame::bulk(state),
                Frame::Integer(offset),
            ])
        }
        None => Frame::Array(vec![
            Frame::bulk("master"),
            Frame::Integer(offset),
            Frame::Array(
                inner
                    .replicas
                    .values()
                    .filter(|r| r.state == "online")
                    .map(|r| {
                        Frame::Array(vec![
                            Frame::bulk(&r.ip),
                            Frame::bulk(r.port.to_string()),
                            Frame::bulk(r.ack_offset.to_string()),
                        ])
                    })
                    .collect(),
            ),
        ]),
    }
}

/// `INFO replication`'s fields, Redis's names and order.
pub(super) fn info_fields(state: &State) -> Vec<(String, String)> {
    let config = state.config.read();
    let read_only = config.replica_read_only;
    let backlog_size = config.repl_backlog_size;
    drop(config);
    let inner = state.repl.lock();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| out.push((k.to_string(), v));
    match &inner.master {
        Some(link) => {
            add("role", "slave".into());
            add("master_host", link.target.host.clone());
            add("master_port", link.target.port.to_string());
            add(
                "master_link_status",
                if link.up { "up" } else { "down" }.into(),
            );
            add(
                "master_last_io_seconds_ago",
                if link.up {
                    link.last_io.elapsed().as_secs().to_string()
                } else {
                    "-1".into()
                },
            );
            add(
                "master_sync_in_progress",
                u8::from(link.syncing).to_string(),
            );
            add("slave_read_repl_offset", inner.offset.to_string());
            add("slave_repl_offset", inner.offset.to_string());
            if !link.up {
                add(
                    "master_link_down_since_seconds",
                    link.down_since.elapsed().as_secs().to_string(),
                );
            }
            add("slave_priority", "100".into());
            add("slave_read_only", u8::from(read_only).to_string());
            add("replica_announced", "1".into());
        }
        None => add("role", "master".into()),
    }
    let online: Vec<_> = inner.replicas.values().collect();
    add("connected_slaves", online.len().to_string());
    for (i, r) in online.iter().enumerate() {
        add(
            &format!("slave{i}"),
            format!(
                "ip={},port={},state={},offset={},lag={}",
                r.ip,
                r.port,
                r.state,
                r.ack_offset,
                r.last_ack.elapsed().as_secs()
            ),
        );
    }
    add("master_failover_state", "no-failover".into());
    add("master_replid", inner.replid.clone());
    add("master_replid2", inner.replid2.clone());
    add("master_repl_offset", inner.offset.to_string());
    add("second_repl_offset", inner.second_offset.to_string());
    let histlen = inner.backlog_len();
    add(
        "repl_backlog_active",
        u8::from(histlen.is_some()).to_string(),
    );
    add("repl_backlog_size", backlog_size.to_string());
    let histlen = histlen.unwrap_or(0) as u64;
    add(
        "repl_backlog_first_byte_offset",
        (inner.offset - histlen + 1).to_string(),
    );
    add("repl_backlog_histlen", histlen.to_string());
    out
}

/// The replication rules a command passes before it runs (see the module
/// docs); `Ok` for anything but a write.
pub(super) fn admit(state: &State, conn: &ConnState, spec: &Spec) -> Result<(), Frame> {
    if !spec.has(WRITE) || conn.master_link {
        return Ok(());
    }
    if state.repl.is_replica() {
        if state.config.read().replica_read_only {
            return Err(Frame::error(
                "READONLY You can't write against a read only replica.",
            ));
        }
        return Ok(());
    }
    let (wanted, max_lag) = {
        let config = state.config.read();
        (config.min_replicas_to_write, config.min_replicas_max_lag)
    };
    if wanted > 0 && (state.repl.good_replicas(Duration::from_secs(max_lag)) as u64) < wanted {
        return Err(Frame::error(
            "NOREPLICAS Not enough good replicas to write.",
        ));
    }
    Ok(())
}

/// Appends a write that succeeded to the replication stream (the keyspace
/// lock is held: see the module docs).
pub(super) fn propagate(ctx: &mut Ctx<'_>, spec: &Spec, args: &[Bytes], reply: &Frame) {
    if ctx.conn.master_link || reply.is_error() || ctx.state.repl.lock().backlog_len().is_none() {
        return;
    }
    ctx.ks();
    let repl = &ctx.state.repl;
    match spec.name {
        "spop" => {
            let popped: Vec<Bytes> = match reply {
                Frame::Bulk(member) => vec![member.clone()],
                Frame::Array(items) | Frame::Set(items) => items
                    .iter()
                    .filter_map(|f| match f {
                        Frame::Bulk(b) => Some(b.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if !popped.is_empty() {
                let mut rewritten = vec![Bytes::from_static(b"SREM"), args[1].clone()];
                rewritten.extend(popped);
                repl.propagate(&rewritten);
            }
        }
        "xadd" => {
            let mut rewritten = args.to_vec();
            if let (Frame::Bulk(id), Some(star)) =
                (reply, args.iter().skip(2).position(|a| &a[..] == b"*"))
            {
                rewritten[star + 2] = id.clone();
            }
            repl.propagate(&rewritten);
        }
        _ => repl.propagate(args),
    }
    // A relative expiry would land later on the replica: follow it with
    // the absolute deadline it set here (Redis 7.0 rewrites to PXAT alike).
    let relative_ttl = matches!(
        spec.name,
        "expire" | "pexpire" | "setex" | "psetex" | "getex" | "restore"
    ) || (spec.name == "set" && args.len() > 3);
    if relative_ttl {
        let now = ctx.now_ms;
        if let Ok(Some(entry)) = ctx.ks().lookup_untouched(&args[1], now)
            && let Some(at) = entry.expire_at_ms
        {
            let key = args[1].clone();
            ctx.state.repl.propagate(&[
                Bytes::from_static(b"PEXPIREAT"),
                key,
                Bytes::from(at.to_string()),
            ]);
        }
    }
}
