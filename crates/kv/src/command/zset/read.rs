//! Sorted-set reads that are not ranges: cardinality, scores, ranks,
//! counts, random members and `ZSCAN`.

use bytes::Bytes;

use super::parse::{LexRange, ScoreRange};
use super::store::{self, Item, Span};
use super::{items_reply, read_zset};
use crate::command::members::{self, REPEAT_MAX};
use crate::command::{Ctx, engine_error, is, reply, syntax_error, wrong_arity};
use crate::pattern::glob_match;
use crate::protocol::Frame;
use crate::protocol::frame::format_double_reply;

pub(super) fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(read_zset(ctx, &args[1]).map(|c| Frame::Integer(c.map_or(0, |c| c.len() as i64))))
}

pub(super) fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let Some(c) = read_zset(ctx, &args[1])? else {
            return Ok(Frame::Null);
        };
        let score = store::score(ctx.ks(), &c, &args[2]).map_err(engine_error)?;
        Ok(score.map_or(Frame::Null, Frame::Double))
    })())
}

pub(super) fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let c = read_zset(ctx, &args[1])?;
        let mut out = Vec::with_capacity(args.len() - 2);
        for member in &args[2..] {
            let score = match &c {
                Some(c) => store::score(ctx.ks(), c, member).map_err(engine_error)?,
                None => None,
            };
            out.push(score.map_or(Frame::Null, Frame::Double));
        }
        Ok(Frame::Array(out))
    })())
}

/// `ZRANK` / `ZREVRANK key member [WITHSCORE]` (`WITHSCORE` is Redis 7.2's).
fn rank(ctx: &mut Ctx<'_>, args: &[Bytes], reverse: bool) -> Frame {
    if args.len() > 4 {
        return wrong_arity(if reverse { "zrevrank" } else { "zrank" });
    }
    reply((|| {
        let withscore = match args.get(3) {
            Some(word) if is(word, "withscore") => true,
            Some(_) => return Err(syntax_error()),
            None => false,
        };
        let null = if withscore {
            Frame::NullArray
        } else {
            Frame::Null
        };
        let Some(c) = read_zset(ctx, &args[1])? else {
            return Ok(null);
        };
        let found = store::rank(ctx.ks(), &c, &args[2], reverse).map_err(engine_error)?;
        Ok(match found {
            None => null,
            Some((rank, _)) if !withscore => Frame::Integer(rank as i64),
            Some((rank, score)) => {
                Frame::Array(vec![Frame::Integer(rank as i64), Frame::Double(score)])
            }
        })
    })())
}

pub(super) fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    rank(ctx, args, false)
}

pub(super) fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    rank(ctx, args, true)
}

pub(super) fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let range = ScoreRange::parse(&args[2], &args[3])?;
        count(ctx, &args[1], &Span::scores(&range, false))
    })())
}

pub(super) fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let range = LexRange::parse(&args[2], &args[3])?;
        count(ctx, &args[1], &Span::lex(&range, false))
    })())
}

