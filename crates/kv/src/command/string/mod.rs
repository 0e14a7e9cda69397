//! String commands: `GET`, `SET` and its family, counters, ranges.
//!
//! The chapter's `put(key, value)` / `get(key)` API, in Redis's richer form:
//! conditional sets (`NX`/`XX`), expiry set atomically with the value
//! (`EX`/`PX`/`EXAT`/`PXAT`/`KEEPTTL`), atomic read-modify-write (`INCR`,
//! `APPEND`, `SETRANGE`) so cache-aside clients never race. Numbers are
//! stored as their decimal text, exactly as Redis stores them.

use bytes::{Bytes, BytesMut};

use super::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, reply, syntax_error,
    wrong_arity, wrong_type,
};
use crate::engine::memory::append_in_place;

mod counter;
use crate::protocol::Frame;
use crate::value::{Entry, Value};

pub(super) fn specs() -> Vec<Spec> {
    let s = super::in_group("string");
    let w = WRITE | DENYOOM;
    vec![
        s(
            "get",
            2,
            READONLY,
            (1, 1, 1),
            "Returns the string value of a key.",
            get,
        ),
        s(
            "set",
            -3,
            w,
            (1, 1, 1),
            "Sets the string value of a key, optionally with an expiry and a condition.",
            set,
        ),
        s(
            "setnx",
            3,
            w,
            (1, 1, 1),
            "Sets a key only if it does not exist.",
            setnx,
        ),
        s(
            "setex",
            4,
            w,
            (1, 1, 1),
            "Sets a key with an expiry in seconds.",
            setex,
        ),
        s(
            "psetex",
            4,
            w,
            (1, 1, 1),
            "Sets a key with an expiry in milliseconds.",
            psetex,
        ),
        s(
            "getset",
            3,
            w,
            (1, 1, 1),
            "Sets a key and returns its previous value.",
            getset,
        ),
        s(
            "getdel",
            2,
            WRITE,
            (1, 1, 1),
            "Returns a key's value and deletes it.",
            getdel,
        ),
        s(
            "getex",
            -2,
            WRITE,
            (1, 1, 1),
            "Returns a key's value and changes its expiry.",
            getex,
        ),
        s(
            "mget",
            -2,
            READONLY,
            (1, -1, 1),
            "Returns the values of several keys.",
            mget,
        ),
        s("mset", -3, w, (1, -1, 2), "Sets several keys.", mset),
        s(
            "msetnx",
            -3,
            w,
            (1, -1, 2),
            "Sets several keys only if none exists.",
            msetnx,
        ),
        s(
            "incr",
            2,
            w,
            (1, 1, 1),
            "Increments an integer value by one.",
            counter::incr,
        ),
        s(
            "incrby",
            3,
            w,
            (1, 1, 1),
            "Increments an integer value.",
            counter::incrby,
        ),
        s(
            "decr",
            2,
            w,
            (1, 1, 1),
            "Decrements an integer value by one.",
            counter::decr,
        ),
        s(
            "decrby",
            3,
            w,
            (1, 1, 1),
            "Decrements an integer value.",
            counter::decrby,
        ),
        s(
            "incrbyfloat",
            3,
            w,
            (1, 1, 1),
            "Increments a floating-point value.",
            counter::incrbyfloat,
        ),
        s(
            "append",
            3,
            w,
            (1, 1, 1),
            "Appends to a string value.",
            append,
        ),
        s(
            "strlen",
            2,
            READONLY,
            (1, 1, 1),
            "Returns the length of a string value.",
            strlen,
        ),
        s(
            "getrange",
            4,
            READONLY,
            (1, 1, 1),
            "Returns a substring of a string value.",
            getrange,
        ),
        s(
            "setrange",
            4,
            w,
            (1, 1, 1),
            "Overwrites part of a string value at an offset.",
            setrange,
        ),
    ]
}

/// The string inside a value, or `WRONGTYPE`.
fn as_string(value: Value) -> Result<Bytes, Frame> {
    match value {
        Value::String(bytes) => Ok(bytes),
        Value::Collection(_) => Err(wrong_type()),
    }
}

