//! Set algebra over sorted sets (and plain sets, whose members count with
//! score 1): `ZUNION`, `ZINTER`, `ZDIFF`, their `*STORE` forms and
//! `ZINTERCARD`, following Redis's `zunionInterDiffGenericCommand`: the
//! same argument checks in the same order, inputs visited smallest first
//! (so a sum of three scores is added in Redis's order and rounds the
//! same), `inf - inf` and `0 * inf` counted as 0, and the result ordered by
//! score, then member.
//!
//! A plain set's members are read as its subkeys (the set module stores
//! one subkey per member); a sorted set's through [`store`].

use std::collections::HashMap;

use bytes::Bytes;

use super::parse::score_arg;
use super::store::{self, Item, Span};
use super::write::ranged;
use super::{items_reply, store_items};
use crate::command::{Ctx, engine_error, int_arg, is, reply, syntax_error, wrong_type};
use crate::engine::EngineError;
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::{Kind, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input: a sorted set, a plain set, or nothing (an absent key).
struct Source {
    key: Bytes,
    coll: Option<Collection>,
    weight: f64,
}

impl Source {
    fn len(&self) -> u64 {
        self.coll.as_ref().map_or(0, Collection::len)
    }

    fn is_plain_set(&self) -> bool {
        self.coll.as_ref().is_some_and(|c| c.meta.kind == Kind::Set)
    }

    /// Every member with its (unweighted) score.
    fn items(&self, ks: &mut Keyspace) -> Result<Vec<Item>, EngineError> {
        let Some(c) = &self.coll else {
            return Ok(Vec::new());
        };
        if !self.is_plain_set() {
            return store::collect(ks, c, &Span::all(false), 0, u64::MAX);
        }
        let mut out = Vec::new();
        store::walk_subkeys(ks, c, &Span::everything(), &mut |sub, _| {
            out.push(Item {
                member: sub.clone(),
                score: 1.0,
            });
            true
        })?;
        Ok(out)
    }

    /// The member's (unweighted) score, if present.
    fn find(&self, ks: &mut Keyspace, member: &[u8]) -> Result<Option<f64>, EngineError> {
        match &self.coll {
            None => Ok(None),
            Some(c) if self.is_plain_set() => Ok(ks.sub_get(c, member)?.map(|_| 1.0)),
            Some(c) => store::score(ks, c, member),
        }
    }
}

/// Redis's `zunionInterAggregate`.
fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = if value < *target { value } else { *target },
        Aggregate::Max => *target = if value > *target { value } else { *target },
    }
}

/// A weighted score, with `0 * inf` counted as 0.
fn weighted(weight: f64, score: f64) -> f64 {
    let w = weight * score;
    if w.is_nan() { 0.0 } else { w }
}

/// The sorted set or set at `key`, or `None`; `WRONGTYPE` for other types.
fn source(ctx: &mut Ctx<'_>, key: &Bytes) -> Result<Option<Collection>, Frame> {
    let now = ctx.now_ms;
    match ctx.ks().get(key, now).map_err(engine_error)? {
        None => Ok(None),
        Some(entry) => match entry.value {
            Value::Collection(meta) if matches!(meta.kind, Kind::ZSet | Kind::Set) => {
                Ok(Some(Collection {
                    key: key.clone(),
                    meta,
                    expire_at_ms: entry.expire_at_ms,
                }))
            }
            _ => Err(wrong_type()),
        },
    }
}

/// What the command does with the result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    Reply,
    Store,
    Cardinality,
}

