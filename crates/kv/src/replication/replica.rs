//! The replica's side: follow the primary `REPLICAOF` names, resynchronize
//! (partially when the primary still has our offset in its backlog), apply
//! the stream, acknowledge, and reconnect after a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{RDB_BYTES_MAX, REPL_TIMEOUT};
use crate::command::{self, dump, is};
use crate::protocol::parse::{ParseLimits, RequestParser};
use crate::rdb;
use crate::state::State;
use crate::state::repl::{Target, encode_command};

/// Pause between two attempts to reach the primary.
const RETRY: Duration = Duration::from_secs(1);
/// Longest reply line of the handshake.
const LINE_BYTES_MAX: usize = 1024;

/// Follows whatever primary the state names until `stop` fires.
pub(crate) async fn run(state: Arc<State>, stop: CancellationToken) {
    let mut targets = state.repl.target_tx.subscribe();
    loop {
        let target = targets.borrow_and_update().clone();
        let Some(target) = target else {
            tokio::select! {
                changed = targets.changed() => if changed.is_err() { return },
                () = stop.cancelled() => return,
            }
            continue;
        };
        tokio::select! {
            result = follow(&state, &target) => {
                if let Err(err) = result {
                    tracing::warn!(primary = %format!("{}:{}", target.host, target.port), error = %err, "replication link failed; retrying");
                }
                link_down(&state);
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    _ = targets.changed() => {}
                    () = stop.cancelled() => return,
                }
            }
            _ = targets.changed() => link_down(&state),
            () = stop.cancelled() => return,
        }
    }
}

fn link_down(state: &State) {
    if let Some(link) = state.repl.lock().master.as_mut() {
        if link.up || link.syncing {
            link.down_since = Instant::now();
        }
        link.up = false;
        link.syncing = false;
    }
}

type Link = BufReader<TcpStream>;

async fn send(link: &mut Link, words: &[&str]) -> Result<(), String> {
    let args: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    link.get_mut()
        .write_all(&encode_command(&args))
        .await
        .map_err(|e| e.to_string())
}

/// One reply line, skipping the bare newlines a primary sends as keepalives.
async fn line(link: &mut Link) -> Result<String, String> {
    loop {
        let mut raw = Vec::new();
        let read = tokio::time::timeout(
            REPL_TIMEOUT,
            (&mut *link)
                .take(LINE_BYTES_MAX as u64)
                .read_until(b'\n', &mut raw),
        )
        .await
        .map_err(|_| "timeout waiting for the primary".to_string())?
        .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the primary closed the connection".into());
        }
        let text = String::from_utf8_lossy(&raw).trim_end().to_string();
        if !text.is_empty() {
            return Ok(text);
        }
    }
}

async fn expect_ok(link: &mut Link, words: &[&str]) -> Result<(), String> {
    send(link, words).await?;
    let reply = line(link).await?;
    if reply.starts_with('+') {
        Ok(())
    } else {
        Err(format!("{} refused: {reply}", words.join(" ")))
    }
}

/// The snapshot after `+FULLRESYNC`: `$<len>` or `$EOF:<mark>` (diskless).
async fn read_snapshot(link: &mut Link) -> Result<Vec<u8>, String> {
    let header = line(link).await?;
    let Some(rest) = header.strip_prefix('$') else {
        return Err(format!("expected the snapshot, got {header:?}"));
    };
    let mut data = Vec::new();
    if let Some(mark) = rest.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err("bad EOF mark".into());
        }
        let mut chunk = vec![0u8; 64 * 1024];
        while !data.ends_with(&mark) {
            let n = tokio::time::timeout(REPL_TIMEOUT, link.read(&mut chunk))
                .await
                .map_err(|_| "timeout receiving the snapshot".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the primary closed the connection during the snapshot".into());
            }
            data.extend_from_slice(&chunk[..n]);
            if data.len() as u64 > RDB_BYTES_MAX {
                return Err("snapshot larger than RDB_BYTES_MAX".into());
            }
        }
        data.truncate(data.len() - mark.len());
    } else {
        let len: u64 = rest
            .parse()
            .map_err(|_| format!("bad snapshot length {rest:?}"))?;
        if len > RDB_BYTES_MAX {
            return Err(format!(
                "snapshot of {len} bytes is larger than RDB_BYTES_MAX"
            ));
        }
        // Grows as bytes arrive: a lying length allocates nothing up front.
        let read = tokio::time::timeout(
            REPL_TIMEOUT * 10,
            (&mut *link).take(len).read_to_end(&mut data),
        )
        .await
        .map_err(|_| "timeout receiving the snapshot".to_string())?
        .map_err(|e| e.to_string())?;
        if read as u64 != len {
            return Err("the primary closed the connection during the snapshot".into());
        }
    }
    Ok(data)
}

