//! `HSCAN`/`SSCAN`-style cursors over a collection's subkeys.
//!
//! A subkey can be any byte string, so a scan position does not fit in the
//! number a Redis cursor must be. Like Kvrocks, the server keeps the
//! positions: a fixed table of [`CURSOR_SLOTS`] slots, overwritten round
//! robin, each holding the next subkey to return (its first
//! [`POSITION_BYTES_MAX`] bytes). The cursor names its slot, carries a random
//! tag that must match the slot's, and the position's first 3 bytes. A cursor
//! whose slot was reused since (or one the client made up) resumes from those
//! 3 bytes: it may repeat elements, as Redis's own cursors may, but it skips
//! none. Cursors stay below 2^53, so clients that parse them as a
//! JavaScript number or a double lose nothing.

use std::ops::Bound;

use bytes::Bytes;
use parking_lot::Mutex;

use super::all;
use crate::command::{engine_error, int_arg, is, syntax_error};
use crate::engine::{SubRange, prefix_end};
use crate::keyspace::collection::Collection;
use crate::keyspace::{Keyspace, SCAN_COUNT_MAX};
use crate::protocol::Frame;

/// Collections at most this long are returned whole by the first scan
/// call, as Redis does for its compact encodings (listpack, intset).
const SCAN_WHOLE_MAX: u64 = 128;

/// Scan positions the server remembers (see the module docs).
pub const CURSOR_SLOTS: usize = 1 << 14;

/// Most bytes of a scan position kept in a slot: a longer position is kept
/// truncated (resuming there may repeat elements, never skip one), so the
/// table holds at most `CURSOR_SLOTS * POSITION_BYTES_MAX` bytes.
pub const POSITION_BYTES_MAX: usize = 1024;

const SLOT_BITS: u32 = 14;
const TAG_BITS: u32 = 15;
const HINT_BYTES: usize = 3;

/// Parses a scan cursor as Redis does (`strtoul`: an optional sign, digits,
/// a negative number wraps; the empty string is 0).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Frame> {
    let invalid = || Frame::error("ERR invalid cursor");
    let (negative, digits) = match arg.first() {
        None => return Ok(0),
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        Some(_) => (false, arg),
    };
    if digits.is_empty() {
        return Err(invalid());
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid());
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// `MATCH`, `COUNT` and (`HSCAN` only) `NOVALUES`.
pub struct ScanOptions {
    /// Only elements (fields, members) matching this glob.
    pub pattern: Option<Bytes>,
    /// Elements to visit per call (capped at `SCAN_COUNT_MAX`).
    pub count: usize,
    /// `HSCAN ... NOVALUES`: fields only.
    pub novalues: bool,
}

/// Parses the options after a scan cursor, as Redis does: `COUNT` must be
/// a positive integer, `MATCH *` matches everything.
pub fn parse_scan_options(args: &[Bytes], novalues_ok: bool) -> Result<ScanOptions, Frame> {
    let mut options = ScanOptions {
        pattern: None,
        count: 10,
        novalues: false,
    };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match value {
            Some(value) if is(&args[i], "count") => {
                let count = int_arg(value)?;
                if count < 1 {
                    return Err(syntax_error());
                }
                options.count = usize::try_from(count).unwrap_or(usize::MAX);
                i += 2;
            }
            Some(value) if is(&args[i], "match") => {
                options.pattern = (value.as_ref() != b"*").then(|| value.clone());
                i += 2;
            }
            _ if novalues_ok && is(&args[i], "novalues") => {
                options.novalues = true;
                i += 1;
            }
            _ => return Err(syntax_error()),
        }
    }
    Ok(options)
}

/// One scan call: up to `count` subkeys from `cursor`, and the next cursor
/// (`0` when done). The first call on a small collection returns it whole.
pub fn scan_page(
    ks: &mut Keyspace,
    c: &Collection,
    cursor: u64,
    count: usize,
) -> Result<(Vec<(Bytes, Bytes)>, u64), Frame> {
    scan_page_within(ks, c, &[], cursor, count)
}

