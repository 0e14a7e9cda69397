//! Counters: `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`. Numbers
//! are stored as their decimal text, as Redis stores them.

use bytes::Bytes;

use super::{lookup, write};
use crate::command::{Ctx, engine_error, int_arg, reply, wrong_type};
use crate::long_double::LongDouble;
use crate::protocol::Frame;
use crate::protocol::frame::itoa_buf;
use crate::protocol::parse::parse_i64_strict;
use crate::value::Value;

/// Adds `delta` to the integer at `key` (0 if absent), keeping its TTL.
/// The stored value is changed where it lies (`Keyspace::update`): no copy
/// of the entry, and no allocation while the number keeps its length (the
/// read-parse-format-write round trip was a fifth of a pipelined `INCR`).
fn add(ctx: &mut Ctx<'_>, key: &Bytes, delta: i64) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let mut outcome = Ok(delta);
        let found = ctx
            .ks()
            .update(key, now, &mut |entry| {
                outcome = add_to(&mut entry.value, delta);
                outcome.is_ok()
            })
            .map_err(engine_error)?;
        if found.is_none() {
            write(
                ctx,
                key,
                Bytes::copy_from_slice(itoa_buf(delta).as_bytes()),
                None,
            )?;
        }
        outcome.map(Frame::Integer)
    })())
}

/// `INCRBY`'s arithmetic on a stored value: the new number, or the error
/// that leaves the value unchanged.
fn add_to(value: &mut Value, delta: i64) -> Result<i64, Frame> {
    let Value::String(text) = value else {
        return Err(wrong_type());
    };
    let current = parse_i64_strict(text).ok_or_else(crate::command::not_integer)?;
    let next = current
        .checked_add(delta)
        .ok_or_else(|| Frame::error("ERR increment or decrement would overflow"))?;
    let digits = itoa_buf(next);
    let digits = digits.as_bytes();
    if text.len() == digits.len() {
        // Rewrite the digits in place if nobody else holds the bytes.
        match std::mem::take(text).try_into_mut() {
            Ok(mut bytes) => {
                bytes.copy_from_slice(digits);
                *text = bytes.freeze();
                return Ok(next);
            }
            Err(shared) => *text = shared,
        }
    }
    *text = Bytes::copy_from_slice(digits);
    Ok(next)
}

pub(super) fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    add(ctx, &args[1], 1)
}

pub(super) fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    add(ctx, &args[1], -1)
}

pub(super) fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match int_arg(&args[2]) {
        Ok(delta) => add(ctx, &args[1], delta),
        Err(err) => err,
    }
}

pub(super) fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match int_arg(&args[2]) {
        Ok(i64::MIN) => Frame::error("ERR decrement would overflow"),
        Ok(delta) => add(ctx, &args[1], -delta),
        Err(err) => err,
    }
}

pub(super) fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        // Redis's order: the key's type, the stored value, then the increment.
        let not_float = || Frame::error("ERR value is not a valid float");
        let (current, ttl) = match lookup(ctx, &args[1])? {
            Some((text, ttl)) => (LongDouble::parse(&text).ok_or_else(not_float)?, ttl),
            None => (LongDouble::ZERO, None),
        };
        let delta = LongDouble::parse(&args[2]).ok_or_else(not_float)?;
        let next = current.add(delta);
        if !next.is_finite() {
            return Err(Frame::error("ERR increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(next.to_human());
        write(ctx, &args[1], text.clone(), ttl)?;
        Ok(Frame::Bulk(text))
    })())
}
