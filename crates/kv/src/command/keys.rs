//! Generic key commands: deletion, existence, TTLs, renames, iteration.
//!
//! TTL commands are where the cache tier's "expired data must be removed"
//! becomes an API: `EXPIRE` and friends (with Redis 7's `NX`/`XX`/`GT`/`LT`
//! conditions), `TTL`/`PTTL` to read the deadline back, `PERSIST` to drop it.
//! `SCAN` iterates without blocking the server (a cursor, a bounded amount of
//! work per call: `COUNT` is capped at `keyspace::SCAN_COUNT_MAX`); `KEYS` walks everything at once and is meant for
//! debugging, as in Redis.

use bytes::Bytes;

use super::{Ctx, READONLY, Spec, WRITE, engine_error, int_arg, is, reply, syntax_error};
use crate::keyspace::collection::Collection;
use crate::pattern::glob_match;
use crate::protocol::Frame;
use crate::value::Value;

pub(super) fn specs() -> Vec<Spec> {
    let s = super::in_group("generic");
    vec![
        s("del", -2, WRITE, (1, -1, 1), "Deletes keys.", del),
        s(
            "unlink",
            -2,
            WRITE,
            (1, -1, 1),
            "Deletes keys (memory is freed in place; values are small).",
            del,
        ),
        s(
            "exists",
            -2,
            READONLY,
            (1, -1, 1),
            "Counts how many of the keys exist.",
            exists,
        ),
        s(
            "touch",
            -2,
            READONLY,
            (1, -1, 1),
            "Counts existing keys and marks them as accessed.",
            touch,
        ),
        s(
            "type",
            2,
            READONLY,
            (1, 1, 1),
            "Returns the type of a key's value.",
            type_,
        ),
        s(
            "expire",
            -3,
            WRITE,
            (1, 1, 1),
            "Sets a key's time to live in seconds.",
            expire,
        ),
        s(
            "pexpire",
            -3,
            WRITE,
            (1, 1, 1),
            "Sets a key's time to live in milliseconds.",
            pexpire,
        ),
        s(
            "expireat",
            -3,
            WRITE,
            (1, 1, 1),
            "Sets a key's expiry as a Unix time in seconds.",
            expireat,
        ),
        s(
            "pexpireat",
            -3,
            WRITE,
            (1, 1, 1),
            "Sets a key's expiry as a Unix time in milliseconds.",
            pexpireat,
        ),
        s(
            "ttl",
            2,
            READONLY,
            (1, 1, 1),
            "Returns a key's time to live in seconds.",
            ttl,
        ),
        s(
            "pttl",
            2,
            READONLY,
            (1, 1, 1),
            "Returns a key's time to live in milliseconds.",
            pttl,
        ),
        s(
            "expiretime",
            2,
            READONLY,
            (1, 1, 1),
            "Returns a key's expiry as a Unix time in seconds.",
            expiretime,
        ),
        s(
            "pexpiretime",
            2,
            READONLY,
            (1, 1, 1),
            "Returns a key's expiry as a Unix time in milliseconds.",
            pexpiretime,
        ),
        s(
            "persist",
            2,
            WRITE,
            (1, 1, 1),
            "Removes a key's expiry.",
            persist,
        ),
        s(
            "rename",
            3,
            WRITE,
            (1, 2, 1),
            "Renames a key, replacing the destination.",
            rename,
        ),
        s(
            "renamenx",
            3,
            WRITE,
            (1, 2, 1),
            "Renames a key only if the destination does not exist.",
            renamenx,
        ),
        s(
            "keys",
            2,
            READONLY,
            (0, 0, 0),
            "Returns every key matching a pattern.",
            keys,
        ),
        s(
            "scan",
            -2,
            READONLY,
            (0, 0, 0),
            "Iterates over the keyspace with a cursor.",
            scan,
        ),
        s(
            "randomkey",
            1,
            READONLY,
            (0, 0, 0),
            "Returns a random key.",
            randomkey,
        ),
    ]
}

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let mut removed = 0;
        for key in &args[1..] {
            removed += i64::from(ctx.ks().remove(key, now).map_err(engine_error)?);
        }
        Ok(Frame::Integer(removed))
    })())
}