/// [`scan_page`] over the subkeys that start with `prefix` only (a type
/// with several subkey namespaces scans one: a sorted set its score index,
/// so a small set comes back in score order, as from Redis).
pub fn scan_page_within(
    ks: &mut Keyspace,
    c: &Collection,
    prefix: &[u8],
    cursor: u64,
    count: usize,
) -> Result<(Vec<(Bytes, Bytes)>, u64), Frame> {
    let end = prefix_end(prefix);
    let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    if cursor == 0 && c.len() <= SCAN_WHOLE_MAX {
        if prefix.is_empty() {
            return Ok((all(ks, c)?, 0));
        }
        let mut page = Vec::new();
        let range = SubRange {
            lower: Bound::Included(prefix),
            upper,
            reverse: false,
            limit: SCAN_WHOLE_MAX as usize,
        };
        ks.sub_range(c, &range, &mut page).map_err(engine_error)?;
        return Ok((page, 0));
    }
    let position = if cursor == 0 {
        Bytes::new()
    } else {
        resume(cursor)
    };
    // A made-up cursor may point before the namespace: start at it.
    let position = if position.as_ref() < prefix {
        Bytes::copy_from_slice(prefix)
    } else {
        position
    };
    let count = count.clamp(1, SCAN_COUNT_MAX);
    let mut page = Vec::with_capacity(count + 1);
    let range = SubRange {
        lower: Bound::Included(&position),
        upper,
        reverse: false,
        limit: count + 1,
    };
    ks.sub_range(c, &range, &mut page).map_err(engine_error)?;
    let next = if page.len() > count {
        let (next, _) = page.pop().expect("count + 1 subkeys");
        remember(&next)
    } else {
        0
    };
    Ok((page, next))
}

/// A scan reply: the next cursor (as a bulk string) and the elements.
pub fn scan_reply(cursor: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::bulk(cursor.to_string()), Frame::Array(items)])
}

/// The cursor table (see the module docs).
struct Cursors {
    slots: Vec<(u64, Bytes)>,
    next: usize,
}

static CURSORS: Mutex<Cursors> = Mutex::new(Cursors {
    slots: Vec::new(),
    next: 0,
});

/// The first bytes of a position, as the cursor carries them.
fn hint(position: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = position.len().min(HINT_BYTES);
    bytes[8 - HINT_BYTES..8 - HINT_BYTES + n].copy_from_slice(&position[..n]);
    u64::from_be_bytes(bytes)
}

/// Stores `position` in the next slot; returns its cursor (never 0).
fn remember(position: &[u8]) -> u64 {
    let kept = Bytes::copy_from_slice(&position[..position.len().min(POSITION_BYTES_MAX)]);
    let tag = fastrand::u64(1..1 << TAG_BITS);
    let mut table = CURSORS.lock();
    let slot = table.next;
    table.next = (slot + 1) % CURSOR_SLOTS;
    let cursor = (hint(position) << (SLOT_BITS + TAG_BITS)) | (tag << SLOT_BITS) | slot as u64;
    if slot < table.slots.len() {
        table.slots[slot] = (cursor, kept);
    } else {
        table.slots.push((cursor, kept));
    }
    cursor
}

/// The position a cursor stands for: exact if its slot still holds it,
/// else the position's first bytes from the cursor itself.
fn resume(cursor: u64) -> Bytes {
    let slot = (cursor & ((1 << SLOT_BITS) - 1)) as usize;
    if let Some((stored, position)) = CURSORS.lock().slots.get(slot)
        && *stored == cursor
    {
        return position.clone();
    }
    let prefix = (cursor >> (SLOT_BITS + TAG_BITS)).min((1 << (8 * HINT_BYTES)) - 1);
    let bytes = prefix.to_be_bytes();
    let mut hint = &bytes[8 - HINT_BYTES..];
    // Trailing zero bytes may be padding: resuming before them skips nothing.
    while let [rest @ .., 0] = hint {
        hint = rest;
    }
    Bytes::copy_from_slice(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"").unwrap(), 0);
        assert_eq!(parse_cursor(b"42").unwrap(), 42);
        assert_eq!(parse_cursor(b"+42").unwrap(), 42);
        assert_eq!(parse_cursor(b"-1").unwrap(), u64::MAX);
        assert_eq!(parse_cursor(b"18446744073709551615").unwrap(), u64::MAX);
        for bad in [
            &b"18446744073709551616"[..],
            b"x",
            b" 1",
            b"1 ",
            b"-",
            b"+",
            b"1.5",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_remembered_cursor_resumes_exactly_and_stays_below_2_pow_53() {
        let long = vec![b'z'; 5000];
        for position in [&b"a"[..], b"\x00\x00\x00\x01", b"user:123456", &long] {
            let cursor = remember(position);
            assert_ne!(cursor, 0);
            assert!(cursor < 1 << 53);
            let kept = &position[..position.len().min(POSITION_BYTES_MAX)];
            assert_eq!(resume(cursor), kept);
        }
    }

    #[test]
    fn a_forgotten_cursor_resumes_at_or_before_its_position() {
        let cursor = remember(b"user:9");
        let stale = cursor ^ (1 << SLOT_BITS); // another tag: not the slot's
        let resumed = resume(stale);
        assert_eq!(resumed, &b"use"[..]);
        assert!(resumed.as_ref() <= &b"user:9"[..]);
        // Padding zeros are dropped, so a short position is not skipped.
        let stale = remember(b"ab") ^ (1 << SLOT_BITS);
        assert_eq!(resume(stale), &b"ab"[..]);
        assert_eq!(resume(1), Bytes::new());
    }
}