fn generic(ctx: &mut Ctx<'_>, args: &[Bytes], numkeys_at: usize, op: Op, out: Output) -> Frame {
    reply((|| {
        let name = args[0].to_ascii_lowercase();
        let setnum = int_arg(&args[numkeys_at])?;
        if setnum < 1 {
            return Err(Frame::error(format!(
                "ERR at least 1 input key is needed for '{}' command",
                String::from_utf8_lossy(&name)
            )));
        }
        if setnum as u64 > (args.len() - numkeys_at - 1) as u64 {
            return Err(syntax_error());
        }
        let keys = &args[numkeys_at + 1..numkeys_at + 1 + setnum as usize];
        let mut srcs = Vec::with_capacity(keys.len());
        for key in keys {
            srcs.push(Source {
                key: key.clone(),
                coll: source(ctx, key)?,
                weight: 1.0,
            });
        }
        let (mut how, mut withscores, mut limit) = (Aggregate::Sum, false, 0u64);
        let mut j = numkeys_at + 1 + keys.len();
        while j < args.len() {
            let remaining = args.len() - j;
            let word = &args[j];
            let algebra = op != Op::Diff && out != Output::Cardinality;
            if algebra && remaining > keys.len() && is(word, "weights") {
                for (i, src) in srcs.iter_mut().enumerate() {
                    src.weight = score_arg(&args[j + 1 + i])
                        .ok_or_else(|| Frame::error("ERR weight value is not a float"))?;
                }
                j += 1 + keys.len();
            } else if algebra && remaining >= 2 && is(word, "aggregate") {
                let value = &args[j + 1];
                how = if is(value, "sum") {
                    Aggregate::Sum
                } else if is(value, "min") {
                    Aggregate::Min
                } else if is(value, "max") {
                    Aggregate::Max
                } else {
                    return Err(syntax_error());
                };
                j += 2;
            } else if out == Output::Reply && is(word, "withscores") {
                withscores = true;
                j += 1;
            } else if out == Output::Cardinality && remaining >= 2 && is(word, "limit") {
                limit = ranged(&args[j + 1], 0, "ERR LIMIT can't be negative")?;
                j += 2;
            } else {
                return Err(syntax_error());
            }
        }
        if op != Op::Diff {
            // Smallest first (a stable sort, like glibc's qsort here).
            srcs.sort_by_key(Source::len);
        }
        let ks = ctx.ks();
        let result = match op {
            Op::Inter => inter(ks, &srcs, how, out == Output::Cardinality, limit),
            Op::Union => union(ks, &srcs, how),
            Op::Diff => diff(ks, &srcs),
        }
        .map_err(engine_error)?;
        let mut items = match result {
            Outcome::Count(n) => return Ok(Frame::Integer(n as i64)),
            Outcome::Items(items) => items,
        };
        items.sort_by(|a, b| {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.member.cmp(&b.member))
        });
        if out == Output::Store {
            let stored = store_items(ctx, &args[1], &items)?;
            return Ok(Frame::Integer(stored as i64));
        }
        Ok(items_reply(ctx.resp3(), items, withscores))
    })())
}

enum Outcome {
    Items(Vec<Item>),
    Count(u64),
}

fn inter(
    ks: &mut Keyspace,
    srcs: &[Source],
    how: Aggregate,
    count_only: bool,
    limit: u64,
) -> Result<Outcome, EngineError> {
    let mut found = Vec::new();
    let mut count = 0u64;
    if srcs[0].len() > 0 {
        'members: for item in srcs[0].items(ks)? {
            let mut score = weighted(srcs[0].weight, item.score);
            for src in &srcs[1..] {
                match src.find(ks, &item.member)? {
                    // Redis zeroes a NaN product only for the first input's
                    // score: here it reaches the aggregate (MIN/MAX ignore it).
                    Some(s) => aggregate(&mut score, src.weight * s, how),
                    None => continue 'members,
                }
            }
            if count_only {
                count += 1;
                if limit > 0 && count >= limit {
                    break;
                }
            } else {
                found.push(Item {
                    member: item.member,
                    score,
                });
            }
        }
    }
    Ok(if count_only {
        Outcome::Count(count)
    } else {
        Outcome::Items(found)
    })
}

fn union(ks: &mut Keyspace, srcs: &[Source], how: Aggregate) -> Result<Outcome, EngineError> {
    let mut acc: HashMap<Bytes, f64> = HashMap::new();
    for src in srcs {
        for item in src.items(ks)? {
            let score = weighted(src.weight, item.score);
            acc.entry(item.member)
                .and_modify(|t| aggregate(t, score, how))
                .or_insert(score);
        }
    }
    Ok(Outcome::Items(
        acc.into_iter()
            .map(|(member, score)| Item { member, score })
            .collect(),
    ))
}

fn diff(ks: &mut Keyspace, srcs: &[Source]) -> Result<Outcome, EngineError> {
    let first = &srcs[0];
    if first.len() == 0
        || srcs[1..]
            .iter()
            .any(|s| s.coll.is_some() && s.key == first.key)
    {
        return Ok(Outcome::Items(Vec::new()));
    }
    let mut out = Vec::new();
    'members: for item in first.items(ks)? {
        for src in &srcs[1..] {
            if src.find(ks, &item.member)?.is_some() {
                continue 'members;
            }
        }
        out.push(item);
    }
    Ok(Outcome::Items(out))
}

pub(super) fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 1, Op::Union, Output::Reply)
}

pub(super) fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 1, Op::Inter, Output::Reply)
}

pub(super) fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 1, Op::Diff, Output::Reply)
}

pub(super) fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 2, Op::Union, Output::Store)
}

pub(super) fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 2, Op::Inter, Output::Store)
}

pub(super) fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 2, Op::Diff, Output::Store)
}

pub(super) fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    generic(ctx, args, 1, Op::Inter, Output::Cardinality)
}