/// `EXISTS` (leaves the keys' access stamps alone, as in Redis) and `TOUCH`.
fn count_existing(ctx: &mut Ctx<'_>, args: &[Bytes], touch: bool) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let mut found = 0;
        for key in &args[1..] {
            let ks = ctx.ks();
            let entry = if touch {
                ks.lookup(key, now)
            } else {
                ks.lookup_untouched(key, now)
            };
            found += i64::from(entry.map_err(engine_error)?.is_some());
        }
        Ok(Frame::Integer(found))
    })())
}

fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    count_existing(ctx, args, false)
}

fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    count_existing(ctx, args, true)
}

fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let now = ctx.now_ms;
    match ctx.ks().lookup_untouched(&args[1], now) {
        Ok(Some(entry)) => Frame::Simple(entry.value.type_name()),
        Ok(None) => Frame::Simple("none"),
        Err(err) => engine_error(err),
    }
}

/// The unit and base of an `EXPIRE`-family command.
#[derive(Clone, Copy)]
struct ExpireKind {
    name: &'static str,
    millis: bool,
    absolute: bool,
}

/// `NX` / `XX` / `GT` / `LT`.
#[derive(Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_conditions(args: &[Bytes]) -> Result<Conditions, Frame> {
    let mut c = Conditions::default();
    for arg in args {
        match () {
            _ if is(arg, "nx") => c.nx = true,
            _ if is(arg, "xx") => c.xx = true,
            _ if is(arg, "gt") => c.gt = true,
            _ if is(arg, "lt") => c.lt = true,
            _ => {
                return Err(Frame::error(format!(
                    "ERR Unsupported option {}",
                    super::printable(arg, 128)
                )));
            }
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(Frame::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if c.gt && c.lt {
        return Err(Frame::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(c)
}

fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: ExpireKind) -> Frame {
    reply((|| {
        let when = int_arg(&args[2])?;
        let conditions = parse_conditions(&args[3..])?;
        let invalid = || {
            Frame::error(format!(
                "ERR invalid expire time in '{}' command",
                kind.name
            ))
        };
        let mut at = if kind.millis {
            when
        } else {
            when.checked_mul(1000).ok_or_else(invalid)?
        };
        if !kind.absolute {
            at = at.checked_add(ctx.now_ms as i64).ok_or_else(invalid)?;
        }
        let now = ctx.now_ms;
        let Some(entry) = ctx.ks().lookup(&args[1], now).map_err(engine_error)? else {
            return Ok(Frame::Integer(0));
        };
        let current = entry.expire_at_ms.map(|t| t as i64);
        let refused = (conditions.nx && current.is_some())
            || (conditions.xx && current.is_none())
            || (conditions.gt && current.is_none_or(|cur| at <= cur))
            || (conditions.lt && current.is_some_and(|cur| at >= cur));
        if refused {
            return Ok(Frame::Integer(0));
        }
        if at <= now as i64 {
            crate::command::delete_as_del(ctx, &args[1])?;
        } else {
            ctx.ks()
                .set_expiry(&args[1], Some(at as u64), now)
                .map_err(engine_error)?;
        }
        Ok(Frame::Integer(1))
    })())
}

fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(
        ctx,
        args,
        ExpireKind {
            name: "expire",
            millis: false,
            absolute: false,
        },
    )
}

fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(
        ctx,
        args,
        ExpireKind {
            name: "pexpire",
            millis: true,
            absolute: false,
        },
    )
}

fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(
        ctx,
        args,
        ExpireKind {
            name: "expireat",
            millis: false,
            absolute: true,
        },
    )
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    expire_generic(
        ctx,
        args,
        ExpireKind {
            name: "pexpireat",
            millis: true,
            absolute: true,
        },
    )
}

/// How a TTL query reports its answer.
#[derive(Clone, Copy)]
enum TtlForm {
    RemainingSeconds,
    RemainingMillis,
    AbsoluteSeconds,
    AbsoluteMillis,
}

fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], form: TtlForm) -> Frame {
    let now = ctx.now_ms;
    let entry = match ctx.ks().lookup_untouched(key, now) {
        Ok(Some(entry)) => entry,
        Ok(None) => return Frame::Integer(-2),
        Err(err) => return engine_error(err),
    };
    let Some(at) = entry.expire_at_ms else {
        return Frame::Integer(-1);
    };
    let left = at.saturating_sub(now) as i64;
    Frame::Integer(match form {
        TtlForm::RemainingSeconds => (left + 500) / 1000,
        TtlForm::RemainingMillis => left,
        TtlForm::AbsoluteSeconds => (at / 1000) as i64,
        TtlForm::AbsoluteMillis => at as i64,
    })
}

fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, &args[1], TtlForm::RemainingSeconds)
}

fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, &args[1], TtlForm::RemainingMillis)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, &args[1], TtlForm::AbsoluteSeconds)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ttl_generic(ctx, &args[1], TtlForm::AbsoluteMillis)
}

fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        match ctx.ks().lookup(&args[1], now).map_err(engine_error)? {
            Some(entry) if entry.expire_at_ms.is_some() => {
                ctx.ks()
                    .set_expiry(&args[1], None, now)
                    .map_err(engine_error)?;
                Ok(Frame::Integer(1))
            }
            _ => Ok(Frame::Integer(0)),
        }
    })())
}

/// Moves `src` to `dst`; `Ok(false)` if `nx` and `dst` exists.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Result<bool, Frame> {
    let now = ctx.now_ms;
    let (src, dst) = (&args[1], &args[2]);
    let Some(entry) = ctx.ks().lookup(src, now).map_err(engine_error)? else {
        return Err(Frame::error("ERR no such key"));
    };
    if src == dst {
        return Ok(!nx);
    }
    if nx && ctx.ks().lookup(dst, now).map_err(engine_error)?.is_some() {
        return Ok(false);
    }
    match entry.value {
        Value::Collection(meta) => {
            // Subkeys are addressed by key: the destination needs its own.
            let source = Collection {
                key: src.clone(),
                meta,
                expire_at_ms: entry.expire_at_ms,
            };
            let ks = ctx.ks();
            ks.copy_collection(&source, dst.clone(), entry.expire_at_ms)
                .map_err(engine_error)?;
            ks.remove(src, now).map_err(engine_error)?;
        }
        Value::String(_) => {
            ctx.ks().remove(src, now).map_err(engine_error)?;
            ctx.ks().put(dst.clone(), entry).map_err(engine_error)?;
        }
    }
    Ok(true)
}

fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(rename_generic(ctx, args, false).map(|_| Frame::OK))
}

fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(rename_generic(ctx, args, true).map(|done| Frame::Integer(i64::from(done))))
}

fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let (mut cursor, mut found) = (0, Vec::new());
        loop {
            cursor = ctx
                .ks()
                .scan(cursor, 1024, now, &mut found)
                .map_err(engine_error)?;
            if cursor == 0 {
                break;
            }
        }
        found.retain(|key| glob_match(&args[1], key));
        Ok(Frame::Array(found.into_iter().map(Frame::Bulk).collect()))
    })())
}

fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let cursor = super::members::parse_cursor(&args[1])?;
        let (mut pattern, mut count, mut type_filter) = (None, 10usize, None);
        let mut options = args[2..].chunks(2);
        for option in options.by_ref() {
            let [name, value] = option else {
                return Err(syntax_error());
            };
            if is(name, "match") {
                pattern = Some(value.clone());
            } else if is(name, "count") {
                count = usize::try_from(int_arg(value)?)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(syntax_error)?;
            } else if is(name, "type") {
                type_filter = Some(value.clone());
            } else {
                return Err(syntax_error());
            }
        }
        let now = ctx.now_ms;
        let mut found = Vec::new();
        let next = ctx
            .ks()
            .scan(cursor, count, now, &mut found)
            .map_err(engine_error)?;
        if let Some(pattern) = &pattern {
            found.retain(|key| glob_match(pattern, key));
        }
        if let Some(wanted) = &type_filter {
            let mut kept = Vec::with_capacity(found.len());
            for key in found {
                let entry = ctx.ks().lookup(&key, now).map_err(engine_error)?;
                if entry.is_some_and(|e| is(wanted, e.value.type_name())) {
                    kept.push(key);
                }
            }
            found = kept;
        }
        let keys = found.into_iter().map(Frame::Bulk).collect();
        Ok(Frame::Array(vec![
            Frame::bulk(next.to_string()),
            Frame::Array(keys),
        ]))
    })())
}

fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let now = ctx.now_ms;
    match ctx.ks().random_key(now) {
        Ok(key) => Frame::optional(key),
        Err(err) => engine_error(err),
    }
}