/// Reads a live string key for a read command.
pub(super) fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Frame> {
    let now = ctx.now_ms;
    match ctx.ks().get(key, now).map_err(engine_error)? {
        Some(entry) => as_string(entry.value).map(Some),
        None => Ok(None),
    }
}

/// Reads a live key with its expiry, without counting a hit.
pub(super) fn lookup(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<(Bytes, Option<u64>)>, Frame> {
    lookup_as(ctx, key, false)
}

/// [`lookup`], or (`read`) as a read counts it: a hit or a miss, and a
/// `keymiss` event (`SET ... GET` reads the old value as `GET` does).
fn lookup_as(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    read: bool,
) -> Result<Option<(Bytes, Option<u64>)>, Frame> {
    let now = ctx.now_ms;
    let found = if read {
        ctx.ks().get(key, now)
    } else {
        ctx.ks().lookup(key, now)
    };
    match found.map_err(engine_error)? {
        Some(entry) => Ok(Some((as_string(entry.value)?, entry.expire_at_ms))),
        None => Ok(None),
    }
}

/// Stores a string value at `key` with `expire_at_ms`.
pub(super) fn write(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    value: Bytes,
    expire_at_ms: Option<u64>,
) -> Result<(), Frame> {
    let entry = Entry {
        value: Value::String(value),
        expire_at_ms,
    };
    ctx.ks().put(key.clone(), entry).map_err(engine_error)
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(read(ctx, &args[1]).map(Frame::optional))
}

/// A relative or absolute expiry given as an option argument.
#[derive(Clone, Copy)]
enum ExpireArg {
    Seconds,
    Millis,
    UnixSeconds,
    UnixMillis,
}

/// Turns an expiry option into an absolute Unix-ms deadline, with Redis's
/// checks (positive, no overflow).
fn deadline(kind: ExpireArg, arg: &[u8], now_ms: u64, command: &str) -> Result<u64, Frame> {
    let n = int_arg(arg)?;
    let invalid = || Frame::error(format!("ERR invalid expire time in '{command}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let ms = match kind {
        ExpireArg::Seconds | ExpireArg::UnixSeconds => n.checked_mul(1000).ok_or_else(invalid)?,
        ExpireArg::Millis | ExpireArg::UnixMillis => n,
    };
    let at = match kind {
        ExpireArg::Seconds | ExpireArg::Millis => {
            ms.checked_add(now_ms as i64).ok_or_else(invalid)?
        }
        ExpireArg::UnixSeconds | ExpireArg::UnixMillis => ms,
    };
    Ok(at as u64)
}

fn expire_option(word: &[u8]) -> Option<ExpireArg> {
    [
        ("ex", ExpireArg::Seconds),
        ("px", ExpireArg::Millis),
        ("exat", ExpireArg::UnixSeconds),
        ("pxat", ExpireArg::UnixMillis),
    ]
    .into_iter()
    .find(|(name, _)| is(word, name))
    .map(|(_, kind)| kind)
}

/// Parsed `SET` options.
#[derive(Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    expire_at_ms: Option<u64>,
}

fn parse_set_options(args: &[Bytes], now_ms: u64) -> Result<SetOptions, Frame> {
    let mut opts = SetOptions::default();
    let mut i = 3;
    while i < args.len() {
        let word = &args[i];
        let has_expiry = opts.expire_at_ms.is_some();
        if is(word, "nx") && !opts.xx {
            opts.nx = true;
        } else if is(word, "xx") && !opts.nx {
            opts.xx = true;
        } else if is(word, "get") {
            opts.get = true;
        } else if is(word, "keepttl") && !has_expiry {
            opts.keep_ttl = true;
        } else if let Some(kind) = expire_option(word).filter(|_| !has_expiry && !opts.keep_ttl) {
            let value = args.get(i + 1).ok_or_else(syntax_error)?;
            opts.expire_at_ms = Some(deadline(kind, value, now_ms, "set")?);
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    Ok(opts)
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let opts = parse_set_options(args, ctx.now_ms)?;
        if !(opts.nx || opts.xx || opts.get || opts.keep_ttl) {
            // The common case needs no read of the old value.
            write(ctx, &args[1], args[2].clone(), opts.expire_at_ms)?;
            if opts.expire_at_ms.is_some() {
                raise_expire(ctx, &args[1]);
            }
            return Ok(Frame::OK);
        }
        let old = lookup_as(ctx, &args[1], opts.get)?;
        let reply_old = |old: Option<(Bytes, Option<u64>)>| Frame::optional(old.map(|(v, _)| v));
        if (opts.nx && old.is_some()) || (opts.xx && old.is_none()) {
            return Ok(if opts.get {
                reply_old(old)
            } else {
                Frame::Null
            });
        }
        let ttl = if opts.keep_ttl {
            old.as_ref().and_then(|(_, at)| *at)
        } else {
            opts.expire_at_ms
        };
        write(ctx, &args[1], args[2].clone(), ttl)?;
        if !opts.keep_ttl && opts.expire_at_ms.is_some() {
            raise_expire(ctx, &args[1]);
        }
        Ok(if opts.get { reply_old(old) } else { Frame::OK })
    })())
}

fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        if lookup(ctx, &args[1])?.is_some() {
            return Ok(Frame::Integer(0));
        }
        write(ctx, &args[1], args[2].clone(), None)?;
        Ok(Frame::Integer(1))
    })())
}

fn set_with_expiry(ctx: &mut Ctx<'_>, args: &[Bytes], kind: ExpireArg, command: &str) -> Frame {
    reply((|| {
        let at = deadline(kind, &args[2], ctx.now_ms, command)?;
        write(ctx, &args[1], args[3].clone(), Some(at))?;
        raise_expire(ctx, &args[1]);
        Ok(Frame::OK)
    })())
}

/// A `SET` with a TTL also raises `expire` (after its `set`), as in Redis.
fn raise_expire(ctx: &mut Ctx<'_>, key: &[u8]) {
    ctx.ks()
        .raise(crate::config::NotifyFlags::GENERIC, "expire", key);
}

fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    set_with_expiry(ctx, args, ExpireArg::Seconds, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    set_with_expiry(ctx, args, ExpireArg::Millis, "psetex")
}

fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let old = lookup(ctx, &args[1])?;
        write(ctx, &args[1], args[2].clone(), None)?;
        Ok(Frame::optional(old.map(|(v, _)| v)))
    })())
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let Some(value) = read(ctx, &args[1])? else {
            return Ok(Frame::Null);
        };
        let now = ctx.now_ms;
        ctx.ks().remove(&args[1], now).map_err(engine_error)?;
        Ok(Frame::Bulk(value))
    })())
}

fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        // Parse everything first: a syntax error must not change the key.
        let mut change: Option<Option<u64>> = None;
        let mut i = 2;
        while i < args.len() {
            if is(&args[i], "persist") && change.is_none() {
                change = Some(None);
            } else if let Some(kind) = expire_option(&args[i]).filter(|_| change.is_none()) {
                let value = args.get(i + 1).ok_or_else(syntax_error)?;
                change = Some(Some(deadline(kind, value, ctx.now_ms, "getex")?));
                i += 1;
            } else {
                return Err(syntax_error());
            }
            i += 1;
        }
        let now = ctx.now_ms;
        let Some(entry) = ctx.ks().get(&args[1], now).map_err(engine_error)? else {
            return Ok(Frame::Null);
        };
        let had_ttl = entry.expire_at_ms.is_some();
        let value = as_string(entry.value)?;
        // Redis's events: `del` for a time already past, `expire`, or
        // `persist` if there was a TTL to remove.
        let (key, generic) = (&args[1], crate::config::NotifyFlags::GENERIC);
        match change {
            Some(Some(at)) if at <= now => {
                crate::command::delete_as_del(ctx, key)?;
            }
            Some(at) if at.is_some() || had_ttl => {
                ctx.ks().set_expiry(key, at, now).map_err(engine_error)?;
                let event = if at.is_some() { "expire" } else { "persist" };
                crate::command::raise_event(ctx, generic, event, key);
            }
            _ => {}
        }
        Ok(Frame::Bulk(value))
    })())
}

fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let mut values = Vec::with_capacity(args.len() - 1);
        for key in &args[1..] {
            values.push(Frame::optional(read(ctx, key)?));
        }
        Ok(Frame::Array(values))
    })())
}

fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len().is_multiple_of(2) {
        return wrong_arity("mset");
    }
    reply((|| {
        for pair in args[1..].chunks_exact(2) {
            write(ctx, &pair[0], pair[1].clone(), None)?;
        }
        Ok(Frame::OK)
    })())
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len().is_multiple_of(2) {
        return wrong_arity("msetnx");
    }
    reply((|| {
        for pair in args[1..].chunks_exact(2) {
            if lookup(ctx, &pair[0])?.is_some() {
                return Ok(Frame::Integer(0));
            }
        }
        for pair in args[1..].chunks_exact(2) {
            write(ctx, &pair[0], pair[1].clone(), None)?;
        }
        Ok(Frame::Integer(1))
    })())
}

/// Redis's error for a string that would exceed `proto-max-bulk-len`.
pub(super) fn too_big() -> Frame {
    Frame::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let limit = ctx.state.config.read().proto_max_bulk_len;
        let Some((current, _)) = lookup(ctx, &args[1])? else {
            write(ctx, &args[1], args[2].clone(), None)?;
            return Ok(Frame::Integer(args[2].len() as i64));
        };
        let total = current.len() + args[2].len();
        if total as u64 > limit {
            return Err(too_big());
        }
        drop(current); // so the stored copy is uniquely owned and grows in place
        let now = ctx.now_ms;
        let suffix = &args[2];
        ctx.ks()
            .modify(&args[1], now, &mut |entry| {
                if let Value::String(bytes) = &mut entry.value {
                    append_in_place(bytes, suffix);
                }
            })
            .map_err(engine_error)?;
        Ok(Frame::Integer(total as i64))
    })())
}

fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(read(ctx, &args[1]).map(|v| Frame::Integer(v.map_or(0, |v| v.len() as i64))))
}

pub(super) fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (mut start, mut end) = (int_arg(&args[2])?, int_arg(&args[3])?);
        let value = read(ctx, &args[1])?.unwrap_or_default();
        let len = value.len() as i64;
        if start < 0 && end < 0 && start > end {
            return Ok(Frame::Bulk(Bytes::new()));
        }
        if start < 0 {
            start = (len + start).max(0);
        }
        if end < 0 {
            end = (len + end).max(0);
        }
        end = end.min(len - 1);
        if start > end || len == 0 {
            return Ok(Frame::Bulk(Bytes::new()));
        }
        Ok(Frame::Bulk(value.slice(start as usize..=end as usize)))
    })())
}

fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let offset = int_arg(&args[2])?;
        if offset < 0 {
            return Err(Frame::error("ERR offset is out of range"));
        }
        let patch = &args[3];
        let existing = lookup(ctx, &args[1])?;
        let (current, ttl) = existing.unwrap_or_default();
        if patch.is_empty() {
            return Ok(Frame::Integer(current.len() as i64));
        }
        let limit = ctx.state.config.read().proto_max_bulk_len;
        let end = (offset as u64)
            .checked_add(patch.len() as u64)
            .filter(|&e| e <= limit)
            .ok_or_else(too_big)?;
        let end = end as usize;
        let mut grown = BytesMut::with_capacity(end.max(current.len()));
        grown.extend_from_slice(&current);
        if grown.len() < end {
            grown.resize(end, 0);
        }
        grown[offset as usize..end].copy_from_slice(patch);
        let len = grown.len() as i64;
        write(ctx, &args[1], grown.freeze(), ttl)?;
        Ok(Frame::Integer(len))
    })())
}
