//! The blocking forms: `BLPOP`, `BRPOP`, `BLMOVE`, `BRPOPLPUSH`, `BLMPOP`.
//! Each runs its non-blocking form; when every key is empty it asks to
//! wait with [`Ctx::block`] and returns the timeout reply (see
//! `crate::state::blocking` for how the connection waits and re-runs it).

use bytes::Bytes;

use super::push_pop::{move_one, mpop, parse_mpop};
use super::{End, existing_list, pop_one, save};
use crate::command::blocking::timeout_secs;
use crate::command::{Ctx, DENYOOM, Spec, WRITE, reply, wrong_type};
use crate::protocol::Frame;

pub(super) fn specs() -> Vec<Spec> {
    let s = |name, arity, flags, keys, summary, handler| Spec {
        name,
        arity,
        flags,
        keys,
        group: "list",
        summary,
        handler,
    };
    vec![
        s(
            "blpop",
            -3,
            WRITE,
            (1, -2, 1),
            "Pops the first element of the first non-empty list, or waits for one.",
            blpop,
        ),
        s(
            "brpop",
            -3,
            WRITE,
            (1, -2, 1),
            "Pops the last element of the first non-empty list, or waits for one.",
            brpop,
        ),
        s(
            "blmove",
            6,
            WRITE | DENYOOM,
            (1, 2, 1),
            "Moves an element between lists, or waits for one.",
            blmove,
        ),
        s(
            "brpoplpush",
            4,
            WRITE | DENYOOM,
            (1, 2, 1),
            "Moves the last element of a list to the head of another, or waits for one.",
            brpoplpush,
        ),
        s(
            "blmpop",
            -5,
            WRITE,
            (0, 0, 0),
            "Pops elements from the first non-empty list of several, or waits.",
            blmpop,
        ),
    ]
}

/// `BLPOP`/`BRPOP key... timeout`.
fn bpop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> Frame {
    reply((|| {
        let deadline = timeout_secs(&args[args.len() - 1], ctx.now_ms)?;
        let keys = &args[1..args.len() - 1];
        let retrying = ctx.retrying();
        for key in keys {
            let found = match existing_list(ctx, key) {
                Err(err) if retrying && err == wrong_type() => None,
                found => found?,
            };
            if let Some(mut list) = found {
                let value = pop_one(ctx, &mut list, end)?;
                save(ctx, &mut list)?;
                if let Some(value) = value {
                    return Ok(Frame::Array(vec![
                        Frame::Bulk(key.clone()),
                        Frame::Bulk(value),
                    ]));
                }
            }
        }
        ctx.block(keys, deadline, args);
        Ok(Frame::NullArray)
    })())
}

fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bpop(ctx, args, End::Left)
}

fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bpop(ctx, args, End::Right)
}

/// `BLMOVE`/`BRPOPLPUSH` once their arguments are parsed.
fn bmove(ctx: &mut Ctx<'_>, args: &[Bytes], from: End, to: End, timeout: &[u8]) -> Frame {
    reply((|| {
        let deadline = timeout_secs(timeout, ctx.now_ms)?;
        let (src, dst) = (&args[1], &args[2]);
        let present = match existing_list(ctx, src) {
            Err(err) if ctx.retrying() && err == wrong_type() => false,
            found => found?.is_some(),
        };
        if present && let Some(value) = move_one(ctx, src, dst, from, to)? {
            return Ok(Frame::Bulk(value));
        }
        // Redis 7.0: a timeout answers a null array, a client that may not
        // block (MULTI) a null bulk.
        Ok(if ctx.block(std::slice::from_ref(src), deadline, args) {
            Frame::NullArray
        } else {
            Frame::Null
        })
    })())
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`.
fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match (End::parse(&args[3]), End::parse(&args[4])) {
        (Ok(from), Ok(to)) => bmove(ctx, args, from, to, &args[5]),
        (Err(err), _) | (_, Err(err)) => err,
    }
}

/// `BRPOPLPUSH source destination timeout`.
fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bmove(ctx, args, End::Right, End::Left, &args[3])
}

/// `BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT count]`.
fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let deadline = timeout_secs(&args[1], ctx.now_ms)?;
        let parsed = parse_mpop(&args[2..])?;
        let retrying = ctx.retrying();
        if let Some(popped) = mpop(ctx, &parsed, retrying)? {
            return Ok(popped);
        }
        ctx.block(parsed.keys, deadline, args);
        Ok(Frame::NullArray)
    })())
}
