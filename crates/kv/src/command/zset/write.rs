//! Sorted-set writes: `ZADD` (and `ZINCRBY`, its `INCR` form), removals by
//! member or range, and pops.

use bytes::Bytes;

use super::parse::{LexRange, ScoreRange, not_float, score_arg};
use super::range::rank_items;
use super::store::{self, Item, Span};
use super::{existing_zset, save};
use crate::command::{Ctx, engine_error, int_arg, is, key_error, reply, syntax_error};
use crate::keyspace::EventNaming;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::Kind;

/// `ZADD`'s condition flags.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::command) struct AddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Add the score to the current one.
    pub incr: bool,
}

/// What one [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Added {
    /// A new member.
    New(f64),
    /// An existing member got this score.
    Updated(f64),
    /// Nothing changed (but the member was processed: its score, for `INCR`).
    Same(f64),
    /// A condition stopped it.
    Skipped,
}

/// Adds or updates one member, with Redis's `zsetAdd` rules; the error is
/// `INCR` producing NaN.
fn add(
    ctx: &mut Ctx<'_>,
    c: &mut Collection,
    member: &[u8],
    score: f64,
    f: AddFlags,
) -> Result<Added, Frame> {
    let ks = ctx.ks();
    let current = store::score(ks, c, member).map_err(engine_error)?;
    let Some(current) = current else {
        if f.xx {
            return Ok(Added::Skipped);
        }
        store::put(ks, c, member, None, score).map_err(engine_error)?;
        return Ok(Added::New(score));
    };
    if f.nx {
        return Ok(Added::Skipped);
    }
    let mut score = score;
    if f.incr {
        score += current;
        if score.is_nan() {
            return Err(Frame::error("ERR resulting score is not a number (NaN)"));
        }
    }
    if (f.lt && score >= current) || (f.gt && score <= current) {
        return Ok(Added::Skipped);
    }
    if score == current {
        return Ok(Added::Same(score));
    }
    store::put(ks, c, member, Some(current), score).map_err(engine_error)?;
    Ok(Added::Updated(score))
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
pub(super) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zadd_generic(ctx, args, AddFlags::default())
}

/// `ZINCRBY key increment member`.
pub(super) fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zadd_generic(
        ctx,
        args,
        AddFlags {
            incr: true,
            ..AddFlags::default()
        },
    )
}

fn zadd_generic(ctx: &mut Ctx<'_>, args: &[Bytes], mut f: AddFlags) -> Frame {
    reply((|| {
        let mut ch = false;
        let mut i = 2;
        while let Some(word) = args.get(i) {
            if is(word, "nx") {
                f.nx = true;
            } else if is(word, "xx") {
                f.xx = true;
            } else if is(word, "ch") {
                ch = true;
            } else if is(word, "incr") {
                f.incr = true;
            } else if is(word, "gt") {
                f.gt = true;
            } else if is(word, "lt") {
                f.lt = true;
            } else {
                break;
            }
            i += 1;
        }
        let pairs = &args[i..];
        if pairs.is_empty() || pairs.len() % 2 == 1 {
            return Err(syntax_error());
        }
        if f.nx && f.xx {
            return Err(Frame::error(
                "ERR XX and NX options at the same time are not compatible",
            ));
        }
        if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
            return Err(Frame::error(
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if f.incr && pairs.len() > 2 {
            return Err(Frame::error(
                "ERR INCR option supports a single increment-element pair",
            ));
        }
        let scores = pairs
            .chunks_exact(2)
            .map(|p| score_arg(&p[0]).ok_or_else(not_float))
            .collect::<Result<Vec<f64>, Frame>>()?;
        let members = pairs.chunks_exact(2).map(|p| &p[1]);
        if f.incr {
            ctx.ks().name_events(EventNaming::Renamed("zincr"));
        }
        add_all(ctx, &args[1], f, ch, scores.into_iter().zip(members))
    })())
}

/// Adds `(score, member)` pairs to the set at `key` (created if absent,
/// unless `XX`), as `ZADD` does after parsing (`GEOADD` comes here too);
/// replies as `ZADD` replies.
pub(in crate::command) fn add_all<'a>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    f: AddFlags,
    ch: bool,
    pairs: impl Iterator<Item = (f64, &'a Bytes)>,
) -> Result<Frame, Frame> {
    let now = ctx.now_ms;
    let mut c = match existing_zset(ctx, key)? {
        Some(c) => c,
        None if f.xx => {
            return Ok(if f.incr {
                Frame::Null
            } else {
                Frame::Integer(0)
            });
        }
        None => ctx
            .ks()
            .write_collection(key, Kind::ZSet, now)
            .map_err(key_error)?,
    };
    let (mut added, mut updated) = (0, 0);
    let mut last = None;
    for (score, member) in pairs {
        match add(ctx, &mut c, member, score, f)? {
            Added::New(s) => {
                added += 1;
                last = Some(s);
            }
            Added::Updated(s) => {
                updated += 1;
                last = Some(s);
            }
            Added::Same(s) => last = Some(s),
            Added::Skipped => {}
        }
    }
    if added + updated > 0 || c.is_empty() {
        save(ctx, &c)?;
    }
    Ok(if f.incr {
        last.map_or(Frame::Null, Frame::Double)
    } else {
        Frame::Integer(if ch { added + updated } else { added })
    })
}

pub(super) fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let Some(mut c) = existing_zset(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let mut removed = 0;
        for member in &args[2..] {
            let ks = ctx.ks();
            if let Some(score) = store::score(ks, &c, member).map_err(engine_error)? {
                store::remove(ks, &mut c, member, score).map_err(engine_error)?;
                removed += 1;
                if c.is_empty() {
                    break;
                }
            }
        }
        if removed > 0 {
            save(ctx, &c)?;
        }
        Ok(Frame::Integer(removed))
    })())
}

