//! The primary's side of one replica: full or partial resynchronization,
//! then the stream from the backlog, and the replica's acknowledgements.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::PING_PERIOD;
use crate::command::dump;
use crate::command::is;
use crate::protocol::parse::{ParseLimits, RequestParser};
use crate::state::State;
use crate::state::repl::ReplicaInfo;

/// Bytes sent per write while streaming the backlog.
const SEND_CHUNK_BYTES: usize = 64 * 1024;

/// Removes the replica from the registry however the feeding ends.
struct Registered<'a> {
    state: &'a State,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.state.repl.lock().replicas.remove(&self.id);
    }
}

/// Feeds the replica on `stream` (client `id`, which sent `PSYNC replid
/// offset`) until it leaves, falls out of the backlog, or `stop` fires.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_replica(
    state: Arc<State>,
    mut stream: TcpStream,
    id: u64,
    listening_port: u16,
    replid: String,
    offset: i64,
    legacy: bool,
    stop: CancellationToken,
) -> Result<(), String> {
    let ip = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let backlog_bytes = state.config.read().repl_backlog_size as usize;
    state.repl.lock().replicas.insert(
        id,
        ReplicaInfo {
            ip,
            port: listening_port,
            state: "wait_bgsave",
            ack_offset: 0,
            last_ack: Instant::now(),
        },
    );
    let _registered = Registered { state: &state, id };
    let io = |e: std::io::Error| e.to_string();
    let partial = if legacy {
        None
    } else {
        state.repl.continue_from(&replid, offset)
    };
    {
        let mut inner = state.repl.lock();
        match partial {
            Some(_) => inner.sync_partial_ok += 1,
            None if replid != "?" => {
                inner.sync_partial_err += 1;
                inner.sync_full += 1;
            }
            None => inner.sync_full += 1,
        }
    }
    let mut pos = match partial {
        Some(from) => {
            let ours = state.repl.lock().replid.clone();
            stream
                .write_all(format!("+CONTINUE {ours}\r\n").as_bytes())
                .await
                .map_err(io)?;
            tracing::info!(replica = id, from, "partial resynchronization");
            from
        }
        None => {
            let snap_state = state.clone();
            let (rdb, ours, at) =
                tokio::task::spawn_blocking(move || dump::snapshot(&snap_state, backlog_bytes))
                    .await
                    .map_err(|e| e.to_string())??;
            if !legacy {
                stream
                    .write_all(format!("+FULLRESYNC {ours} {at}\r\n").as_bytes())
                    .await
                    .map_err(io)?;
            }
            if let Some(r) = state.repl.lock().replicas.get_mut(&id) {
                r.state = "send_bulk";
            }
            stream
                .write_all(format!("${}\r\n", rdb.len()).as_bytes())
                .await
                .map_err(io)?;
            stream.write_all(&rdb).await.map_err(io)?;
            tracing::info!(
                replica = id,
                bytes = rdb.len(),
                offset = at,
                "full resynchronization sent"
            );
            at
        }
    };
    if let Some(r) = state.repl.lock().replicas.get_mut(&id) {
        r.state = "online";
        r.last_ack = Instant::now();
    }
    let mut offsets = state.repl.offsets();
    let mut ping = tokio::time::interval(PING_PERIOD);
    let mut input = BytesMut::with_capacity(4096);
    let mut parser = RequestParser::new(ParseLimits::default());
    loop {
        loop {
            let Some(bytes) = state.repl.read_from(pos, SEND_CHUNK_BYTES) else {
                return Err("the replica fell behind the backlog (repl-backlog-size)".into());
            };
            if bytes.is_empty() {
                break;
            }
            stream.write_all(&bytes).await.map_err(io)?;
            pos += bytes.len() as u64;
        }
        tokio::select! {
            changed = offsets.changed() => if changed.is_err() { return Ok(()) },
            read = stream.read_buf(&mut input) => match read {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    while let Some(args) = parser.next_command(&mut input, true).map_err(|e| e.to_string())? {
                        if args.len() >= 3 && is(&args[0], "replconf") && is(&args[1], "ack")
                            && let Some(acked) = std::str::from_utf8(&args[2]).ok().and_then(|t| t.parse().ok())
                        {
                            state.repl.ack(id, acked);
                        }
                    }
                }
                Err(err) => return Err(err.to_string()),
            },
            _ = ping.tick() => {
                // In the stream, under the keyspace lock; skipped while a
                // snapshot or a script holds it.
                if let Some(_ks) = state.db.try_lock() {
                    state.repl.propagate(&[bytes::Bytes::from_static(b"PING")]);
                }
            }
            () = stop.cancelled() => return Ok(()),
        }
    }
}