/// One connection to the primary: handshake, sync, then the stream until
/// it fails.
async fn follow(state: &Arc<State>, target: &Target) -> Result<(), String> {
    let addr = format!("{}:{}", target.host, target.port);
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut link = BufReader::new(stream);
    send(&mut link, &["PING"]).await?;
    let pong = line(&mut link).await?;
    if pong.starts_with("-NOAUTH") || pong.starts_with("-ERR") {
        return Err(format!("the primary answered PING with {pong}"));
    }
    expect_ok(
        &mut link,
        &["REPLCONF", "listening-port", &state.port.to_string()],
    )
    .await?;
    expect_ok(&mut link, &["REPLCONF", "capa", "eof", "capa", "psync2"]).await?;
    let (replid, next) = {
        let inner = state.repl.lock();
        match inner.backlog_len() {
            Some(_) => (inner.replid.clone(), (inner.offset + 1).to_string()),
            None => ("?".to_string(), "-1".to_string()),
        }
    };
    send(&mut link, &["PSYNC", &replid, &next]).await?;
    let reply = line(&mut link).await?;
    let backlog_bytes = state.config.read().repl_backlog_size as usize;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut words = rest.split_whitespace();
        let (Some(id), Some(offset)) = (
            words.next(),
            words.next().and_then(|o| o.parse::<u64>().ok()),
        ) else {
            return Err(format!("bad FULLRESYNC line {reply:?}"));
        };
        if let Some(link) = state.repl.lock().master.as_mut() {
            link.syncing = true;
        }
        let data = read_snapshot(&mut link).await?;
        let bytes = data.len();
        let parsed = tokio::task::spawn_blocking(move || rdb::file::read_file(&data))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("refused the primary's snapshot: {e}"))?;
        let load_state = state.clone();
        let id = id.to_string();
        let loaded = tokio::task::spawn_blocking(move || {
            dump::load(&load_state, parsed.entries, id, offset, backlog_bytes)
        })
        .await
        .map_err(|e| e.to_string())??;
        tracing::info!(primary = %addr, bytes, keys = loaded, offset, "full resynchronization loaded");
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        if let Some(new_id) = rest.split_whitespace().next() {
            let mut inner = state.repl.lock();
            if inner.replid != new_id {
                inner.replid2 = std::mem::replace(&mut inner.replid, new_id.to_string());
                inner.second_offset = inner.offset as i64 + 1;
            }
        }
        tracing::info!(primary = %addr, "partial resynchronization accepted");
    } else {
        return Err(format!("PSYNC refused: {reply}"));
    }
    if let Some(link) = state.repl.lock().master.as_mut() {
        link.up = true;
        link.syncing = false;
        link.last_io = Instant::now();
    }
    stream_commands(state, link).await
}

/// Applies the primary's stream and acknowledges it.
async fn stream_commands(state: &State, link: Link) -> Result<(), String> {
    let mut conn = dump::internal_client(state);
    conn.master_link = true;
    let id = conn.id;
    let result = async {
        let mut input = BytesMut::with_capacity(64 * 1024);
        input.extend_from_slice(link.buffer());
        let (mut reader, mut writer) = link.into_inner().into_split();
        let mut parser = RequestParser::new(ParseLimits::default());
        let mut ack = tokio::time::interval(Duration::from_secs(1));
        let mut db = 0i64;
        loop {
            let mut acks = Vec::new();
            if !input.is_empty() {
                apply(state, &mut conn, &mut parser, &mut input, &mut db, &mut acks)?;
            }
            for offset in acks {
                let words = ["REPLCONF".into(), "ACK".into(), Bytes::from(offset.to_string())];
                writer.write_all(&encode_command(&words)).await.map_err(|e| e.to_string())?;
            }
            tokio::select! {
                read = tokio::time::timeout(REPL_TIMEOUT, reader.read_buf(&mut input)) => match read {
                    Err(_) => return Err("no data from the primary within the replication timeout".to_string()),
                    Ok(Ok(0)) => return Err("the primary closed the connection".to_string()),
                    Ok(Ok(_)) => {
                        if let Some(link) = state.repl.lock().master.as_mut() {
                            link.last_io = Instant::now();
                        }
                    }
                    Ok(Err(err)) => return Err(err.to_string()),
                },
                _ = ack.tick() => {
                    let offset = state.repl.lock().offset;
                    let words = ["REPLCONF".into(), "ACK".into(), Bytes::from(offset.to_string())];
                    writer.write_all(&encode_command(&words)).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
    .await;
    state.clients.unregister(id);
    result
}

/// Runs every complete command in `input` under one keyspace lock, and
/// appends their bytes to our backlog (so our offset stays the primary's).
/// `REPLCONF GETACK` asks for an acknowledgement: its offset is pushed to `acks`.
fn apply(
    state: &State,
    conn: &mut crate::state::session::ConnState,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    db: &mut i64,
    acks: &mut Vec<u64>,
) -> Result<(), String> {
    let raw = input.clone().freeze();
    let mut ks = state.db.lock();
    ks.recover_abandoned_batch();
    ks.begin_batch();
    conn.batch_now_ms = clock::now_ms();
    let mut consumed = 0;
    let mut result = Ok(());
    loop {
        let args = match parser.next_command(input, true) {
            Ok(Some(args)) => args,
            Ok(None) => break,
            Err(err) => {
                result = Err(format!("broken replication stream: {err}"));
                break;
            }
        };
        let used = raw.len() - input.len();
        let command_bytes = &raw[consumed..used];
        consumed = used;
        if is(&args[0], "replconf") && args.len() >= 2 && is(&args[1], "getack") {
            acks.push(state.repl.lock().offset);
        } else if is(&args[0], "select") {
            *db = std::str::from_utf8(&args[1..].first().cloned().unwrap_or_default())
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(-1);
        } else if *db == 0 && !is(&args[0], "ping") {
            let mut args = args;
            let reply = command::dispatch_locked(state, conn, &mut ks, &mut args);
            conn.block_request = None;
            if let crate::protocol::Frame::Error(err) = reply {
                tracing::warn!(error = %err, "a replicated command failed");
            }
        }
        state.repl.append(command_bytes);
    }
    conn.batch_now_ms = 0;
    let committed = ks.commit_batch().map_err(|e| e.to_string());
    drop(ks);
    result.and(committed)
}
