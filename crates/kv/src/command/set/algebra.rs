//! Set algebra and iteration: `SINTER`, `SUNION`, `SDIFF`, their `*STORE`
//! forms, `SINTERCARD` and `SSCAN`.
//!
//! Every source key is type-checked before any work (a `WRONGTYPE` anywhere
//! fails the command, as in Redis). An intersection walks the smallest set a
//! page at a time and probes the others, a difference walks the first set;
//! both hold only the result. A union holds the result in a sorted set.
//! The `*STORE` forms compute the whole result before replacing the
//! destination, which may be one of the sources.

use std::collections::BTreeSet;
use std::ops::Bound;

use bytes::Bytes;

use super::{read, save};
use crate::command::members::{self, for_each_page};
use crate::command::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, reply, syntax_error,
};
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;
use crate::pattern::glob_match;
use crate::protocol::Frame;
use crate::value::Kind;

pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("set");
    let all = (1, -1, 1);
    let w = WRITE | DENYOOM;
    vec![
        s("sinter", -2, READONLY, all, "Intersects sets.", sinter),
        s("sunion", -2, READONLY, all, "Unites sets.", sunion),
        s(
            "sdiff",
            -2,
            READONLY,
            all,
            "Subtracts sets from the first.",
            sdiff,
        ),
        s(
            "sinterstore",
            -3,
            w,
            all,
            "Stores an intersection.",
            sinterstore,
        ),
        s("sunionstore", -3, w, all, "Stores a union.", sunionstore),
        s("sdiffstore", -3, w, all, "Stores a difference.", sdiffstore),
        s(
            "sintercard",
            -3,
            READONLY,
            (0, 0, 0),
            "Counts an intersection's members.",
            sintercard,
        ),
        s(
            "sscan",
            -3,
            READONLY,
            (1, 1, 1),
            "Iterates over members with a cursor.",
            sscan,
        ),
    ]
}

#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The sets at `keys` (`None` for a missing one), every key type-checked.
fn sources(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<Collection>>, Frame> {
    keys.iter().map(|key| read(ctx, key)).collect()
}

/// Calls `emit` with each member of the intersection of `sets` (in byte
/// order) until it returns `false`.
fn intersect(
    ks: &mut Keyspace,
    sets: &[Option<Collection>],
    mut emit: impl FnMut(&Bytes) -> bool,
) -> Result<(), Frame> {
    let Some(mut sets) = sets.iter().cloned().collect::<Option<Vec<Collection>>>() else {
        return Ok(()); // a missing key is an empty set
    };
    sets.sort_by_key(Collection::len);
    let (smallest, others) = sets.split_first().expect("at least one key");
    for_each_page(ks, smallest, Bound::Unbounded, |ks, page| {
        'members: for (member, _) in page {
            for other in others {
                if ks.sub_get(other, member).map_err(engine_error)?.is_none() {
                    continue 'members;
                }
            }
            if !emit(member) {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

/// The members of the combination of `sets`, in byte order.
fn combine(ks: &mut Keyspace, sets: &[Option<Collection>], op: Op) -> Result<Vec<Bytes>, Frame> {
    let mut out = Vec::new();
    match op {
        Op::Inter => intersect(ks, sets, |m| {
            out.push(m.clone());
            true
        })?,
        Op::Union => {
            let mut union = BTreeSet::new();
            for set in sets.iter().flatten() {
                for_each_page(ks, set, Bound::Unbounded, |_, page| {
                    union.extend(page.iter().map(|(m, _)| m.clone()));
                    Ok(true)
                })?;
            }
            out.extend(union);
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Ok(out);
            };
            let others: Vec<&Collection> = sets[1..].iter().flatten().collect();
            for_each_page(ks, first, Bound::Unbounded, |ks, page| {
                'members: for (member, _) in page {
                    for other in &others {
                        if ks.sub_get(other, member).map_err(engine_error)?.is_some() {
                            continue 'members;
                        }
                    }
                    out.push(member.clone());
                }
                Ok(true)
            })?;
        }
    }
    Ok(out)
}

fn read_op(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op) -> Frame {
    reply((|| {
        let sets = sources(ctx, &args[1..])?;
        let result = combine(ctx.ks(), &sets, op)?;
        Ok(Frame::Set(result.into_iter().map(Frame::Bulk).collect()))
    })())
}

fn store_op(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op) -> Frame {
    reply((|| {
        let sets = sources(ctx, &args[2..])?;
        let result = combine(ctx.ks(), &sets, op)?;
        if result.is_empty() {
            crate::command::delete_as_del(ctx, &args[1])?;
            return Ok(Frame::Integer(0));
        }
        let ks = ctx.ks();
        let mut dst = ks
            .create_collection(args[1].clone(), Kind::Set, None)
            .map_err(engine_error)?;
        for member in &result {
            ks.sub_put(&dst, member, b"").map_err(engine_error)?;
        }
        dst.meta.len = result.len() as u64;
        save(ctx, &dst)?;
        Ok(Frame::Integer(result.len() as i64))
    })())
}

fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    read_op(ctx, args, Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    read_op(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    read_op(ctx, args, Op::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    store_op(ctx, args, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    store_op(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    store_op(ctx, args, Op::Diff)
}

fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let numkeys = int_arg(&args[1])
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| Frame::error("ERR numkeys should be greater than 0"))?;
        let keys_end = usize::try_from(numkeys)
            .ok()
            .and_then(|n| n.checked_add(2))
            .filter(|&end| end <= args.len())
            .ok_or_else(|| {
                Frame::error("ERR Number of keys can't be greater than number of args")
            })?;
        let mut limit = 0u64;
        let mut options = args[keys_end..].iter();
        while let Some(option) = options.next() {
            match options.as_slice().first() {
                Some(value) if is(option, "limit") => {
                    limit = int_arg(value)
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| Frame::error("ERR LIMIT can't be negative"))?;
                    options.next();
                }
                _ => return Err(syntax_error()),
            }
        }
        let sets = sources(ctx, &args[2..keys_end])?;
        let mut count = 0u64;
        intersect(ctx.ks(), &sets, |_| {
            count += 1;
            limit == 0 || count < limit
        })?;
        Ok(Frame::Integer(count as i64))
    })())
}

fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let cursor = members::parse_cursor(&args[2])?;
        let Some(c) = read(ctx, &args[1])? else {
            return Ok(members::scan_reply(0, Vec::new()));
        };
        let options = members::parse_scan_options(&args[3..], false)?;
        let (page, next) = members::scan_page(ctx.ks(), &c, cursor, options.count)?;
        let items = page
            .into_iter()
            .filter(|(m, _)| options.pattern.as_ref().is_none_or(|p| glob_match(p, m)))
            .map(|(m, _)| Frame::Bulk(m))
            .collect();
        Ok(members::scan_reply(next, items))
    })())
}
