//! Sorted sets: members ordered by score (`ZADD`, `ZRANGE`, `ZPOPMIN`...).
//!
//! The structure behind leaderboards, feeds, rate-limiter logs and (with
//! [`super::geo`]) proximity search. Each set is a collection with two
//! subkey namespaces, a member → score map and a score-ordered index (see
//! [`store`] for the encoding and what it costs), so on the lsm engine a
//! `ZADD` to a million-member set writes a few small keys and a
//! `ZRANGEBYSCORE` is one range scan.
//!
//! Replies are Redis 7.0's to the byte: scores print as `%.17g`
//! ([`crate::protocol::frame::format_double_reply`]), `WITHSCORES` replies
//! are flat in RESP2 and `[member, score]` pairs in RESP3, and arguments are
//! checked in Redis's order with its error texts ([`parse`]).
//!
//! - [`range`]: `ZRANGE` (by rank, score, lex), its legacy spellings, `ZRANGESTORE`;
//! - [`read`]: `ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT ZRANDMEMBER ZSCAN`;
//! - [`write`]: `ZADD ZINCRBY ZREM ZREMRANGEBY* ZPOPMIN ZPOPMAX ZMPOP`;
//! - [`blocking`]: `BZPOPMIN BZPOPMAX BZMPOP`;
//! - [`algebra`]: `ZUNION ZINTER ZDIFF` (and `*STORE`), `ZINTERCARD`.

mod algebra;
mod blocking;
pub(in crate::command) mod parse;
mod range;
mod read;
pub(super) mod store;
pub(super) mod write;

use bytes::Bytes;

use super::{Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, key_error};
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::Kind;
use store::Item;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("sorted-set");
    let w = WRITE | DENYOOM;
    let one = (1, 1, 1);
    let movable = (0, 0, 0);
    vec![
        s(
            "zadd",
            -4,
            w,
            one,
            "Adds members to a sorted set, or updates their scores.",
            write::zadd,
        ),
        s(
            "zincrby",
            4,
            w,
            one,
            "Increments the score of a member.",
            write::zincrby,
        ),
        s(
            "zrem",
            -3,
            WRITE,
            one,
            "Removes members from a sorted set.",
            write::zrem,
        ),
        s(
            "zcard",
            2,
            READONLY,
            one,
            "Returns the number of members.",
            read::zcard,
        ),
        s(
            "zscore",
            3,
            READONLY,
            one,
            "Returns the score of a member.",
            read::zscore,
        ),
        s(
            "zmscore",
            -3,
            READONLY,
            one,
            "Returns the scores of several members.",
            read::zmscore,
        ),
        s(
            "zrank",
            -3,
            READONLY,
            one,
            "Returns the rank of a member, by ascending score.",
            read::zrank,
        ),
        s(
            "zrevrank",
            -3,
            READONLY,
            one,
            "Returns the rank of a member, by descending score.",
            read::zrevrank,
        ),
        s(
            "zcount",
            4,
            READONLY,
            one,
            "Counts the members within a score range.",
            read::zcount,
        ),
        s(
            "zlexcount",
            4,
            READONLY,
            one,
            "Counts the members within a lex range.",
            read::zlexcount,
        ),
        s(
            "zrange",
            -4,
            READONLY,
            one,
            "Returns members by rank, score or lex range.",
            range::zrange,
        ),
        s(
            "zrangestore",
            -5,
            w,
            (1, 2, 1),
            "Stores a range of members in another key.",
            range::zrangestore,
        ),
        s(
            "zrevrange",
            -4,
            READONLY,
            one,
            "Returns members by rank, highest score first.",
            range::zrevrange,
        ),
        s(
            "zrangebyscore",
            -4,
            READONLY,
            one,
            "Returns members within a score range.",
            range::zrangebyscore,
        ),
        s(
            "zrevrangebyscore",
            -4,
            READONLY,
            one,
            "Returns members within a score range, highest first.",
            range::zrevrangebyscore,
        ),
        s(
            "zrangebylex",
            -4,
            READONLY,
            one,
            "Returns members within a lex range.",
            range::zrangebylex,
        ),
        s(
            "zrevrangebylex",
            -4,
            READONLY,
            one,
            "Returns members within a lex range, in reverse.",
            range::zrevrangebylex,
        ),
        s(
            "zremrangebyrank",
            4,
            WRITE,
            one,
            "Removes the members within a rank range.",
            write::zremrangebyrank,
        ),
        s(
            "zremrangebyscore",
            4,
            WRITE,
            one,
            "Removes the members within a score range.",
            write::zremrangebyscore,
        ),
        s(
            "zremrangebylex",
            4,
            WRITE,
            one,
            "Removes the members within a lex range.",
            write::zremrangebylex,
        ),
        s(
            "zpopmin",
            -2,
            WRITE,
            one,
            "Removes and returns the lowest-scored members.",
            write::zpopmin,
        ),
        s(
            "zpopmax",
            -2,
            WRITE,
            one,
            "Removes and returns the highest-scored members.",
            write::zpopmax,
        ),
        s(
            "zmpop",
            -4,
            WRITE,
            movable,
            "Pops members from the first non-empty sorted set.",
            write::zmpop,
        ),
        s(
            "bzpopmin",
            -3,
            WRITE,
            (1, -2, 1),
            "Pops the lowest-scored member of the first non-empty set, or waits for one.",
            blocking::bzpopmin,
        ),
        s(
            "bzpopmax",
            -3,
            WRITE,
            (1, -2, 1),
            "Pops the highest-scored member of the first non-empty set, or waits for one.",
            blocking::bzpopmax,
        ),
        s(
            "bzmpop",
            -5,
            WRITE,
            movable,
            "Pops members from the first non-empty set of several, or waits.",
            blocking::bzmpop,
        ),
        s(
            "zunion",
            -3,
            READONLY,
            movable,
            "Returns the union of sorted sets.",
            algebra::zunion,
        ),
        s(
            "zinter",
            -3,
            READONLY,
            movable,
            "Returns the intersection of sorted sets.",
            algebra::zinter,
        ),
        s(
            "zdiff",
            -3,
            READONLY,
            movable,
            "Returns the difference of sorted sets.",
            algebra::zdiff,
        ),
        s(
            "zunionstore",
            -4,
            w,
            (1, 1, 1),
            "Stores the union of sorted sets.",
            algebra::zunionstore,
        ),
        s(
            "zinterstore",
            -4,
            w,
            (1, 1, 1),
            "Stores the intersection of sorted sets.",
            algebra::zinterstore,
        ),
        s(
            "zdiffstore",
            -4,
            w,
            (1, 1, 1),
            "Stores the difference of sorted sets.",
            algebra::zdiffstore,
        ),
        s(
            "zintercard",
            -3,
            READONLY,
            movable,
            "Counts the intersection of sorted sets.",
            algebra::zintercard,
        ),
        s(
            "zrandmember",
            -2,
            READONLY,
            one,
            "Returns random members.",
            read::zrandmember,
        ),
        s(
            "zscan",
            -3,
            READONLY,
            one,
            "Iterates over members and scores.",
            read::zscan,
        ),
    ]
}

