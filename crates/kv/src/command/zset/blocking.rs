//! The blocking pops: `BZPOPMIN`, `BZPOPMAX`, `BZMPOP`. Each runs its
//! non-blocking form; when every key is absent it asks to wait with
//! `Ctx::block` and returns the timeout reply (`crate::state::blocking`
//! describes how the connection waits, is woken by a write to a key, and
//! re-runs the command).

use bytes::Bytes;

use super::write::{mpop, parse_mpop, pop, popped};
use crate::command::blocking::timeout_secs;
use crate::command::{Ctx, reply, wrong_type};
use crate::protocol::Frame;

/// On a re-run after a wake, a key that changed type counts as empty (as
/// in Redis 7.0); on the first run it is `WRONGTYPE`.
fn tolerate_type(
    ctx: &Ctx<'_>,
    result: Result<Option<Frame>, Frame>,
) -> Result<Option<Frame>, Frame> {
    match result {
        Err(err) if ctx.retrying() && err == wrong_type() => Ok(None),
        other => other,
    }
}

/// `BZPOPMIN`/`BZPOPMAX key [key ...] timeout`: `[key, member, score]`.
fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Frame {
    reply((|| {
        let deadline = timeout_secs(&args[args.len() - 1], ctx.now_ms)?;
        let keys = &args[1..args.len() - 1];
        for key in keys {
            let found = pop(ctx, key, max, 1).map(|items| {
                items.filter(|i| !i.is_empty()).map(|items| {
                    let mut out = vec![Frame::Bulk(key.clone())];
                    out.extend(popped(items, false));
                    Frame::Array(out)
                })
            });
            if let Some(reply) = tolerate_type(ctx, found)? {
                return Ok(reply);
            }
        }
        ctx.block(keys, deadline, args);
        Ok(Frame::NullArray)
    })())
}

pub(super) fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bzpop(ctx, args, false)
}

pub(super) fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bzpop(ctx, args, true)
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]` (its
/// arguments are checked before its timeout, as in Redis).
pub(super) fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let m = parse_mpop(args, 2)?;
        let deadline = timeout_secs(&args[1], ctx.now_ms)?;
        for key in m.keys {
            let one = super::write::MpopArgs {
                keys: std::slice::from_ref(key),
                ..m
            };
            let found = mpop(ctx, &one);
            if let Some(reply) = tolerate_type(ctx, found)? {
                return Ok(reply);
            }
        }
        ctx.block(m.keys, deadline, args);
        Ok(Frame::NullArray)
    })())
}
