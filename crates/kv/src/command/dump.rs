//! `DUMP` and `RESTORE`, and the bridge between a key and an
//! [`RdbValue`] that full resynchronization uses too.
//!
//! A key is read out with the type's own read commands (`LRANGE`,
//! `SMEMBERS`, `ZRANGE ... WITHSCORES`, `HGETALL`) and written back with its
//! write commands (`RPUSH`, `SADD`, `ZADD`, `HSET`), run in the caller's
//! context: the way Redis's AOF rewrite turns a dataset into commands. So
//! this bridge knows no subkey layout and no engine, and every type that
//! serializes at all follows the same rules as its commands (versions,
//! `WRONGTYPE`, empty = deleted). Streams, whose groups' state no command
//! sets, go through the stream store's own bridge (`stream::read_rdb`).

use bytes::Bytes;

use super::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, lookup, syntax_error, table,
};
use crate::config::NotifyFlags;
use crate::protocol::Frame;
use crate::pubsub::mailbox;
use crate::rdb::{self, RdbValue};
use crate::state::State;
use crate::state::session::ConnState;
use crate::value::{Kind, Value};

/// Elements per write command when a big collection is written back.
const WRITE_CHUNK: usize = 1024;

pub(super) fn specs() -> Vec<Spec> {
    let s = super::in_group("generic");
    vec![
        s(
            "dump",
            2,
            READONLY,
            (1, 1, 1),
            "Serializes a key's value in Redis's RDB format.",
            dump,
        ),
        s(
            "restore",
            -4,
            WRITE | DENYOOM,
            (1, 1, 1),
            "Creates a key from a DUMP payload.",
            restore,
        ),
    ]
}

/// Runs command `name` with `args` (name first) in `ctx`: one of the type
/// commands this bridge reads and writes with.
fn call(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(index) = lookup(&args[0]) else {
        return Frame::error("ERR internal: bridge command missing");
    };
    (table()[index].handler)(ctx, args)
}

fn flatten(frame: Frame) -> Result<Vec<Frame>, Frame> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => Ok(items),
        Frame::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Frame::Error(_) => Err(frame),
        _ => Err(Frame::error("ERR internal: unexpected reply shape")),
    }
}

fn bulk(frame: Frame) -> Result<Bytes, Frame> {
    match frame {
        Frame::Bulk(b) => Ok(b),
        Frame::Double(d) => Ok(Bytes::from(d.to_string())),
        Frame::DoubleText(t) => Ok(Bytes::from(t)),
        Frame::Integer(i) => Ok(Bytes::from(i.to_string())),
        _ => Err(Frame::error("ERR internal: unexpected element")),
    }
}

fn score(frame: Frame) -> Result<f64, Frame> {
    match frame {
        Frame::Double(d) => Ok(d),
        other => {
            let text = bulk(other)?;
            super::zset::parse::score_arg(&text)
                .ok_or_else(|| Frame::error("ERR internal: bad score"))
        }
    }
}

