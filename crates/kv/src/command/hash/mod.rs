//! Hashes: field → value maps (`HSET`, `HGET`, `HINCRBY`, `HSCAN`...), the
//! shape most systems give an object (a user, a session, a product).
//!
//! A hash is a collection (`keyspace::collection`) whose subkeys are the
//! field names and whose subkey values are the field values, so changing one
//! field of a million-field hash writes one subkey and the metadata, and
//! `HGETALL` is a range read. Fields come back in byte order (Redis uses
//! hash-table order; neither is promised to clients).

#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::members::{self, REPEAT_MAX};
use super::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, key_error, reply, syntax_error,
    wrong_arity,
};
use crate::keyspace::collection::Collection;
use crate::long_double::LongDouble;
use crate::pattern::glob_match;
use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;
use crate::value::Kind;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = |name, arity, flags, summary, handler| Spec {
        name,
        arity,
        flags,
        keys: (1, 1, 1),
        group: "hash",
        summary,
        handler,
    };
    let w = WRITE | DENYOOM;
    vec![
        s("hset", -4, w, "Sets fields of a hash.", hset),
        s("hsetnx", 4, w, "Sets a field only if it is absent.", hsetnx),
        s("hmset", -4, w, "Sets fields of a hash (old form).", hmset),
        s("hget", 3, READONLY, "Returns a field's value.", hget),
        s(
            "hmget",
            -3,
            READONLY,
            "Returns several fields' values.",
            hmget,
        ),
        s("hdel", -3, WRITE, "Deletes fields.", hdel),
        s("hlen", 2, READONLY, "Returns the number of fields.", hlen),
        s("hexists", 3, READONLY, "Whether a field exists.", hexists),
        s("hstrlen", 3, READONLY, "Returns a value's length.", hstrlen),
        s(
            "hgetall",
            2,
            READONLY,
            "Returns every field and value.",
            hgetall,
        ),
        s("hkeys", 2, READONLY, "Returns every field.", hkeys),
        s("hvals", 2, READONLY, "Returns every value.", hvals),
        s("hincrby", 4, w, "Adds an integer to a field.", hincrby),
        s(
            "hincrbyfloat",
            4,
            w,
            "Adds a float to a field.",
            hincrbyfloat,
        ),
        s(
            "hscan",
            -3,
            READONLY,
            "Iterates over fields with a cursor.",
            hscan,
        ),
        s(
            "hrandfield",
            -2,
            READONLY,
            "Returns random fields.",
            hrandfield,
        ),
    ]
}

/// The hash at `key` for a read command (`None` if absent).
fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    ctx.ks()
        .read_collection(key, Kind::Hash, now)
        .map_err(key_error)
}

/// Sets field/value pairs, creating the hash if needed; returns how many
/// fields are new.
fn set_pairs(ctx: &mut Ctx<'_>, key: &Bytes, pairs: &[Bytes]) -> Result<i64, Frame> {
    let now = ctx.now_ms;
    let ks = ctx.ks();
    let mut c = ks
        .write_collection(key, Kind::Hash, now)
        .map_err(key_error)?;
    let mut added = 0;
    for pair in pairs.chunks_exact(2) {
        if ks.sub_get(&c, &pair[0]).map_err(engine_error)?.is_none() {
            added += 1;
        }
        ks.sub_put(&c, &pair[0], &pair[1]).map_err(engine_error)?;
    }
    if added > 0 {
        // Only a new field changes the metadata (a new key always has one).
        c.meta.len += added;
        ks.save_collection(&c).map_err(engine_error)?;
    }
    Ok(added as i64)
}

fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() % 2 == 1 {
        return wrong_arity("hset");
    }
    reply(set_pairs(ctx, &args[1], &args[2..]).map(Frame::Integer))
}

fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() % 2 == 1 {
        return wrong_arity("hmset");
    }
    reply(set_pairs(ctx, &args[1], &args[2..]).map(|_| Frame::OK))
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let mut c = ks
            .write_collection(&args[1], Kind::Hash, now)
            .map_err(key_error)?;
        if ks.sub_get(&c, &args[2]).map_err(engine_error)?.is_some() {
            return Ok(Frame::Integer(0));
        }
        ks.sub_put(&c, &args[2], &args[3]).map_err(engine_error)?;
        c.meta.len += 1;
        ks.save_collection(&c).map_err(engine_error)?;
        Ok(Frame::Integer(1))
    })())
}

/// One field's value, if the hash and the field exist.
fn field(ctx: &mut Ctx<'_>, key: &[u8], field: &[u8]) -> Result<Option<Bytes>, Frame> {
    match read(ctx, key)? {
        Some(c) => ctx.ks().sub_get(&c, field).map_err(engine_error),
        None => Ok(None),
    }
}

fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(field(ctx, &args[1], &args[2]).map(Frame::optional))
}

fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let c = read(ctx, &args[1])?;
        let mut values = Vec::with_capacity(args.len() - 2);
        for field in &args[2..] {
            let value = match &c {
                Some(c) => ctx.ks().sub_get(c, field).map_err(engine_error)?,
                None => None,
            };
            values.push(Frame::optional(value));
        }
        Ok(Frame::Array(values))
    })())
}

fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(mut c) = ks
            .existing_collection(&args[1], Kind::Hash, now)
            .map_err(key_error)?
        else {
            return Ok(Frame::Integer(0));
        };
        let mut removed = 0;
        for field in &args[2..] {
            if ks.sub_get(&c, field).map_err(engine_error)?.is_some() {
                ks.sub_remove(&c, field).map_err(engine_error)?;
                removed += 1;
            }
        }
        if removed > 0 {
            c.meta.len = c.meta.len.saturating_sub(removed);
            ks.save_collection(&c).map_err(engine_error)?;
        }
        Ok(Frame::Integer(removed as i64))
    })())
}

fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(read(ctx, &args[1]).map(|c| Frame::Integer(c.map_or(0, |c| c.len() as i64))))
}

fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(field(ctx, &args[1], &args[2]).map(|v| Frame::Integer(i64::from(v.is_some()))))
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(field(ctx, &args[1], &args[2]).map(|v| Frame::Integer(v.map_or(0, |v| v.len() as i64))))
}

/// Every field and value of the hash at `key` (none if absent).
fn everything(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<(Bytes, Bytes)>, Frame> {
    match read(ctx, key)? {
        Some(c) => members::all(ctx.ks(), &c),
        None => Ok(Vec::new()),
    }
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(everything(ctx, &args[1]).map(|items| {
        Frame::Map(
            items
                .into_iter()
                .map(|(f, v)| (Frame::Bulk(f), Frame::Bulk(v)))
                .collect(),
        )
    }))
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(
        everything(ctx, &args[1])
            .map(|items| Frame::Array(items.into_iter().map(|(f, _)| Frame::Bulk(f)).collect())),
    )
}

fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(
        everything(ctx, &args[1])
            .map(|items| Frame::Array(items.into_iter().map(|(_, v)| Frame::Bulk(v)).collect())),
    )
}

/// Replaces one field's value through `update` (given the current value,
/// if any), creating the hash and the field if needed.
fn update_field(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    update: impl FnOnce(Option<&[u8]>) -> Result<(Bytes, Frame), Frame>,
) -> Result<Frame, Frame> {
    let now = ctx.now_ms;
    let ks = ctx.ks();
    let mut c = ks
        .write_collection(&args[1], Kind::Hash, now)
        .map_err(key_error)?;
    let current = ks.sub_get(&c, &args[2]).map_err(engine_error)?;
    let (value, answer) = update(current.as_deref())?;
    ks.sub_put(&c, &args[2], &value).map_err(engine_error)?;
    if current.is_none() {
        c.meta.len += 1;
        ks.save_collection(&c).map_err(engine_error)?;
    }
    Ok(answer)
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let delta = int_arg(&args[3])?;
        update_field(ctx, args, |current| {
            let current = match current {
                Some(text) => parse_i64_strict(text)
                    .ok_or_else(|| Frame::error("ERR hash value is not an integer"))?,
                None => 0,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| Frame::error("ERR increment or decrement would overflow"))?;
            Ok((Bytes::from(next.to_string()), Frame::Integer(next)))
        })
    })())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let delta = LongDouble::parse(&args[3])
            .ok_or_else(|| Frame::error("ERR value is not a valid float"))?;
        if !delta.is_finite() {
            return Err(Frame::error("ERR value is NaN or Infinity"));
        }
        update_field(ctx, args, |current| {
            let current = match current {
                Some(text) => LongDouble::parse(text)
                    .ok_or_else(|| Frame::error("ERR hash value is not a float"))?,
                None => LongDouble::ZERO,
            };
            let next = current.add(delta);
            if !next.is_finite() {
                return Err(Frame::error("ERR increment would produce NaN or Infinity"));
            }
            let text = Bytes::from(next.to_human());
            Ok((text.clone(), Frame::Bulk(text)))
        })
    })())
}

fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let cursor = members::parse_cursor(&args[2])?;
        let Some(c) = read(ctx, &args[1])? else {
            return Ok(members::scan_reply(0, Vec::new()));
        };
        let options = members::parse_scan_options(&args[3..], true)?;
        let (page, next) = members::scan_page(ctx.ks(), &c, cursor, options.count)?;
        let mut items = Vec::with_capacity(page.len() * 2);
        for (f, v) in page {
            if options.pattern.as_ref().is_some_and(|p| !glob_match(p, &f)) {
                continue;
            }
            items.push(Frame::Bulk(f));
            if !options.novalues {
                items.push(Frame::Bulk(v));
            }
        }
        Ok(members::scan_reply(next, items))
    })())
}

fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        if args.len() == 2 {
            let Some(c) = read(ctx, &args[1])? else {
                return Ok(Frame::Null);
            };
            let picked = members::pick_one(ctx.ks(), &c)?;
            return Ok(Frame::optional(picked.map(|(f, _)| f)));
        }
        let count = members::random_count(&args[2])?;
        let withvalues = match &args[3..] {
            [] => false,
            [word] if is(word, "withvalues") => true,
            _ => return Err(syntax_error()),
        };
        if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(members::out_of_range());
        }
        let Some(c) = read(ctx, &args[1])? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let picked = match count {
            0 => Vec::new(),
            1.. => members::pick_distinct(ctx.ks(), &c, count as u64)?,
            _ if count.unsigned_abs() > REPEAT_MAX => return Err(members::out_of_range()),
            _ => members::pick_repeated(ctx.ks(), &c, count.unsigned_abs())?,
        };
        let resp3 = ctx.resp3();
        let mut items = Vec::with_capacity(picked.len() * if withvalues { 2 } else { 1 });
        for (f, v) in picked {
            match (withvalues, resp3) {
                (false, _) => items.push(Frame::Bulk(f)),
                (true, true) => items.push(Frame::Array(vec![Frame::Bulk(f), Frame::Bulk(v)])),
                (true, false) => items.extend([Frame::Bulk(f), Frame::Bulk(v)]),
            }
        }
        Ok(Frame::Array(items))
    })())
}
