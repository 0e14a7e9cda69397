//! RESP clients of a cluster node: the commands that are cluster-aware,
//! and a clear error for every other.
//!
//! Why it exists: in cluster mode a key lives on `N` nodes and every read
//! and write is a quorum round, so commands cannot run against the local
//! keyspace as the single-node server runs them. This loop parses RESP
//! with the server's own parser and limits, turns each command into a
//! replica operation for the node's thread, and waits (bounded) for its
//! answer. Commands run one at a time per connection, in order, so a
//! pipeline's replies keep their order.
//!
//! # Cluster-aware commands
//!
//! | command | what it does |
//! |---|---|
//! | `GET key` | a read round (`R` replicas); siblings resolved by last-writer-wins on their hybrid timestamps |
//! | `SET key value` | a write round (`W` acks) replacing every version the coordinator holds |
//! | `DEL key [key ...]` | per key, a read then a delete (a tombstone version); counts keys that had a value |
//! | `EXISTS key [key ...]` | per key, a read |
//! | `KV.GET key` | all siblings: `[context, [value or nil, ...]]` |
//! | `KV.PUT key value [CONTEXT ctx]` | a write that replaces exactly the versions `ctx` saw |
//! | `KV.DEL key [CONTEXT ctx]` | a delete that replaces exactly the versions `ctx` saw |
//! | `KV.STATUS` | this node's view of the cluster, as JSON |
//! | `KV.CLUSTER JOIN \| LEAVE` | this node joins (started with `--join`) or leaves the ring |
//! | `KV.CONSISTENCY [N W R \| W R \| STRICT \| SLOPPY \| DEFAULT]` | this connection's quorum: see `node::consistency` |
//! | `INCR`, `SADD`, `HSET`, ... | CRDTs: see `node::data_types` |
//!
//! Connection commands work as usual: `PING`, `ECHO`, `AUTH`, `SELECT 0`,
//! `QUIT`, `CLIENT SETNAME/SETINFO`, `COMMAND` (empty), `INFO`. Every other
//! command answers `-ERR 'X' is not supported in cluster mode`, never a
//! silent single-node behaviour; so do `SET` options (`EX`, `NX`, ...).
//!
//! # How a client sees conflicts
//!
//! Two writes through different coordinators that did not see each other
//! are both kept as *siblings*. `GET` returns one of them (the latest by
//! hybrid timestamp; the others are hidden, not lost). `KV.GET` shows
//! them all plus an opaque causal context (a bulk string); writing
//! `KV.PUT key merged CONTEXT ctx` with that context replaces exactly those
//! siblings: Riak's "the client resolves conflicts". A deleted sibling
//! shows as nil in `KV.GET`.
//!
//! Errors: `-CLUSTERDOWN` while the node is forming, `-TRYAGAIN` when the
//! quorum was not reached in time (the outcome is unknown: the write may
//! still have reached some replicas and will spread) or the node is
//! overloaded.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Input, Reply};
use crate::cluster::crdt::Crdt;
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::{Consistency, Quorum};
use crate::cluster::replica::{Answer, Op};
use crate::cluster::siblings::{Resolution, Siblings, decode_context, encode_context};
use crate::protocol::{Frame, ParseLimits, ProtocolVersion, RequestParser};

/// Bytes a client may send ahead of the commands being answered.
const QUERY_BUFFER_MAX: usize = 1 << 30;
/// Clients a node serves at once.
const CLIENTS_MAX: usize = 10_000;
/// Keys one `DEL`/`EXISTS` may name (each is a quorum round).
const KEYS_PER_COMMAND_MAX: usize = 1024;

/// What every client connection shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub inputs: SyncSender<Input>,
    pub requirepass: String,
    pub client_wait_ms: u64,
    pub bulk_len_max: usize,
    /// The cluster's `N`, `W`, `R`.
    pub quorum: Quorum,
    /// The cluster's quorum mode.
    pub mode: QuorumMode,
    /// This connection's `KV.CONSISTENCY` (each connection has its own
    /// copy of `Shared`).
    pub consistency: Consistency,
}

