//! Pushes and pops: `LPUSH`/`RPUSH` (and `X` forms), `LPOP`/`RPOP` with a
//! count, `LMOVE`/`RPOPLPUSH` and `LMPOP`.

use bytes::Bytes;

use super::{End, existing_list, pop, pop_one, push, save, write_list};
use crate::command::{Ctx, raise_event, reply, syntax_error, wrong_arity, wrong_type};
use crate::config::NotifyFlags;
use crate::keyspace::EventNaming;
use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;

/// `[LR]PUSH[X] key element...`: pushes each element in turn; replies the
/// new length (`0` for an `X` form on a missing key).
fn push_all(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, only_existing: bool) -> Frame {
    reply((|| {
        let mut list = if only_existing {
            match existing_list(ctx, &args[1])? {
                Some(list) => list,
                None => return Ok(Frame::Integer(0)),
            }
        } else {
            write_list(ctx, &args[1])?
        };
        for value in &args[2..] {
            push(ctx, &mut list, end, value)?;
        }
        save(ctx, &mut list)?;
        Ok(Frame::Integer(list.len() as i64))
    })())
}

pub(super) fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_all(ctx, args, End::Left, false)
}

pub(super) fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_all(ctx, args, End::Right, false)
}

pub(super) fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_all(ctx, args, End::Left, true)
}

pub(super) fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push_all(ctx, args, End::Right, true)
}

/// Redis's "positive" count (`LPOP key count`): `msg` for anything that is
/// not an integer >= 0.
pub(super) fn positive(arg: &[u8], msg: &str) -> Result<u64, Frame> {
    match parse_i64_strict(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(Frame::error(format!("ERR {msg}"))),
    }
}

/// `LPOP`/`RPOP key [count]`.
fn pop_command(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> Frame {
    reply((|| {
        if args.len() > 3 {
            return Err(wrong_arity(if end == End::Left { "lpop" } else { "rpop" }));
        }
        let count = match args.get(2) {
            Some(arg) => Some(positive(arg, "value is out of range, must be positive")?),
            None => None,
        };
        let Some(mut list) = existing_list(ctx, &args[1])? else {
            return Ok(if count.is_some() {
                Frame::NullArray
            } else {
                Frame::Null
            });
        };
        let reply = match count {
            Some(count) => {
                let popped = pop(ctx, &mut list, end, count)?;
                Frame::Array(popped.into_iter().map(Frame::Bulk).collect())
            }
            None => Frame::optional(pop_one(ctx, &mut list, end)?),
        };
        save(ctx, &mut list)?;
        Ok(reply)
    })())
}

pub(super) fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    pop_command(ctx, args, End::Left)
}

pub(super) fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    pop_command(ctx, args, End::Right)
}

/// Moves one element from `from` of `src` to `to` of `dst`; `None` if `src`
/// is absent. Checks `dst`'s type before popping (as Redis does), and
/// treats `src == dst` as a rotation of one list.
pub(super) fn move_one(
    ctx: &mut Ctx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from: End,
    to: End,
) -> Result<Option<Bytes>, Frame> {
    let Some(mut source) = existing_list(ctx, src)? else {
        return Ok(None);
    };
    if src != dst {
        let now = ctx.now_ms;
        let found = ctx
            .ks()
            .lookup(dst, now)
            .map_err(crate::command::engine_error)?;
        if found.is_some_and(|entry| {
            entry
                .meta()
                .is_none_or(|m| m.kind != crate::value::Kind::List)
        }) {
            return Err(wrong_type());
        }
    }
    let Some(value) = pop_one(ctx, &mut source, from)? else {
        return Ok(None);
    };
    // Redis's events: the push on the destination, the pop on the source,
    // then `del` if that emptied the source (saving it deletes it).
    let pushed = if to == End::Left { "lpush" } else { "rpush" };
    let popped = if from == End::Left { "lpop" } else { "rpop" };
    if src != dst {
        let mut target = write_list(ctx, dst)?;
        push(ctx, &mut target, to, &value)?;
        save(ctx, &mut target)?;
    } else {
        push(ctx, &mut source, to, &value)?;
    }
    raise_event(ctx, NotifyFlags::LIST, pushed, dst);
    raise_event(ctx, NotifyFlags::LIST, popped, src);
    save(ctx, &mut source)?;
    Ok(Some(value))
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`.
pub(super) fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (from, to) = (End::parse(&args[3])?, End::parse(&args[4])?);
        Ok(Frame::optional(move_one(
            ctx, &args[1], &args[2], from, to,
        )?))
    })())
}

/// `RPOPLPUSH source destination`.
pub(super) fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(move_one(ctx, &args[1], &args[2], End::Right, End::Left).map(Frame::optional))
}

/// What `[B]LMPOP` asks for once parsed.
pub(super) struct Mpop<'a> {
    /// The keys, in order.
    pub(super) keys: &'a [Bytes],
    /// Which end to pop from.
    pub(super) end: End,
    /// Most elements to pop.
    pub(super) count: u64,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT count]` (`args` starts at numkeys).
pub(super) fn parse_mpop(args: &[Bytes]) -> Result<Mpop<'_>, Frame> {
    let numkeys = match parse_i64_strict(&args[0]) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(Frame::error("ERR numkeys should be greater than 0")),
    };
    // numkeys, the keys, then LEFT|RIGHT.
    if numkeys.saturating_add(2) > args.len() as u64 {
        return Err(syntax_error());
    }
    let numkeys = numkeys as usize;
    let end = End::parse(&args[numkeys + 1])?;
    let mut count = None;
    let mut rest = args[numkeys + 2..].iter();
    while let Some(opt) = rest.next() {
        match rest.as_slice().first() {
            Some(arg) if count.is_none() && crate::command::is(opt, "count") => {
                rest.next();
                count = Some(match parse_i64_strict(arg) {
                    Some(n) if n > 0 => n as u64,
                    _ => return Err(Frame::error("ERR count should be greater than 0")),
                });
            }
            _ => return Err(syntax_error()),
        }
    }
    Ok(Mpop {
        keys: &args[1..=numkeys],
        end,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first non-empty list of `mpop.keys`: `[key, [elements]]`,
/// or `None` if all are empty. With `skip_wrong_type` a key of another type
/// counts as empty (a woken blocked client, as Redis 7.0 serves it).
pub(super) fn mpop(
    ctx: &mut Ctx<'_>,
    mpop: &Mpop<'_>,
    skip_wrong_type: bool,
) -> Result<Option<Frame>, Frame> {
    for key in mpop.keys {
        let Some(mut list) = (match existing_list(ctx, key) {
            Err(err) if skip_wrong_type && err == wrong_type() => None,
            found => found?,
        }) else {
            continue;
        };
        let popped = pop(ctx, &mut list, mpop.end, mpop.count)?;
        let event = if mpop.end == End::Left {
            "lpop"
        } else {
            "rpop"
        };
        ctx.ks().name_events(EventNaming::Renamed(event));
        save(ctx, &mut list)?;
        return Ok(Some(Frame::Array(vec![
            Frame::Bulk(key.clone()),
            Frame::Array(popped.into_iter().map(Frame::Bulk).collect()),
        ])));
    }
    Ok(None)
}

/// `LMPOP numkeys key... LEFT|RIGHT [COUNT count]`.
pub(super) fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let parsed = parse_mpop(&args[1..])?;
        Ok(mpop(ctx, &parsed, false)?.unwrap_or(Frame::NullArray))
    })())
}
