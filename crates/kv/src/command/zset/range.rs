//! `ZRANGE` in all its forms (by rank, score or lex, reversed, limited),
//! the legacy `ZRANGEBYSCORE` family that are spellings of it, and
//! `ZRANGESTORE`, which stores the same selection instead of replying.
//!
//! One parser follows Redis's `zrangeGenericCommand` argument by argument
//! (so the same bad input meets the same error, in the same order), and
//! one [`Query`] runs every form as a walk over the score index (rank and
//! score ranges) or the member namespace (lex ranges).

use bytes::Bytes;

use super::parse::{LexRange, ScoreRange};
use super::store::{self, Item, Span};
use super::{items_reply, read_zset, store_items};
use crate::command::{Ctx, int_arg, is, reply, syntax_error};
use crate::engine::EngineError;
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;

/// What selects the members.
#[derive(Debug, Clone)]
enum Selector {
    /// `start stop` positions (negative from the end).
    Rank(i64, i64),
    /// A score range.
    Score(ScoreRange),
    /// A lex range.
    Lex(LexRange),
}

/// The range form a command fixes, or `Auto` for `ZRANGE`'s options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Form {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
#[derive(Debug, Clone)]
struct Query {
    selector: Selector,
    reverse: bool,
    offset: i64,
    limit: i64,
    withscores: bool,
}

/// Parses `<src> <min> <max> [options]` starting at `args[src]`, as Redis's
/// `zrangeGenericCommand` does. `direction` is `Some(reverse)` when the
/// command fixes it.
fn parse(
    args: &[Bytes],
    src: usize,
    store: bool,
    mut form: Form,
    mut direction: Option<bool>,
) -> Result<Query, Frame> {
    let (mut withscores, mut offset, mut limit) = (false, 0, -1);
    let fixed_direction = direction.is_some();
    let mut j = src + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let word = &args[j];
        if !store && is(word, "withscores") {
            withscores = true;
        } else if is(word, "limit") && left >= 2 {
            offset = int_arg(&args[j + 1])?;
            limit = int_arg(&args[j + 2])?;
            j += 2;
        } else if !fixed_direction && direction.is_none() && is(word, "rev") {
            direction = Some(true);
        } else if form == Form::Auto && is(word, "bylex") {
            form = Form::Lex;
        } else if form == Form::Auto && is(word, "byscore") {
            form = Form::Score;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    let reverse = direction.unwrap_or(false);
    if form == Form::Auto {
        form = Form::Rank;
    }
    if limit != -1 && form == Form::Rank {
        return Err(Frame::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && form == Form::Lex {
        return Err(Frame::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (&args[src + 1], &args[src + 2]);
    if reverse && form != Form::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let selector = match form {
        Form::Score => Selector::Score(ScoreRange::parse(min, max)?),
        Form::Lex => Selector::Lex(LexRange::parse(min, max)?),
        _ => Selector::Rank(int_arg(min)?, int_arg(max)?),
    };
    Ok(Query {
        selector,
        reverse,
        offset,
        limit,
        withscores,
    })
}

/// Normalizes `start stop` against `len` as Redis does: `None` if empty,
/// else the first position and how many follow.
pub(super) fn rank_span(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    start = start.max(0);
    if start > stop || start >= len {
        return None;
    }
    stop = stop.min(len - 1);
    Some((start as u64, (stop - start + 1) as u64))
}

/// Runs a query on a set.
fn run(ks: &mut Keyspace, c: &Collection, q: &Query) -> Result<Vec<Item>, EngineError> {
    // A negative offset walks off the end in Redis; a negative limit is "all".
    let limit = u64::try_from(q.limit).unwrap_or(u64::MAX);
    match &q.selector {
        Selector::Rank(start, stop) => match rank_span(*start, *stop, c.len()) {
            Some((skip, n)) => store::collect(ks, c, &Span::all(q.reverse), skip, n),
            None => Ok(Vec::new()),
        },
        Selector::Score(range) => {
            let Ok(offset) = u64::try_from(q.offset) else {
                return Ok(Vec::new());
            };
            if offset > 0 && offset >= c.len() {
                return Ok(Vec::new());
            }
            store::collect(ks, c, &Span::scores(range, q.reverse), offset, limit)
        }
        Selector::Lex(range) => {
            let Ok(offset) = u64::try_from(q.offset) else {
                return Ok(Vec::new());
            };
            store::collect(ks, c, &Span::lex(range, q.reverse), offset, limit)
        }
    }
}

/// `ZRANGE` and its legacy spellings: parses from `args[1]` with the given
/// form and direction, and replies with the selection.
pub(super) fn range_reply(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    form: Form,
    direction: Option<bool>,
) -> Frame {
    reply((|| {
        let q = parse(args, 1, false, form, direction)?;
        let Some(c) = read_zset(ctx, &args[1])? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let items = run(ctx.ks(), &c, &q).map_err(crate::command::engine_error)?;
        Ok(items_reply(ctx.resp3(), items, q.withscores))
    })())
}

pub(super) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_reply(ctx, args, Form::Auto, None)
}

pub(super) fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_reply(ctx, args, Form::Rank, Some(true))
}

pub(super) fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_reply(ctx, args, Form::Score, Some(false))
}

pub(super) fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_reply(ctx, args, Form::Score, Some(true))
}

pub(super) fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_reply(ctx, args, Form::Lex, Some(false))
}

pub(super) fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_reply(ctx, args, Form::Lex, Some(true))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`.
pub(super) fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let q = parse(args, 2, true, Form::Auto, None)?;
        let items = match read_zset(ctx, &args[2])? {
            Some(c) => run(ctx.ks(), &c, &q).map_err(crate::command::engine_error)?,
            None => Vec::new(),
        };
        let stored = store_items(ctx, &args[1], &items)?;
        Ok(Frame::Integer(stored as i64))
    })())
}

/// The number of members `ZREMRANGEBYRANK`-style positions select, for
/// write commands that share the normalization.
pub(super) fn rank_items(
    ks: &mut Keyspace,
    c: &Collection,
    start: i64,
    stop: i64,
) -> Result<Vec<Item>, EngineError> {
    match rank_span(start, stop, c.len()) {
        Some((skip, n)) => store::collect(ks, c, &Span::all(false), skip, n),
        None => Ok(Vec::new()),
    }
}
