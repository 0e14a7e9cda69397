//! The sentinel's RESP server: Sentinel's commands for clients and peers,
//! and `SUBSCRIBE`/`PSUBSCRIBE` for its events (`+switch-master`, ...).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::decide::Seen;
use super::{Shared, View};
use crate::command::is;
use crate::protocol::{Frame, ParseLimits, ProtocolVersion, RequestParser};

/// Most clients a sentinel serves at once.
const CLIENTS_MAX: usize = 1024;

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: CancellationToken,
) {
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        if active.load(std::sync::atomic::Ordering::Relaxed) >= CLIENTS_MAX {
            continue; // dropped: the client sees a closed connection
        }
        active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (shared, stop, active) = (shared.clone(), stop.clone(), active.clone());
        tokio::spawn(async move {
            let _ = serve_client(&shared, stream, &stop).await;
            active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}

async fn serve_client(
    shared: &Shared,
    mut stream: TcpStream,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let mut input = BytesMut::with_capacity(4096);
    let mut output = BytesMut::new();
    let mut parser = RequestParser::new(ParseLimits::default());
    let mut events = shared.events.subscribe();
    let mut channels: HashSet<Bytes> = HashSet::new();
    let mut patterns: HashSet<Bytes> = HashSet::new();
    let mut protocol = ProtocolVersion::Resp2;
    loop {
        loop {
            let args = match parser.next_command(&mut input, true) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(err) => {
                    Frame::error(format!("ERR {err}")).encode(protocol, &mut output);
                    stream.write_all(&output).await?;
                    return Ok(());
                }
            };
            let reply = if is(&args[0], "subscribe") || is(&args[0], "psubscribe") {
                let pattern = is(&args[0], "psubscribe");
                let other = if pattern {
                    channels.len()
                } else {
                    patterns.len()
                };
                let set = if pattern {
                    &mut patterns
                } else {
                    &mut channels
                };
                let mut replies = Vec::new();
                for name in &args[1..] {
                    set.insert(name.clone());
                    let kind = if pattern { "psubscribe" } else { "subscribe" };
                    replies.push(Frame::Push(vec![
                        Frame::bulk(kind),
                        Frame::Bulk(name.clone()),
                        Frame::Integer((set.len() + other) as i64),
                    ]));
                }
                Frame::Sequence(replies)
            } else {
                let reply = command(shared, &args);
                if is(&args[0], "hello") && !reply.is_error() {
                    protocol = if args.get(1).is_some_and(|v| &v[..] == b"3") {
                        ProtocolVersion::Resp3
                    } else {
                        ProtocolVersion::Resp2
                    };
                }
                reply
            };
            reply.encode(protocol, &mut output);
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        tokio::select! {
            read = stream.read_buf(&mut input) => {
                if read? == 0 {
                    return Ok(());
                }
                if input.len() > 1 << 20 {
                    return Ok(()); // a sentinel's commands are small
                }
            }
            event = events.recv(), if !channels.is_empty() || !patterns.is_empty() => match event {
                Ok((channel, payload)) => {
                    let name = Bytes::from(channel.clone());
                    if channels.contains(&name) {
                        Frame::Push(vec![Frame::bulk("message"), Frame::bulk(&channel), Frame::bulk(&payload)])
                            .encode(protocol, &mut output);
                    }
                    for pattern in &patterns {
                        if crate::pattern::glob_match(pattern, channel.as_bytes()) {
                            Frame::Push(vec![
                                Frame::bulk("pmessage"),
                                Frame::Bulk(pattern.clone()),
                                Frame::bulk(&channel),
                                Frame::bulk(&payload),
                            ])
                            .encode(protocol, &mut output);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            () = stop.cancelled() => return Ok(()),
        }
    }
}

fn ms_since(at: Instant) -> String {
    at.elapsed().as_millis().to_string()
}

fn pairs(fields: Vec<(&str, String)>) -> Frame {
    // A map in RESP3 (as Sentinel answers), a flat array in RESP2.
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Frame::bulk(k), Frame::bulk(v)))
            .collect(),
    )
}

fn split(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (addr.to_string(), "0".into()),
    }
}

fn master_state(view: &View) -> Frame {
    let now = Instant::now();
    let down_after = view.config.down_after();
    let sdown = view.master.sdown(now, down_after);
    let mut flags = "master".to_string();
    if sdown {
        flags.push_str(",s_down");
    }
    if view.odown_since.is_some() {
        flags.push_str(",o_down");
    }
    let (ip, port) = split(&view.master.addr);
    pairs(vec![
        ("name", view.config.master_name.clone()),
        ("ip", ip),
        ("port", port),
        ("runid", view.master.run_id.clone()),
        ("flags", flags),
        ("link-pending-commands", "0".into()),
        ("link-refcount", "1".into()),
        ("last-ping-sent", "0".into()),
        ("last-ok-ping-reply", ms_since(view.master.last_ok)),
        ("last-ping-reply", ms_since(view.master.last_ok)),
        (
            "down-after-milliseconds",
            view.config.down_after_ms.to_string(),
        ),
        ("info-refresh", "0".into()),
        ("role-reported", "master".into()),
        ("role-reported-time", "0".into()),
        ("config-epoch", view.config_epoch.to_string()),
        ("num-slaves", view.replicas.len().to_string()),
        ("num-other-sentinels", view.peers.len().to_string()),
        ("quorum", view.config.quorum.to_string()),
        (
            "failover-timeout",
            view.config.failover_timeout_ms.to_string(),
        ),
        ("parallel-syncs", "1".into()),
    ])
}

fn replica_state(view: &View, r: &Seen) -> Frame {
    let sdown = r.sdown(Instant::now(), view.config.down_after());
    let flags = if sdown { "slave,s_down" } else { "slave" };
    let (ip, port) = split(&r.addr);
    let (mh, mp) = split(r.master_addr.as_deref().unwrap_or(&view.master.addr));
    pairs(vec![
        ("name", r.addr.clone()),
        ("ip", ip),
        ("port", port),
        ("runid", r.run_id.clone()),
        ("flags", flags.into()),
        ("last-ok-ping-reply", ms_since(r.last_ok)),
        ("last-ping-reply", ms_since(r.last_ok)),
        (
            "down-after-milliseconds",
            view.config.down_after_ms.to_string(),
        ),
        (
            "role-reported",
            if r.role_master { "master" } else { "slave" }.into(),
        ),
        (
            "master-link-status",
            if r.link_up { "ok" } else { "err" }.into(),
        ),
        ("master-host", mh),
        ("master-port", mp),
        ("slave-priority", r.priority.to_string()),
        ("slave-repl-offset", r.offset.to_string()),
    ])
}

fn command(shared: &Shared, args: &[Bytes]) -> Frame {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    match name.as_str() {
        "ping" => Frame::Simple("PONG"),
        "sentinel" if args.len() >= 2 => sentinel(shared, args),
        "role" => {
            let view = shared.view.lock();
            Frame::Array(vec![
                Frame::bulk("sentinel"),
                Frame::Array(vec![Frame::bulk(&view.config.master_name)]),
            ])
        }
        "info" => {
            let view = shared.view.lock();
            let status = if view.odown_since.is_some() {
                "odown"
            } else if view.master.sdown(Instant::now(), view.config.down_after()) {
                "sdown"
            } else {
                "ok"
            };
            Frame::Bulk(Bytes::from(format!(
                "# Server\r\nredis_mode:sentinel\r\nrun_id:{}\r\n\r\n# Sentinel\r\nsentinel_masters:1\r\nsentinel_tilt:0\r\nsentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\nsentinel_simulate_failure_flags:0\r\nmaster0:name={},status={status},address={},slaves={},sentinels={}\r\n",
                view.run_id,
                view.config.master_name,
                view.master.addr,
                view.replicas.len(),
                view.peers.len() + 1
            )))
        }
        "hello" => {
            let proto = match args.get(1).map(|v| &v[..]) {
                None | Some(b"2") => 2,
                Some(b"3") => 3,
                Some(_) => return Frame::error("NOPROTO unsupported protocol version"),
            };
            let view = shared.view.lock();
            let field = |k: &str, v: Frame| (Frame::bulk(k), v);
            Frame::Map(vec![
                field("server", Frame::bulk("redis")),
                field("version", Frame::bulk(crate::command::server_version())),
                field("proto", Frame::Integer(proto)),
                field("id", Frame::Integer(0)),
                field("mode", Frame::bulk("sentinel")),
                field("role", Frame::bulk("sentinel")),
                field("modules", Frame::Array(Vec::new())),
                field("run_id", Frame::bulk(&view.run_id)),
            ])
        }
        "client" | "auth" | "select" => Frame::OK,
        "unsubscribe" | "punsubscribe" => Frame::OK,
        _ => Frame::error(format!(
            "ERR unknown command '{}'",
            crate::command::printable(&args[0], 64)
        )),
    }
}

fn sentinel(shared: &Shared, args: &[Bytes]) -> Frame {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let mut view = shared.view.lock();
    let named = |view: &View| {
        args.get(2)
            .is_some_and(|n| n[..] == *view.config.master_name.as_bytes())
    };
    let no_such = || Frame::error("ERR No such master with that name");
    match sub.as_str() {
        "myid" => Frame::bulk(&view.run_id),
        "masters" => Frame::Array(vec![master_state(&view)]),
        "master" if named(&view) => master_state(&view),
        "get-master-addr-by-name" if args.len() == 3 => {
            if !named(&view) {
                return Frame::Null;
            }
            let (ip, port) = split(&view.master.addr);
            Frame::Array(vec![Frame::bulk(ip), Frame::bulk(port)])
        }
        "replicas" | "slaves" if named(&view) => Frame::Array(
            view.replicas
                .values()
                .map(|r| replica_state(&view, r))
                .collect(),
        ),
        "sentinels" if named(&view) => Frame::Array(
            view.peers
                .iter()
                .map(|(addr, p)| {
                    let (ip, port) = split(addr);
                    let flags = if p
                        .last_ok
                        .is_some_and(|t| t.elapsed() <= view.config.down_after())
                    {
                        "sentinel"
                    } else {
                        "sentinel,s_down"
                    };
                    pairs(vec![
                        (
                            "name",
                            if p.run_id.is_empty() {
                                addr.clone()
                            } else {
                                p.run_id.clone()
                            },
                        ),
                        ("ip", ip),
                        ("port", port),
                        ("runid", p.run_id.clone()),
                        ("flags", flags.into()),
                        ("last-ok-ping-reply", p.last_ok.map_or("0".into(), ms_since)),
                        ("voted-leader", "?".into()),
                        ("voted-leader-epoch", "0".into()),
                    ])
                })
                .collect(),
        ),
        "failover" if named(&view) => {
            let now = Instant::now();
            if super::decide::best_replica(view.replicas.values(), now, view.config.down_after())
                .is_none()
            {
                return Frame::error("NOGOODSLAVE No suitable replica to promote");
            }
            if view.failover.is_some_and(|(_, at)| {
                now.saturating_duration_since(at).as_millis()
                    < u128::from(view.config.failover_timeout_ms)
            }) {
                return Frame::error("INPROG Failover already in progress");
            }
            view.forced = true;
            view.failover = None;
            view.odown_since = Some(now);
            Frame::OK
        }
        "ckquorum" if named(&view) => {
            let usable = 1 + view
                .peers
                .values()
                .filter(|p| {
                    p.last_ok
                        .is_some_and(|t| t.elapsed() <= view.config.down_after())
                })
                .count();
            let total = view.peers.len() + 1;
            let needed = super::decide::votes_needed(total, view.config.quorum);
            if usable >= needed {
                Frame::SimpleOwned(format!(
                    "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
                ))
            } else {
                Frame::error(format!(
                    "NOQUORUM {usable} usable Sentinels. Not enough available Sentinels to reach the majority and authorize a failover"
                ))
            }
        }
        "is-master-down-by-addr" if args.len() == 6 => {
            let addr = format!(
                "{}:{}",
                String::from_utf8_lossy(&args[2]),
                String::from_utf8_lossy(&args[3])
            );
            let Some(epoch) = std::str::from_utf8(&args[4])
                .ok()
                .and_then(|e| e.parse::<u64>().ok())
            else {
                return Frame::error("ERR invalid epoch");
            };
            let down = addr == view.master.addr
                && view.master.sdown(Instant::now(), view.config.down_after());
            let runid = String::from_utf8_lossy(&args[5]).into_owned();
            if runid == "*" {
                return Frame::Array(vec![
                    Frame::Integer(i64::from(down)),
                    Frame::bulk("*"),
                    Frame::Integer(0),
                ]);
            }
            let (leader, leader_epoch) = view.ballot.vote(epoch, &runid);
            if leader != view.run_id && leader_epoch == epoch {
                // Another leads this epoch: do not start our own for a while.
                view.failover = Some((epoch, Instant::now()));
            }
            Frame::Array(vec![
                Frame::Integer(i64::from(down)),
                Frame::bulk(leader),
                Frame::Integer(leader_epoch as i64),
            ])
        }
        "master" | "replicas" | "slaves" | "sentinels" | "failover" | "ckquorum" => no_such(),
        _ => Frame::error(format!("ERR Unknown sentinel subcommand '{sub}'")),
    }
}