/// Removes `items` (members of `c`) and saves the set (nothing is written
/// if there are none, so a `WATCH` on the key is not disturbed).
fn remove_items(ctx: &mut Ctx<'_>, c: &mut Collection, items: &[Item]) -> Result<(), Frame> {
    if items.is_empty() {
        return Ok(());
    }
    let ks = ctx.ks();
    for item in items {
        store::remove(ks, c, &item.member, item.score).map_err(engine_error)?;
    }
    save(ctx, c)
}

/// Finds the members a `ZREMRANGEBY*` removes.
type Select<'a> = &'a dyn Fn(&mut Ctx<'_>, &Collection) -> Result<Vec<Item>, Frame>;

/// The `ZREMRANGEBY*` commands: parse (errors first), then find and remove.
fn remove_range(ctx: &mut Ctx<'_>, key: &[u8], select: Select<'_>) -> Frame {
    reply((|| {
        let Some(mut c) = existing_zset(ctx, key)? else {
            return Ok(Frame::Integer(0));
        };
        let items = select(ctx, &c)?;
        remove_items(ctx, &mut c, &items)?;
        Ok(Frame::Integer(items.len() as i64))
    })())
}

/// Everything `span` holds.
fn all_in(ctx: &mut Ctx<'_>, c: &Collection, span: &Span) -> Result<Vec<Item>, Frame> {
    store::collect(ctx.ks(), c, span, 0, u64::MAX).map_err(engine_error)
}

pub(super) fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (start, stop) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(start), Ok(stop)) => (start, stop),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    remove_range(ctx, &args[1], &|ctx, c| {
        rank_items(ctx.ks(), c, start, stop).map_err(engine_error)
    })
}

pub(super) fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ScoreRange::parse(&args[2], &args[3]) {
        Ok(range) => remove_range(ctx, &args[1], &|ctx, c| {
            all_in(ctx, c, &Span::scores(&range, false))
        }),
        Err(e) => e,
    }
}

pub(super) fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match LexRange::parse(&args[2], &args[3]) {
        Ok(range) => remove_range(ctx, &args[1], &|ctx, c| {
            all_in(ctx, c, &Span::lex(&range, false))
        }),
        Err(e) => e,
    }
}