fn words(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

/// The value at `key` and its expiry; `None` if absent.
pub(crate) fn read_value(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
) -> Result<Option<(RdbValue, Option<u64>)>, Frame> {
    let now = ctx.now_ms;
    let Some(entry) = ctx.ks().get_untouched(key, now).map_err(engine_error)? else {
        return Ok(None);
    };
    let kind = match entry.value {
        Value::String(s) => return Ok(Some((RdbValue::String(s), entry.expire_at_ms))),
        Value::Collection(meta) => meta.kind,
    };
    let k = key.clone();
    let value = match kind {
        Kind::List => {
            let reply = call(
                ctx,
                &[Bytes::from_static(b"lrange"), k, "0".into(), "-1".into()],
            );
            RdbValue::List(
                flatten(reply)?
                    .into_iter()
                    .map(bulk)
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Set => {
            let reply = call(ctx, &[Bytes::from_static(b"smembers"), k]);
            RdbValue::Set(
                flatten(reply)?
                    .into_iter()
                    .map(bulk)
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::ZSet => {
            let args = words(&[b"zrange", &k, b"0", b"-1", b"withscores"]);
            let mut out = Vec::new();
            let mut it = flatten(call(ctx, &args))?.into_iter();
            while let Some(item) = it.next() {
                match item {
                    // RESP3-shaped replies nest [member, score] pairs.
                    Frame::Array(pair) if pair.len() == 2 => {
                        let mut pair = pair.into_iter();
                        let member = bulk(pair.next().unwrap_or(Frame::Null))?;
                        out.push((member, score(pair.next().unwrap_or(Frame::Null))?));
                    }
                    member => {
                        let s = it
                            .next()
                            .ok_or_else(|| Frame::error("ERR internal: odd zrange"))?;
                        out.push((bulk(member)?, score(s)?));
                    }
                }
            }
            RdbValue::ZSet(out)
        }
        Kind::Hash => {
            let flat = flatten(call(ctx, &[Bytes::from_static(b"hgetall"), k]))?;
            let flat = flat.into_iter().map(bulk).collect::<Result<Vec<_>, _>>()?;
            RdbValue::Hash(
                rdb::compact::pairs(flat).map_err(|_| Frame::error("ERR internal: odd hgetall"))?,
            )
        }
        Kind::Stream => match super::stream::read_rdb(ctx.ks(), &k, now)? {
            Some(s) => RdbValue::Stream(Box::new(s)),
            None => return Ok(None),
        },
    };
    Ok(Some((value, entry.expire_at_ms)))
}

/// Writes `value` at `key` (replacing whatever is there) with its expiry.
/// An empty collection is refused, as `RESTORE` refuses it.
pub(crate) fn write_value(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    value: &RdbValue,
    expire_at_ms: Option<u64>,
) -> Result<(), Frame> {
    let now = ctx.now_ms;
    ctx.ks().remove(key, now).map_err(engine_error)?;
    let run = |ctx: &mut Ctx<'_>, args: Vec<Bytes>| match call(ctx, &args) {
        Frame::Error(e) => Err(Frame::Error(e)),
        _ => Ok(()),
    };
    let k = key.clone();
    match value {
        RdbValue::String(s) => run(ctx, vec!["set".into(), k.clone(), s.clone()])?,
        RdbValue::List(items) | RdbValue::Set(items) => {
            let cmd: Bytes = if matches!(value, RdbValue::List(_)) {
                "rpush".into()
            } else {
                "sadd".into()
            };
            if items.is_empty() {
                return Err(Frame::error("ERR Bad data format"));
            }
            for chunk in items.chunks(WRITE_CHUNK) {
                let mut args = vec![cmd.clone(), k.clone()];
                args.extend(chunk.iter().cloned());
                run(ctx, args)?;
            }
        }
        RdbValue::ZSet(members) => {
            if members.is_empty() {
                return Err(Frame::error("ERR Bad data format"));
            }
            for chunk in members.chunks(WRITE_CHUNK) {
                let mut args = vec!["zadd".into(), k.clone()];
                for (member, score) in chunk {
                    args.push(Bytes::from(score_text(*score)));
                    args.push(member.clone());
                }
                run(ctx, args)?;
            }
        }
        RdbValue::Hash(fields) => {
            if fields.is_empty() {
                return Err(Frame::error("ERR Bad data format"));
            }
            for chunk in fields.chunks(WRITE_CHUNK) {
                let mut args = vec!["hset".into(), k.clone()];
                for (field, value) in chunk {
                    args.push(field.clone());
                    args.push(value.clone());
                }
                run(ctx, args)?;
            }
        }
        RdbValue::Stream(s) => super::stream::write_rdb(ctx.ks(), &k, s, now)?,
    }
    if let Some(at) = expire_at_ms {
        run(
            ctx,
            vec!["pexpireat".into(), k, Bytes::from(at.to_string())],
        )?;
    }
    Ok(())
}

/// A score as text that parses back to the same double.
fn score_text(score: f64) -> String {
    if score.is_infinite() {
        if score > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        // Rust's shortest round-trip form (`1e300`, `-0`, `0.1`).
        format!("{score:?}")
    }
}

fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match read_value(ctx, &args[1]) {
        Ok(Some((value, _))) => Frame::Bulk(Bytes::from(rdb::dump_payload(&value))),
        Ok(None) => Frame::Null,
        Err(err) => err,
    }
}

fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (mut replace, mut absttl) = (false, false);
    let mut i = 4;
    while i < args.len() {
        let arg = &args[i];
        if is(arg, "replace") {
            replace = true;
        } else if is(arg, "absttl") {
            absttl = true;
        } else if (is(arg, "idletime") || is(arg, "freq")) && i + 1 < args.len() {
            match int_arg(&args[i + 1]) {
                Ok(n) if n >= 0 && (is(arg, "idletime") || n <= 255) => {}
                Ok(_) if is(arg, "idletime") => {
                    return Frame::error("ERR Invalid IDLETIME value, must be >= 0");
                }
                Ok(_) => return Frame::error("ERR Invalid FREQ value, must be >= 0 and <= 255"),
                Err(err) => return err,
            }
            i += 1;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    let ttl = match int_arg(&args[2]) {
        Ok(ttl) if ttl >= 0 => ttl as u64,
        Ok(_) => return Frame::error("ERR Invalid TTL value, must be >= 0"),
        Err(err) => return err,
    };
    let key = &args[1];
    let now = ctx.now_ms;
    if !replace {
        match ctx.ks().lookup(key, now) {
            Ok(Some(_)) => return Frame::error("BUSYKEY Target key name already exists."),
            Ok(None) => {}
            Err(err) => return engine_error(err),
        }
    }
    let value = match rdb::parse_dump_payload(&args[3]) {
        Ok(value) => value,
        Err(rdb::RdbError::Checksum | rdb::RdbError::Version(_)) => {
            return Frame::error("ERR DUMP payload version or checksum are wrong");
        }
        Err(_) => return Frame::error("ERR Bad data format"),
    };
    let expire_at_ms = match (ttl, absttl) {
        (0, _) => None,
        (at, true) => Some(at),
        (ms, false) => Some(now.saturating_add(ms)),
    };
    if expire_at_ms.is_some_and(|at| at <= now) {
        // Already expired: Redis deletes the key and answers OK.
        return match super::delete_as_del(ctx, key) {
            Ok(_) => Frame::OK,
            Err(err) => err,
        };
    }
    if let Err(err) = write_value(ctx, key, &value, expire_at_ms) {
        return err;
    }
    super::own_events(ctx);
    super::raise_event(ctx, NotifyFlags::GENERIC, "restore", key);
    Frame::OK
}

/// A client for the server's own use (a snapshot, the primary's stream):
/// registered (so `CLIENT LIST` shows it) and authenticated.
pub(crate) fn internal_client(state: &State) -> ConnState {
    let info = state
        .clients
        .register(usize::MAX, None, None)
        .expect("no client limit for internal clients");
    let (subscriber, _inbox) = mailbox(info.id);
    ConnState::new(info, subscriber, true)
}

/// The whole dataset as an RDB file, with the replication id and offset it
/// corresponds to. Taken under the keyspace lock (a consistent point in
/// the stream; clients wait meanwhile: call it off the async workers). The
/// backlog is created (`backlog_bytes`) under the same lock, so every write
/// after the snapshot is kept for the replica.
pub(crate) fn snapshot(
    state: &State,
    backlog_bytes: usize,
) -> Result<(Vec<u8>, String, u64), String> {
    let mut conn = internal_client(state);
    let id = conn.id;
    let result = (|| {
        let mut ks = state.db.lock();
        ks.recover_abandoned_batch();
        state.repl.ensure_backlog(backlog_bytes);
        let (replid, offset) = {
            let inner = state.repl.lock();
            (inner.replid.clone(), inner.offset)
        };
        let now = clock::now_ms();
        let mut keys = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = ks
                .scan(cursor, 10_000, now, &mut keys)
                .map_err(|e| e.to_string())?;
            if cursor == 0 {
                break;
            }
        }
        let aux = [
            ("redis-ver", super::server::REDIS_VERSION.to_string()),
            ("redis-bits", "64".into()),
            ("ctime", (now / 1000).to_string()),
            ("repl-stream-db", "0".into()),
            ("repl-id", replid.clone()),
            ("repl-offset", offset.to_string()),
            ("aof-base", "0".into()),
        ];
        let mut writer = rdb::file::FileWriter::new(&aux, keys.len() as u64, 0);
        let mut ctx = Ctx::locked(state, &mut conn, &mut ks);
        for key in keys {
            match read_value(&mut ctx, &key) {
                Ok(Some((value, expire_at_ms))) => writer.entry(&key, &value, expire_at_ms),
                Ok(None) => {}
                Err(Frame::Error(e)) => return Err(e),
                Err(_) => return Err("snapshot failed".into()),
            }
        }
        Ok((writer.finish(), replid, offset))
    })();
    state.clients.unregister(id);
    result
}

/// Replaces the dataset with `entries` (a full resynchronization), adopting
/// the primary's history `replid` at `offset`, under the keyspace lock.
/// Keys of databases other than 0 are skipped (this server has one).
pub(crate) fn load(
    state: &State,
    entries: Vec<rdb::file::FileEntry>,
    replid: String,
    offset: u64,
    backlog_bytes: usize,
) -> Result<usize, String> {
    let mut conn = internal_client(state);
    conn.master_link = true;
    let id = conn.id;
    let result = (|| {
        let mut ks = state.db.lock();
        ks.recover_abandoned_batch();
        ks.begin_batch();
        ks.clear().map_err(|e| e.to_string())?;
        ks.commit_batch().map_err(|e| e.to_string())?;
        let now = clock::now_ms();
        let mut loaded = 0;
        let mut ctx = Ctx::locked(state, &mut conn, &mut ks);
        for chunk in entries.chunks(1000) {
            ctx.ks().begin_batch();
            for entry in chunk {
                if entry.db != 0 || entry.expire_at_ms.is_some_and(|at| at <= now) {
                    continue;
                }
                match write_value(&mut ctx, &entry.key, &entry.value, entry.expire_at_ms) {
                    Ok(()) => loaded += 1,
                    // An empty collection in a file is skipped, as Redis does.
                    Err(_) if is_empty(&entry.value) => {}
                    Err(Frame::Error(e)) => return Err(e),
                    Err(_) => return Err("load failed".into()),
                }
            }
            ctx.ks().commit_batch().map_err(|e| e.to_string())?;
        }
        drop(ctx);
        state.repl.adopt(replid, offset, backlog_bytes);
        drop(ks);
        Ok(loaded)
    })();
    state.clients.unregister(id);
    result
}

fn is_empty(value: &RdbValue) -> bool {
    match value {
        RdbValue::String(_) => false,
        RdbValue::List(v) | RdbValue::Set(v) => v.is_empty(),
        RdbValue::ZSet(v) => v.is_empty(),
        RdbValue::Hash(v) => v.is_empty(),
        RdbValue::Stream(_) => false,
    }
}