/// Accepts clients until `stop_accepting` fires.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Shared,
    stop_accepting: &CancellationToken,
    shutdown: &CancellationToken,
) {
    let clients = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            () = stop_accepting.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let mut stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if clients.load(std::sync::atomic::Ordering::Relaxed) >= CLIENTS_MAX {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (shared, stop, count) = (shared.clone(), shutdown.clone(), clients.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = serve_client(stream, &shared) => {}
            }
            count.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}

async fn serve_client(mut stream: TcpStream, shared: &Shared) {
    let mut shared = shared.clone();
    let _ = stream.set_nodelay(true);
    let mut parser = RequestParser::new(ParseLimits {
        bulk_len_max: shared.bulk_len_max,
        ..ParseLimits::default()
    });
    let mut input = BytesMut::with_capacity(4096);
    let mut output = BytesMut::with_capacity(4096);
    let mut authenticated = shared.requirepass.is_empty();
    loop {
        loop {
            let args = match parser.next_command(&mut input, authenticated) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(err) => {
                    Frame::error(format!("ERR Protocol error: {err}"))
                        .encode(ProtocolVersion::Resp2, &mut output);
                    let _ = stream.write_all(&output).await;
                    return;
                }
            };
            let (reply, quit) = execute(&mut shared, &mut authenticated, args).await;
            reply.encode(ProtocolVersion::Resp2, &mut output);
            if quit {
                let _ = stream.write_all(&output).await;
                return;
            }
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if input.len() > QUERY_BUFFER_MAX {
            return;
        }
        input.reserve(4096);
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

pub(super) fn wrong_args(name: &str) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

fn unsupported(name: &str) -> Frame {
    Frame::error(format!(
        "ERR '{}' is not supported in cluster mode (cluster-aware: GET, SET, DEL, EXISTS, KV.GET, KV.PUT, KV.DEL, KV.STATUS, KV.CONSISTENCY, INCR, DECR, INCRBY, DECRBY, SADD, SREM, SMEMBERS, SISMEMBER, SCARD, HSET, HGET, HDEL, HGETALL)",
        name.to_ascii_lowercase()
    ))
}

/// Runs one command; the flag says "close after this reply".
async fn execute(shared: &mut Shared, authenticated: &mut bool, args: Vec<Bytes>) -> (Frame, bool) {
    let name = upper(&args[0]);
    if name == "AUTH" {
        return (auth(shared, authenticated, &args), false);
    }
    if name == "QUIT" {
        return (Frame::Simple("OK"), true);
    }
    if !*authenticated {
        return (Frame::error("NOAUTH Authentication required."), false);
    }
    // What replicas accept (`cluster::wire::Limits`), checked before a
    // round starts rather than refused by every replica.
    let limits = crate::cluster::wire::Limits::default();
    if let Some(key) = args.get(1)
        && key.len() > limits.key_bytes_max
    {
        return (
            Frame::error(format!(
                "ERR keys are at most {} bytes in cluster mode",
                limits.key_bytes_max
            )),
            false,
        );
    }
    let value = args
        .get(2)
        .filter(|_| matches!(name.as_str(), "SET" | "KV.PUT"));
    if value.is_some_and(|v| v.starts_with(crate::cluster::crdt::value::PREFIX)) {
        return (
            Frame::error("ERR values starting with \\0crdt\\0 are reserved in cluster mode"),
            false,
        );
    }
    if value.is_some_and(|v| v.len() > limits.value_bytes_max) {
        return (
            Frame::error(format!(
                "ERR values are at most {} bytes in cluster mode",
                limits.value_bytes_max
            )),
            false,
        );
    }
    let reply = match (name.as_str(), args.len()) {
        ("PING", 1) => Frame::Simple("PONG"),
        ("PING", 2) | ("ECHO", 2) => Frame::Bulk(args[1].clone()),
        ("PING" | "ECHO", _) => wrong_args(&name),
        ("SELECT", 2) if &args[1][..] == b"0" => Frame::Simple("OK"),
        ("SELECT", 2) => {
            Frame::error("ERR DB index is out of range (cluster mode has database 0 only)")
        }
        ("CLIENT", n) if n >= 2 && matches!(upper(&args[1]).as_str(), "SETNAME" | "SETINFO") => {
            Frame::Simple("OK")
        }
        ("COMMAND", _) => Frame::Array(Vec::new()),
        ("INFO", _) => Frame::bulk("# Cluster\r\ncluster_enabled:1\r\ncluster_mode:dynamo\r\n"),
        ("GET", 2) => get(shared, &args[1]).await,
        ("SET", 3) => put(shared, &args[1], Some(args[2].clone()), None).await,
        ("SET", n) if n > 3 => unsupported("SET with options"),
        ("DEL", n) if n >= 2 => del_or_exists(shared, &args[1..], true).await,
        ("EXISTS", n) if n >= 2 => del_or_exists(shared, &args[1..], false).await,
        ("KV.GET", 2) => kv_get(shared, &args[1]).await,
        ("KV.PUT", 3 | 5) => kv_put(shared, &args, Some(args[2].clone()), 3).await,
        ("KV.DEL", 2 | 4) => kv_put(shared, &args, None, 2).await,
        ("KV.STATUS", 1) => status(shared).await,
        ("KV.CLUSTER", 2) => match upper(&args[1]).as_str() {
            "JOIN" => change(shared, true).await,
            "LEAVE" => change(shared, false).await,
            _ => Frame::error("ERR unknown KV.CLUSTER subcommand (JOIN or LEAVE)"),
        },
        ("KV.CONSISTENCY", _) => super::consistency::command(shared, &args[1..]),
        (
            "GET" | "SET" | "DEL" | "EXISTS" | "KV.GET" | "KV.PUT" | "KV.DEL" | "KV.STATUS"
            | "KV.CLUSTER",
            _,
        ) => wrong_args(&name),
        (n, _) if super::data_types::handles(n) => super::data_types::run(shared, n, &args).await,
        _ => unsupported(&name),
    };
    (reply, false)
}

fn auth(shared: &Shared, authenticated: &mut bool, args: &[Bytes]) -> Frame {
    let password = match args.len() {
        2 => &args[1],
        3 => &args[2],
        _ => return wrong_args("AUTH"),
    };
    if shared.requirepass.is_empty() {
        return Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    }
    if password[..] == *shared.requirepass.as_bytes() {
        *authenticated = true;
        Frame::Simple("OK")
    } else {
        Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

/// Sends `op` to the node's thread and waits for its answer (bounded).
pub(super) async fn ask(shared: &Shared, op: Op) -> Result<Answer, Frame> {
    let (reply, rx) = oneshot::channel();
    let request = Input::Request {
        op,
        consistency: shared.consistency,
        reply,
    };
    match shared.inputs.try_send(request) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(Frame::error("TRYAGAIN this node is overloaded"));
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(Frame::error("CLUSTERDOWN this node is stopping"));
        }
    }
    let wait = Duration::from_millis(shared.client_wait_ms);
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(Reply::Answer(Answer::Failed))) => Err(Frame::error(
            "TRYAGAIN the quorum was not reached in time (the outcome is unknown)",
        )),
        Ok(Ok(Reply::Answer(Answer::TooManySiblings(n)))) => Err(Frame::error(format!(
            "ERR the key has {n} siblings, the most a write may leave: read them with KV.GET and write a resolution with its CONTEXT"
        ))),
        Ok(Ok(Reply::Answer(Answer::Refused(why)))) => Err(Frame::error(why.to_string())),
        Ok(Ok(Reply::Answer(answer))) => Ok(answer),
        Ok(Ok(Reply::Refused(text))) => Err(Frame::Error(text)),
        Ok(Err(_)) | Err(_) => Err(Frame::error(
            "TRYAGAIN no answer from the cluster in time (the outcome is unknown)",
        )),
    }
}

pub(super) async fn read(shared: &Shared, key: &Bytes) -> Result<Siblings, Frame> {
    match ask(shared, Op::Get { key: key.clone() }).await? {
        Answer::Read(state) => Ok(state),
        _ => Err(Frame::error("ERR unexpected answer to a read")),
    }
}

fn value_of(state: &Siblings) -> Option<Bytes> {
    match state.resolve(Resolution::LastWriterWins) {
        Ok(Some(s)) => s.value.clone(),
        _ => None,
    }
}

async fn get(shared: &Shared, key: &Bytes) -> Frame {
    match read(shared, key).await {
        Ok(state) if Crdt::in_siblings(&state) => super::data_types::get_value(&state),
        Ok(state) => Frame::optional(value_of(&state)),
        Err(e) => e,
    }
}

async fn put(
    shared: &Shared,
    key: &Bytes,
    value: Option<Bytes>,
    context: Option<crate::cluster::vector_clock::VectorClock>,
) -> Frame {
    let op = Op::Put {
        key: key.clone(),
        value,
        context,
    };
    match ask(shared, op).await {
        Ok(_) => Frame::Simple("OK"),
        Err(e) => e,
    }
}

async fn del_or_exists(shared: &Shared, keys: &[Bytes], delete: bool) -> Frame {
    if keys.len() > KEYS_PER_COMMAND_MAX {
        return Frame::error(format!(
            "ERR at most {KEYS_PER_COMMAND_MAX} keys per command in cluster mode"
        ));
    }
    let mut count = 0;
    for key in keys {
        let state = match read(shared, key).await {
            Ok(state) => state,
            Err(e) => return e,
        };
        if value_of(&state).is_none() {
            continue;
        }
        count += 1;
        if delete {
            // Deletes exactly what the read saw: a concurrent write survives.
            let reply = put(shared, key, None, Some(state.context().clone())).await;
            if reply.is_error() {
                return reply;
            }
        }
    }
    Frame::Integer(count)
}

async fn kv_get(shared: &Shared, key: &Bytes) -> Frame {
    match read(shared, key).await {
        Ok(state) => Frame::Array(vec![
            Frame::bulk(encode_context(state.context())),
            Frame::Array(
                state
                    .siblings()
                    .iter()
                    .map(|s| Frame::optional(s.value.clone()))
                    .collect(),
            ),
        ]),
        Err(e) => e,
    }
}

/// `KV.PUT key value [CONTEXT ctx]` or `KV.DEL key [CONTEXT ctx]`; the
/// context, if any, starts at `args[at]`.
async fn kv_put(shared: &Shared, args: &[Bytes], value: Option<Bytes>, at: usize) -> Frame {
    let context = match &args[at..] {
        [] => None,
        [word, ctx] if upper(word) == "CONTEXT" => match decode_context(ctx) {
            Ok(c) => Some(c),
            Err(err) => return Frame::error(format!("ERR invalid causal context: {err}")),
        },
        _ => return Frame::error("ERR syntax error"),
    };
    put(shared, &args[1], value, context).await
}

async fn change(shared: &Shared, join: bool) -> Frame {
    let (reply, rx) = oneshot::channel();
    if shared
        .inputs
        .try_send(Input::Change { join, reply })
        .is_err()
    {
        return Frame::error("TRYAGAIN this node is overloaded");
    }
    match tokio::time::timeout(Duration::from_millis(shared.client_wait_ms), rx).await {
        Ok(Ok(Ok(()))) => Frame::Simple("OK"),
        Ok(Ok(Err(text))) => Frame::Error(text),
        _ => Frame::error("TRYAGAIN no answer in time"),
    }
}

async fn status(shared: &Shared) -> Frame {
    let (tx, rx) = oneshot::channel();
    if shared.inputs.try_send(Input::Status(tx)).is_err() {
        return Frame::error("TRYAGAIN this node is overloaded");
    }
    match tokio::time::timeout(Duration::from_millis(shared.client_wait_ms), rx).await {
        Ok(Ok(status)) => match serde_json::to_string(&status) {
            Ok(json) => Frame::bulk(json),
            Err(err) => Frame::error(format!("ERR {err}")),
        },
        _ => Frame::error("TRYAGAIN no status in time"),
    }
}