/// The sorted set at `key` for a read (counts a hit or miss).
pub(super) fn read_zset(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    ctx.ks()
        .read_collection(key, Kind::ZSet, now)
        .map_err(key_error)
}

/// The sorted set at `key` for a write that only changes an existing one.
pub(super) fn existing_zset(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    ctx.ks()
        .existing_collection(key, Kind::ZSet, now)
        .map_err(key_error)
}

/// Writes a set's metadata back (deleting the key if it is now empty).
pub(super) fn save(ctx: &mut Ctx<'_>, c: &Collection) -> Result<(), Frame> {
    ctx.ks()
        .save_collection(c)
        .map(|_| ())
        .map_err(engine_error)
}

/// Replaces `dst` with a sorted set of `items` (distinct members), or
/// deletes it if there are none, as the `*STORE` commands do; returns
/// the new length.
pub(super) fn store_items(ctx: &mut Ctx<'_>, dst: &Bytes, items: &[Item]) -> Result<u64, Frame> {
    if items.is_empty() {
        crate::command::delete_as_del(ctx, dst)?;
        return Ok(0);
    }
    let ks = ctx.ks();
    let mut c = ks
        .create_collection(dst.clone(), Kind::ZSet, None)
        .map_err(engine_error)?;
    for item in items {
        store::put(ks, &mut c, &item.member, None, item.score).map_err(engine_error)?;
    }
    ks.save_collection(&c).map_err(engine_error)?;
    Ok(c.len())
}

/// Members, with their scores if asked: flat in RESP2, `[member, score]`
/// pairs in RESP3 (Redis's `WITHSCORES` shapes).
pub(super) fn items_reply(resp3: bool, items: Vec<Item>, withscores: bool) -> Frame {
    if !withscores {
        return Frame::Array(items.into_iter().map(|i| Frame::Bulk(i.member)).collect());
    }
    if resp3 {
        return Frame::Array(
            items
                .into_iter()
                .map(|i| Frame::Array(vec![Frame::Bulk(i.member), Frame::Double(i.score)]))
                .collect(),
        );
    }
    let mut out = Vec::with_capacity(items.len() * 2);
    for i in items {
        out.push(Frame::Bulk(i.member));
        out.push(Frame::Double(i.score));
    }
    Frame::Array(out)
}

#[cfg(test)]
pub(super) mod tests;
