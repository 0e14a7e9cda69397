//! `BITFIELD` and `BITFIELD_RO`: a string as an array of signed or unsigned
//! integers of any width from 1 to 64 bits (`u63` at most: Redis replies in
//! signed 64-bit), at any bit offset (`#n` = the n-th field of that width),
//! read, set and incremented with `WRAP`, `SAT` or `FAIL` overflow.
//!
//! Everything is parsed and every offset checked before the key is touched,
//! as in Redis: a bad argument anywhere leaves the string unchanged.

use bytes::Bytes;

use super::{bit_offset, edit_string};
use crate::command::string::{lookup, read};
use crate::command::{Ctx, DENYOOM, READONLY, Spec, WRITE, int_arg, is, reply, syntax_error};
use crate::protocol::Frame;

pub(super) fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "bitfield",
            arity: -2,
            flags: WRITE | DENYOOM,
            keys: (1, 1, 1),
            group: "bitmap",
            summary: "Performs arbitrary bitfield integer operations on strings.",
            handler: bitfield,
        },
        Spec {
            name: "bitfield_ro",
            arity: -2,
            flags: READONLY,
            keys: (1, 1, 1),
            group: "bitmap",
            summary: "Performs arbitrary read-only bitfield integer operations on strings.",
            handler: bitfield_ro,
        },
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy)]
struct Op {
    kind: Kind,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), Frame> {
    let err = || {
        Frame::error(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let (signed, digits) = match arg {
        [b'i', rest @ ..] => (true, rest),
        [b'u', rest @ ..] => (false, rest),
        _ => return Err(err()),
    };
    let bits = crate::protocol::parse::parse_i64_strict(digits).ok_or_else(err)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn parse(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Vec<Op>, Frame> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rest = args.len() - j - 1;
        let word = &args[j];
        let kind = if is(word, "get") && rest >= 2 {
            Kind::Get
        } else if is(word, "set") && rest >= 3 {
            Kind::Set
        } else if is(word, "incrby") && rest >= 3 {
            Kind::IncrBy
        } else if is(word, "overflow") && rest >= 1 {
            let mode = &args[j + 1];
            overflow = if is(mode, "wrap") {
                Overflow::Wrap
            } else if is(mode, "sat") {
                Overflow::Sat
            } else if is(mode, "fail") {
                Overflow::Fail
            } else {
                return Err(Frame::error("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(syntax_error());
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], u64::from(bits))?;
        let value = if kind == Kind::Get {
            0
        } else {
            int_arg(&args[j + 3])?
        };
        ops.push(Op {
            kind,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if kind == Kind::Get { 3 } else { 4 };
    }
    Ok(ops)
}

fn get_unsigned(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0, |value, j| {
        (value << 1) | u64::from(super::bit_at(bytes, offset + j))
    })
}

fn get_signed(bytes: &[u8], offset: u64, bits: u32) -> i64 {
    let value = get_unsigned(bytes, offset, bits);
    if bits < 64 && value & (1 << (bits - 1)) != 0 {
        (value | (u64::MAX << bits)) as i64
    } else {
        value as i64
    }
}

fn set_unsigned(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let on = (value >> (u64::from(bits) - 1 - j)) & 1 != 0;
        let at = offset + j;
        let mask = 0x80 >> (at & 7);
        let byte = &mut bytes[(at >> 3) as usize];
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr`
/// overflows `bits`, and the value to store if it does (wrapped or
/// saturated; `None` under `FAIL`).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, mode: Overflow) -> Option<Option<u64>> {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if incr < 0 && incr < min_incr {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow` (see [`unsigned_overflow`]).
fn signed_overflow(value: i64, incr: i64, bits: u32, mode: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Applies one `SET`/`INCRBY`; the reply (`Null` when `FAIL` refused it).
fn apply(bytes: &mut [u8], op: &Op) -> Frame {
    let (offset, bits) = (op.offset, op.bits);
    if op.signed {
        let old = get_signed(bytes, offset, bits);
        let (new, ret, overflow) = match op.kind {
            Kind::IncrBy => {
                let overflow = signed_overflow(old, op.value, bits, op.overflow);
                let new = match overflow {
                    Some(limited) => limited,
                    None => Some(old.wrapping_add(op.value)),
                };
                (new, new, overflow.is_some())
            }
            _ => {
                let overflow = signed_overflow(op.value, 0, bits, op.overflow);
                (
                    overflow.unwrap_or(Some(op.value)),
                    Some(old),
                    overflow.is_some(),
                )
            }
        };
        match (new, ret) {
            (Some(new), Some(ret)) if !(overflow && op.overflow == Overflow::Fail) => {
                set_unsigned(bytes, offset, bits, new as u64);
                Frame::Integer(ret)
            }
            _ => Frame::Null,
        }
    } else {
        let old = get_unsigned(bytes, offset, bits);
        let (new, ret, overflow) = match op.kind {
            Kind::IncrBy => {
                let overflow = unsigned_overflow(old, op.value, bits, op.overflow);
                let new = match overflow {
                    Some(limited) => limited,
                    None => Some(old.wrapping_add(op.value as u64)),
                };
                (new, new, overflow.is_some())
            }
            _ => {
                let value = op.value as u64;
                let overflow = unsigned_overflow(value, 0, bits, op.overflow);
                (
                    overflow.unwrap_or(Some(value)),
                    Some(old),
                    overflow.is_some(),
                )
            }
        };
        match (new, ret) {
            (Some(new), Some(ret)) if !(overflow && op.overflow == Overflow::Fail) => {
                set_unsigned(bytes, offset, bits, new);
                Frame::Integer(ret as i64)
            }
            _ => Frame::Null,
        }
    }
}

/// A `GET` on `bytes` (zero past the end).
fn get(bytes: &[u8], op: &Op) -> Frame {
    let first = (op.offset >> 3) as usize;
    let mut window = [0u8; 9];
    if first < bytes.len() {
        let end = bytes.len().min(first + 9);
        window[..end - first].copy_from_slice(&bytes[first..end]);
    }
    let offset = op.offset & 7;
    if op.signed {
        Frame::Integer(get_signed(&window, offset, op.bits))
    } else {
        Frame::Integer(get_unsigned(&window, offset, op.bits) as i64)
    }
}

fn run(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> Frame {
    reply((|| {
        let ops = parse(ctx, args)?;
        let writes = ops.iter().filter(|op| op.kind != Kind::Get);
        let Some(highest) = writes.map(|op| op.offset + u64::from(op.bits) - 1).max() else {
            let value = read(ctx, &args[1])?.unwrap_or_default();
            return Ok(Frame::Array(ops.iter().map(|op| get(&value, op)).collect()));
        };
        if read_only {
            return Err(Frame::error(
                "ERR BITFIELD_RO only supports the GET subcommand",
            ));
        }
        let current = lookup(ctx, &args[1])?.map(|(bytes, _)| bytes);
        let len = (highest >> 3) as usize + 1;
        let replies = edit_string(ctx, &args[1], current, len, |bytes| {
            ops.iter()
                .map(|op| match op.kind {
                    Kind::Get => get(bytes, op),
                    _ => apply(bytes, op),
                })
                .collect::<Vec<_>>()
        })?;
        // Redis raises `setbit` only if some write happened (`OVERFLOW
        // FAIL` skips a write and replies nil), though it creates the key.
        let wrote = ops
            .iter()
            .zip(&replies)
            .any(|(op, reply)| op.kind != Kind::Get && *reply != Frame::Null);
        if !wrote {
            crate::command::own_events(ctx);
        }
        Ok(Frame::Array(replies))
    })())
}

fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    run(ctx, args, true)
}
