//! Sets: unordered collections of unique members (`SADD`, `SISMEMBER`,
//! `SPOP`, the algebra in [`algebra`]...): tags, followers, "who has seen
//! this", the random draw of a lottery.
//!
//! A set is a collection (`keyspace::collection`) whose subkeys are its
//! members, each with an empty value, so membership is one point read and
//! `SMEMBERS` a range read. Members come back in byte order (Redis uses
//! hash-table order; neither is promised to clients).

mod algebra;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::members::{self, REPEAT_MAX};
use super::{Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, key_error, reply, syntax_error};
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;
use crate::value::Kind;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("set");
    let one = (1, 1, 1);
    let mut specs = vec![
        s("sadd", -3, WRITE | DENYOOM, one, "Adds members.", sadd),
        s("srem", -3, WRITE, one, "Removes members.", srem),
        s(
            "smembers",
            2,
            READONLY,
            one,
            "Returns every member.",
            smembers,
        ),
        s(
            "sismember",
            3,
            READONLY,
            one,
            "Whether a value is a member.",
            sismember,
        ),
        s(
            "smismember",
            -3,
            READONLY,
            one,
            "Whether each value is a member.",
            smismember,
        ),
        s(
            "scard",
            2,
            READONLY,
            one,
            "Returns the number of members.",
            scard,
        ),
        s(
            "spop",
            -2,
            WRITE,
            one,
            "Removes and returns random members.",
            spop,
        ),
        s(
            "srandmember",
            -2,
            READONLY,
            one,
            "Returns random members.",
            srandmember,
        ),
        s(
            "smove",
            4,
            WRITE,
            (1, 2, 1),
            "Moves a member to another set.",
            smove,
        ),
    ];
    specs.extend(algebra::specs());
    specs
}

/// The set at `key` for a read command (`None` if absent).
fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    ctx.ks()
        .read_collection(key, Kind::Set, now)
        .map_err(key_error)
}

/// The set at `key` for a write that needs it present (`None` if absent).
fn existing(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    ctx.ks()
        .existing_collection(key, Kind::Set, now)
        .map_err(key_error)
}

/// Whether `member` is in the set `c`.
fn contains(ctx: &mut Ctx<'_>, c: &Collection, member: &[u8]) -> Result<bool, Frame> {
    Ok(ctx.ks().sub_get(c, member).map_err(engine_error)?.is_some())
}

/// Adds `member` to `c` if absent; returns whether it was added (the
/// caller saves `c`).
fn add(ctx: &mut Ctx<'_>, c: &mut Collection, member: &[u8]) -> Result<bool, Frame> {
    if contains(ctx, c, member)? {
        return Ok(false);
    }
    ctx.ks().sub_put(c, member, b"").map_err(engine_error)?;
    c.meta.len += 1;
    Ok(true)
}

/// Removes `member` from `c` if present; returns whether it was (the caller
/// saves `c`).
fn remove(ctx: &mut Ctx<'_>, c: &mut Collection, member: &[u8]) -> Result<bool, Frame> {
    if !contains(ctx, c, member)? {
        return Ok(false);
    }
    ctx.ks().sub_remove(c, member).map_err(engine_error)?;
    c.meta.len = c.meta.len.saturating_sub(1);
    Ok(true)
}

fn save(ctx: &mut Ctx<'_>, c: &Collection) -> Result<(), Frame> {
    ctx.ks().save_collection(c).map_err(engine_error)?;
    Ok(())
}

fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let mut c = ctx
            .ks()
            .write_collection(&args[1], Kind::Set, now)
            .map_err(key_error)?;
        let mut added = 0;
        for member in &args[2..] {
            added += i64::from(add(ctx, &mut c, member)?);
        }
        if added > 0 {
            // Members already there change nothing (not even for WATCH).
            save(ctx, &c)?;
        }
        Ok(Frame::Integer(added))
    })())
}

fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let Some(mut c) = existing(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let mut removed = 0;
        for member in &args[2..] {
            removed += i64::from(remove(ctx, &mut c, member)?);
        }
        if removed > 0 {
            save(ctx, &c)?;
        }
        Ok(Frame::Integer(removed))
    })())
}