/// Pops up to `count` members from the low (`max == false`) or high end of
/// the set at `key`; `None` if the key is absent.
pub(in crate::command) fn pop(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    max: bool,
    count: u64,
) -> Result<Option<Vec<Item>>, Frame> {
    let Some(mut c) = existing_zset(ctx, key)? else {
        return Ok(None);
    };
    let items = store::collect(ctx.ks(), &c, &Span::all(max), 0, count).map_err(engine_error)?;
    remove_items(ctx, &mut c, &items)?;
    Ok(Some(items))
}

/// A popped member and score: flat pairs, or `[member, score]` pairs.
pub(in crate::command) fn popped(items: Vec<Item>, nested: bool) -> Vec<Frame> {
    let mut out = Vec::with_capacity(items.len() * 2);
    for item in items {
        let (m, s) = (Frame::Bulk(item.member), Frame::Double(item.score));
        if nested {
            out.push(Frame::Array(vec![m, s]));
        } else {
            out.push(m);
            out.push(s);
        }
    }
    out
}

/// A positive `COUNT` as Redis's `getPositiveLongFromObjectOrReply` reads it.
/// (Redis gives the same error for a negative count and for a non-number.)
pub(in crate::command) fn positive_count(arg: &[u8]) -> Result<u64, Frame> {
    ranged(arg, 0, "ERR value is out of range, must be positive")
}

/// An integer of at least `min`, else the error `msg` (also for a
/// non-number: Redis's `getRangeLongFromObjectOrReply` with a message).
pub(in crate::command) fn ranged(arg: &[u8], min: i64, msg: &str) -> Result<u64, Frame> {
    int_arg(arg)
        .ok()
        .filter(|&n| n >= min)
        .map(|n| n as u64)
        .ok_or_else(|| Frame::error(msg))
}

fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Frame {
    if args.len() > 3 {
        return syntax_error();
    }
    reply((|| {
        let count = args.get(2).map(|a| positive_count(a)).transpose()?;
        let Some(items) = pop(ctx, &args[1], max, count.unwrap_or(1))? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let nested = ctx.resp3() && count.is_some();
        Ok(Frame::Array(popped(items, nested)))
    })())
}

pub(super) fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zpop(ctx, args, false)
}

pub(super) fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    zpop(ctx, args, true)
}

/// The parsed tail of `ZMPOP` / `BZMPOP`: the keys, the end, the count.
pub(in crate::command) struct MpopArgs<'a> {
    /// The keys, in order.
    pub keys: &'a [Bytes],
    /// Pop from the high end.
    pub max: bool,
    /// How many.
    pub count: u64,
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` from `args[at]`.
pub(in crate::command) fn parse_mpop(args: &[Bytes], at: usize) -> Result<MpopArgs<'_>, Frame> {
    let numkeys = ranged(&args[at], 1, "ERR numkeys should be greater than 0")?;
    let where_at = (at as u64 + 1).saturating_add(numkeys);
    if where_at >= args.len() as u64 {
        return Err(syntax_error());
    }
    let where_at = where_at as usize;
    let max = if is(&args[where_at], "min") {
        false
    } else if is(&args[where_at], "max") {
        true
    } else {
        return Err(syntax_error());
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            count = Some(ranged(
                &args[j + 1],
                1,
                "ERR count should be greater than 0",
            )?);
            j += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(MpopArgs {
        keys: &args[at + 1..where_at],
        max,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first non-empty set of `m.keys`: `[key, [[member, score]...]]`,
/// or `None` if every key is absent.
pub(in crate::command) fn mpop(
    ctx: &mut Ctx<'_>,
    m: &MpopArgs<'_>,
) -> Result<Option<Frame>, Frame> {
    let event = if m.max { "zpopmax" } else { "zpopmin" };
    ctx.ks().name_events(EventNaming::Renamed(event));
    for key in m.keys {
        if let Some(items) = pop(ctx, key, m.max, m.count)? {
            return Ok(Some(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Array(popped(items, true)),
            ])));
        }
    }
    Ok(None)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`.
pub(super) fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let m = parse_mpop(args, 1)?;
        Ok(mpop(ctx, &m)?.unwrap_or(Frame::NullArray))
    })())
}