fn count(ctx: &mut Ctx<'_>, key: &[u8], span: &Span) -> Result<Frame, Frame> {
    let Some(c) = read_zset(ctx, key)? else {
        return Ok(Frame::Integer(0));
    };
    let n = store::count(ctx.ks(), &c, span).map_err(engine_error)?;
    Ok(Frame::Integer(n as i64))
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`. Members are picked by rank, so
/// one call walks the set once (O(n)); a count beyond
/// [`members::REPEAT_MAX`] is refused as for `SRANDMEMBER` (Redis would
/// build a reply of any size a client asks for).
pub(super) fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let Some(count_arg) = args.get(2) else {
            let Some(c) = read_zset(ctx, &args[1])? else {
                return Ok(Frame::Null);
            };
            let pick = fastrand::u64(..c.len().max(1));
            let items =
                store::collect(ctx.ks(), &c, &Span::all(false), pick, 1).map_err(engine_error)?;
            return Ok(items
                .into_iter()
                .next()
                .map_or(Frame::Null, |i| Frame::Bulk(i.member)));
        };
        let n = members::random_count(count_arg)?;
        if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
            return Err(syntax_error());
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Err(Frame::error("ERR value is out of range"));
        }
        let Some(c) = read_zset(ctx, &args[1])? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let len = c.len();
        let wanted = n.unsigned_abs();
        if n == 0 {
            return Ok(Frame::Array(Vec::new()));
        }
        if n > 0 && wanted >= len {
            // The whole set, highest score first (Redis iterates sets
            // backwards for this, see its `zuiInitIterator`).
            let all =
                store::collect(ctx.ks(), &c, &Span::all(true), 0, len).map_err(engine_error)?;
            return Ok(items_reply(ctx.resp3(), all, withscores));
        }
        if wanted > REPEAT_MAX {
            return Err(members::out_of_range());
        }
        // Ranks to pick: with repeats for a negative count, distinct otherwise.
        let mut ranks: Vec<u64> = if n < 0 {
            (0..wanted).map(|_| fastrand::u64(..len)).collect()
        } else {
            distinct_ranks(wanted, len)
        };
        let mut order: Vec<usize> = (0..ranks.len()).collect();
        order.sort_by_key(|&i| ranks[i]);
        let mut sorted: Vec<u64> = order.iter().map(|&i| ranks[i]).collect();
        sorted.dedup();
        let picked = pick_ranks(ctx, &c, &sorted)?;
        // Each requested rank's item, in the (random) order they were drawn.
        let mut items = Vec::with_capacity(ranks.len());
        for r in ranks.drain(..) {
            let at = sorted.partition_point(|&x| x < r);
            items.push(picked[at].clone());
        }
        if n > 0 {
            fastrand::shuffle(&mut items);
        }
        Ok(items_reply(ctx.resp3(), items, withscores))
    })())
}

/// `k` distinct ranks below `len` (Floyd's sampling, O(k) memory).
fn distinct_ranks(k: u64, len: u64) -> Vec<u64> {
    let mut chosen = std::collections::HashSet::with_capacity(k as usize);
    for j in len - k..len {
        let t = fastrand::u64(..=j);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// The items at the given ascending, distinct ranks, in one walk.
fn pick_ranks(
    ctx: &mut Ctx<'_>,
    c: &crate::keyspace::collection::Collection,
    ranks: &[u64],
) -> Result<Vec<Item>, Frame> {
    let mut out = Vec::with_capacity(ranks.len());
    let mut position = 0u64;
    let mut next = 0usize;
    store::walk(ctx.ks(), c, &Span::all(false), 0, &mut |item| {
        if ranks.get(next) == Some(&position) {
            out.push(item);
            next += 1;
        }
        position += 1;
        next < ranks.len()
    })
    .map_err(engine_error)?;
    Ok(out)
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: the shared scan
/// cursors (`command::members`) over the score index, so a small set comes
/// back whole and in score order, as from Redis.
pub(super) fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let cursor = members::parse_cursor(&args[2])?;
        let Some(c) = read_zset(ctx, &args[1])? else {
            return Ok(members::scan_reply(0, Vec::new()));
        };
        let options = members::parse_scan_options(&args[3..], false)?;
        let (page, next) =
            members::scan_page_within(ctx.ks(), &c, &[store::SCORES], cursor, options.count)?;
        let mut flat = Vec::with_capacity(page.len() * 2);
        for (sub, value) in &page {
            let item = Item::from_subkey(sub, value);
            if options
                .pattern
                .as_ref()
                .is_some_and(|p| !glob_match(p, &item.member))
            {
                continue;
            }
            flat.push(Frame::Bulk(item.member));
            flat.push(Frame::bulk(format_double_reply(item.score)));
        }
        Ok(members::scan_reply(next, flat))
    })())
}