/// Members as bulk strings.
fn bulks(items: Vec<(Bytes, Bytes)>) -> Vec<Frame> {
    items.into_iter().map(|(m, _)| Frame::Bulk(m)).collect()
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let items = match read(ctx, &args[1])? {
            Some(c) => members::all(ctx.ks(), &c)?,
            None => Vec::new(),
        };
        Ok(Frame::Set(bulks(items)))
    })())
}

fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let found = match read(ctx, &args[1])? {
            Some(c) => contains(ctx, &c, &args[2])?,
            None => false,
        };
        Ok(Frame::Integer(i64::from(found)))
    })())
}

fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let c = read(ctx, &args[1])?;
        let mut found = Vec::with_capacity(args.len() - 2);
        for member in &args[2..] {
            let here = match &c {
                Some(c) => contains(ctx, c, member)?,
                None => false,
            };
            found.push(Frame::Integer(i64::from(here)));
        }
        Ok(Frame::Array(found))
    })())
}

fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(read(ctx, &args[1]).map(|c| Frame::Integer(c.map_or(0, |c| c.len() as i64))))
}

fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let count = match &args[2..] {
            [] => None,
            [count] => Some(
                parse_i64_strict(count)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| Frame::error("ERR value is out of range, must be positive"))?,
            ),
            _ => return Err(syntax_error()),
        };
        let Some(mut c) = existing(ctx, &args[1])? else {
            return Ok(match count {
                None => Frame::Null,
                Some(_) => Frame::Set(Vec::new()),
            });
        };
        let Some(count) = count else {
            let picked = members::pick_one(ctx.ks(), &c)?;
            if let Some((member, _)) = &picked {
                remove(ctx, &mut c, member)?;
                save(ctx, &c)?;
            }
            return Ok(Frame::optional(picked.map(|(m, _)| m)));
        };
        if count == 0 {
            return Ok(Frame::Set(Vec::new()));
        }
        let picked = members::pick_distinct(ctx.ks(), &c, count)?;
        if picked.len() as u64 >= c.len() {
            // All of it: saving it empty deletes the key, and with it every
            // member at once.
            c.meta.len = 0;
            save(ctx, &c)?;
        } else {
            for (member, _) in &picked {
                ctx.ks().sub_remove(&c, member).map_err(engine_error)?;
            }
            c.meta.len -= picked.len() as u64;
            save(ctx, &c)?;
        }
        Ok(Frame::Set(bulks(picked)))
    })())
}

fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let count = match &args[2..] {
            [] => None,
            [count] => Some(members::random_count(count)?),
            _ => return Err(syntax_error()),
        };
        let Some(c) = read(ctx, &args[1])? else {
            return Ok(match count {
                None => Frame::Null,
                Some(_) => Frame::Array(Vec::new()),
            });
        };
        let picked = match count {
            None => {
                let picked = members::pick_one(ctx.ks(), &c)?;
                return Ok(Frame::optional(picked.map(|(m, _)| m)));
            }
            Some(0) => Vec::new(),
            Some(n @ 1..) => members::pick_distinct(ctx.ks(), &c, n as u64)?,
            Some(n) if n.unsigned_abs() > REPEAT_MAX => return Err(members::out_of_range()),
            Some(n) => members::pick_repeated(ctx.ks(), &c, n.unsigned_abs())?,
        };
        Ok(Frame::Array(bulks(picked)))
    })())
}

fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (member, same) = (&args[3], args[1] == args[2]);
        let Some(mut src) = existing(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let dst = existing(ctx, &args[2])?;
        if same {
            return Ok(Frame::Integer(i64::from(contains(ctx, &src, member)?)));
        }
        if !remove(ctx, &mut src, member)? {
            return Ok(Frame::Integer(0));
        }
        // Redis's events: `srem`, `del` if the source is now empty, `sadd`.
        let set = crate::config::NotifyFlags::SET;
        crate::command::raise_event(ctx, set, "srem", &args[1]);
        save(ctx, &src)?;
        let mut dst = match dst {
            Some(dst) => dst,
            None => {
                let now = ctx.now_ms;
                ctx.ks()
                    .write_collection(&args[2], Kind::Set, now)
                    .map_err(key_error)?
            }
        };
        if add(ctx, &mut dst, member)? {
            save(ctx, &dst)?;
            crate::command::raise_event(ctx, set, "sadd", &args[2]);
        }
        Ok(Frame::Integer(1))
    })())
}
