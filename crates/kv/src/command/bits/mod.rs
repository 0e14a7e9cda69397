//! Strings, completed: bit operations (`SETBIT` `GETBIT` `BITCOUNT` `BITPOS`
//! `BITOP`, and `BITFIELD` in [`bitfield`]), `LCS` ([`lcs`]), `SUBSTR`,
//! `COPY` and `OBJECT` ([`object`]), `SORT` and `SORT_RO` ([`sort`]).
//!
//! A bitmap is an ordinary string whose bit 0 is the most significant bit
//! of byte 0, as in Redis, so `SETBIT` and `GET` see the same bytes. Every
//! bit offset a client sends is checked against `proto-max-bulk-len` (and
//! the engine's own value limit) *before* anything is allocated: `SETBIT k
//! 4294967295 1` grows a string to 512 MB in Redis and here, and one bit
//! further is `ERR bit offset is not an integer or out of range`.

mod bitfield;
mod lcs;
mod object;
mod sort;

use bytes::{Bytes, BytesMut};

use super::string::{lookup, read, write};
use super::{Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, reply, syntax_error};
use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;
use crate::value::Value;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("bitmap");
    let w = WRITE | DENYOOM;
    let mut specs = vec![
        s(
            "setbit",
            4,
            w,
            (1, 1, 1),
            "Sets or clears the bit at offset of the string value; returns the old bit.",
            setbit,
        ),
        s(
            "getbit",
            3,
            READONLY,
            (1, 1, 1),
            "Returns a bit value by offset.",
            getbit,
        ),
        s(
            "bitcount",
            -2,
            READONLY,
            (1, 1, 1),
            "Counts the set bits in a string (optionally in a BYTE or BIT range).",
            bitcount,
        ),
        s(
            "bitpos",
            -3,
            READONLY,
            (1, 1, 1),
            "Finds the first set or clear bit in a string.",
            bitpos,
        ),
        s(
            "bitop",
            -4,
            w,
            (2, -1, 1),
            "Performs AND, OR, XOR or NOT between strings and stores the result.",
            bitop,
        ),
        Spec {
            group: "string",
            ..s(
                "substr",
                4,
                READONLY,
                (1, 1, 1),
                "Returns a substring of a string value (GETRANGE's old name).",
                super::string::getrange,
            )
        },
    ];
    specs.extend(bitfield::specs());
    specs.extend(lcs::specs());
    specs.extend(object::specs());
    specs.extend(sort::specs());
    specs
}

/// Redis's error for a bad bit offset.
fn bad_offset() -> Frame {
    Frame::error("ERR bit offset is not an integer or out of range")
}

/// The largest string a bit command may create or grow to: Redis's
/// `proto-max-bulk-len`, and never more than the engine stores.
fn string_bytes_max(ctx: &mut Ctx<'_>) -> u64 {
    let proto = ctx.state.config.read().proto_max_bulk_len;
    let engine = ctx.ks().engine().value_bytes_max().unwrap_or(u64::MAX);
    proto.min(engine)
}

/// Parses a bit offset as Redis does (`#n` means `n × bits` where allowed:
/// `bits` > 0), refusing any whose byte is past [`string_bytes_max`] before
/// anything is allocated.
fn bit_offset(ctx: &mut Ctx<'_>, arg: &[u8], bits: u64) -> Result<u64, Frame> {
    let (digits, hash) = match arg {
        [b'#', rest @ ..] if bits > 0 && !rest.is_empty() => (rest, true),
        _ => (arg, false),
    };
    let mut offset = parse_i64_strict(digits).ok_or_else(bad_offset)?;
    if hash {
        offset = offset.checked_mul(bits as i64).ok_or_else(bad_offset)?;
    }
    if offset < 0 || (offset as u64 >> 3) >= string_bytes_max(ctx) {
        return Err(bad_offset());
    }
    Ok(offset as u64)
}

/// Runs `f` on the string at `key` grown with zero bytes to at least `len`
/// bytes (created if absent), and stores it, keeping its TTL. `existing` is
/// the caller's copy of the current value: it is dropped first, so the
/// memory engine edits its own copy in place instead of copying it.
fn edit_string<R>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    existing: Option<Bytes>,
    len: usize,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, Frame> {
    let Some(current) = existing else {
        let mut buf = BytesMut::zeroed(len);
        let out = f(&mut buf);
        write(ctx, key, buf.freeze(), None)?;
        return Ok(out);
    };
    drop(current);
    let now = ctx.now_ms;
    let (mut f, mut out) = (Some(f), None);
    ctx.ks()
        .modify(key, now, &mut |entry| {
            if let Value::String(bytes) = &mut entry.value {
                let mut own = std::mem::take(bytes)
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                if own.len() < len {
                    own.resize(len, 0);
                }
                if let Some(f) = f.take() {
                    out = Some(f(&mut own));
                }
                *bytes = own.freeze();
            }
        })
        .map_err(engine_error)?;
    out.ok_or_else(|| Frame::error("ERR no such key"))
}

/// Bit `offset` of `bytes` (0 past the end).
fn bit_at(bytes: &[u8], offset: u64) -> bool {
    bytes
        .get((offset >> 3) as usize)
        .is_some_and(|byte| byte & (0x80 >> (offset & 7)) != 0)
}

fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let offset = bit_offset(ctx, &args[2], 0)?;
        let bad_bit = || Frame::error("ERR bit is not an integer or out of range");
        let on = match parse_i64_strict(&args[3]) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(bad_bit()),
        };
        let current = lookup(ctx, &args[1])?.map(|(bytes, _)| bytes);
        let byte = (offset >> 3) as usize;
        let old = current.as_deref().is_some_and(|b| bit_at(b, offset));
        let grows = current.as_ref().is_none_or(|b| b.len() <= byte);
        if grows || old != on {
            edit_string(ctx, &args[1], current, byte + 1, |bytes| {
                let mask = 0x80 >> (offset & 7);
                if on {
                    bytes[byte] |= mask;
                } else {
                    bytes[byte] &= !mask;
                }
            })?;
        }
        Ok(Frame::Integer(i64::from(old)))
    })())
}

fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let offset = bit_offset(ctx, &args[2], 0)?;
        let value = read(ctx, &args[1])?;
        Ok(Frame::Integer(i64::from(
            value.as_deref().is_some_and(|b| bit_at(b, offset)),
        )))
    })())
}

/// Resolves a `start end [BYTE|BIT]` range over a string of `len` bytes
/// to inclusive bit offsets, as `BITCOUNT`/`BITPOS` do; `None` if empty.
fn bit_range(start: i64, end: i64, len: usize, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let clamp = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (clamp(start), clamp(end).min(total - 1));
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

/// Set bits of `bytes` between bit offsets `first..=last`.
fn count_bits(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (a, b) = ((first >> 3) as usize, (last >> 3) as usize);
    let whole: u64 = bytes[a..=b].iter().map(|x| u64::from(x.count_ones())).sum();
    let head = u64::from((bytes[a] & !(0xffu8 >> (first & 7))).count_ones());
    let tail = u64::from((bytes[b] & (0x7fu8 >> (last & 7))).count_ones());
    whole - head - tail
}

/// `BYTE` or `BIT` (syntax error otherwise).
fn unit(arg: Option<&Bytes>) -> Result<bool, Frame> {
    match arg {
        None => Ok(false),
        Some(word) if is(word, "byte") => Ok(false),
        Some(word) if is(word, "bit") => Ok(true),
        Some(_) => Err(syntax_error()),
    }
}

fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        // As in Redis, a missing key answers 0 before the range is parsed.
        let Some(value) = read(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let range = match args.len() {
            2 => bit_range(0, -1, value.len(), false),
            4 | 5 => {
                let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
                if start < 0 && end < 0 && start > end {
                    return Ok(Frame::Integer(0));
                }
                bit_range(start, end, value.len(), unit(args.get(4))?)
            }
            _ => return Err(syntax_error()),
        };
        let count = range.map_or(0, |(first, last)| count_bits(&value, first, last));
        Ok(Frame::Integer(count as i64))
    })())
}

/// The first bit equal to `bit` between bit offsets `first..=last`.
fn find_bit(bytes: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xff };
    let mut at = first;
    while at <= last {
        if at & 7 == 0 && at + 7 <= last && bytes[(at >> 3) as usize] == skip {
            at += 8;
            continue;
        }
        if bit_at(bytes, at) == bit {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let bit = match int_arg(&args[2])? {
            0 => false,
            1 => true,
            _ => return Err(Frame::error("ERR The bit argument must be 1 or 0.")),
        };
        let Some(value) = read(ctx, &args[1])? else {
            return Ok(Frame::Integer(if bit { -1 } else { 0 }));
        };
        let (range, end_given) = match args.len() {
            3 => (bit_range(0, -1, value.len(), false), false),
            4..=6 => {
                let start = int_arg(&args[3])?;
                let in_bits = unit(args.get(5))?;
                let end = match args.get(4) {
                    Some(end) => int_arg(end)?,
                    None => -1,
                };
                (bit_range(start, end, value.len(), in_bits), args.len() > 4)
            }
            _ => return Err(syntax_error()),
        };
        let Some((first, last)) = range else {
            return Ok(Frame::Integer(-1));
        };
        Ok(Frame::Integer(match find_bit(&value, first, last, bit) {
            Some(at) => at as i64,
            // Clear bits continue past the end unless a range end was given.
            None if !bit && !end_given => (last + 1) as i64,
            None => -1,
        }))
    })())
}

fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let op = &args[1];
        let known = ["and", "or", "xor", "not"];
        let Some(op) = known.into_iter().find(|name| is(op, name)) else {
            return Err(syntax_error());
        };
        if op == "not" && args.len() != 4 {
            return Err(Frame::error(
                "ERR BITOP NOT must be called with a single source key.",
            ));
        }
        let mut sources = Vec::with_capacity(args.len() - 3);
        for key in &args[3..] {
            sources.push(read(ctx, key)?.unwrap_or_default());
        }
        let len = sources.iter().map(Bytes::len).max().unwrap_or(0);
        let dest = &args[2];
        if len == 0 {
            crate::command::delete_as_del(ctx, dest)?;
            return Ok(Frame::Integer(0));
        }
        let mut out = BytesMut::zeroed(len);
        for (i, slot) in out.iter_mut().enumerate() {
            let mut bytes = sources.iter().map(|s| s.get(i).copied().unwrap_or(0));
            let first = bytes.next().unwrap_or(0);
            *slot = match op {
                "and" => bytes.fold(first, |acc, b| acc & b),
                "or" => bytes.fold(first, |acc, b| acc | b),
                "xor" => bytes.fold(first, |acc, b| acc ^ b),
                _ => !first,
            };
        }
        write(ctx, dest, out.freeze(), None)?;
        Ok(Frame::Integer(len as i64))
    })())
}

#[cfg(test)]
mod tests;
