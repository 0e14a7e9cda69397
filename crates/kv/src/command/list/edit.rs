//! Reads and in-place edits: `LRANGE`, `LLEN`, `LINDEX`, `LPOS`, `LSET`,
//! `LINSERT`, `LREM`, `LTRIM`.

use bytes::Bytes;

use super::push_pop::positive;
use super::{End, List, PAGE, existing_list, get, push, put, read_list, remove, save, scan, walk};
use crate::command::{Ctx, engine_error, int_arg, is, reply, syntax_error};
use crate::protocol::Frame;
use crate::value::Kind;

/// `LRANGE key start stop`.
pub(super) fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
        let Some(list) = read_list(ctx, &args[1])? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let Some(span) = list.range(start, stop) else {
            return Ok(Frame::Array(Vec::new()));
        };
        let mut out = Vec::with_capacity((span.1 - span.0 + 1).min(PAGE as u64) as usize);
        walk(ctx, &list, span, false, &mut |_, value| {
            out.push(Frame::Bulk(value));
            true
        })?;
        Ok(Frame::Array(out))
    })())
}

/// `LLEN key`.
pub(super) fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(read_list(ctx, &args[1]).map(|l| Frame::Integer(l.map_or(0, |l| l.len() as i64))))
}

/// `LINDEX key index`: one seek.
pub(super) fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let index = int_arg(&args[2])?;
        let Some(list) = read_list(ctx, &args[1])? else {
            return Ok(Frame::Null);
        };
        match list.offset(index) {
            Some(offset) => Ok(Frame::Bulk(get(ctx, &list, offset)?)),
            None => Ok(Frame::Null),
        }
    })())
}

/// `LSET key index element`: one write.
pub(super) fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let index = int_arg(&args[2])?;
        let Some(list) = existing_list(ctx, &args[1])? else {
            return Err(Frame::error("ERR no such key"));
        };
        let offset = list
            .offset(index)
            .ok_or_else(|| Frame::error("ERR index out of range"))?;
        put(ctx, &list, list.head + offset, &args[3])?;
        Ok(Frame::OK)
    })())
}

/// Moves the elements at absolute indexes `lo..hi` one index down (to
/// `lo - 1..hi - 1`), reading up the list so no unread element is overwritten.
fn shift_down(ctx: &mut Ctx<'_>, list: &List, mut lo: u64, hi: u64) -> Result<(), Frame> {
    while lo < hi {
        let page = scan(ctx, list, lo, hi, false, PAGE)?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        for (index, value) in &page {
            put(ctx, list, index - 1, value)?;
        }
        lo = last + 1;
    }
    Ok(())
}

/// Moves the elements at absolute indexes `lo..hi` one index up, reading
/// down the list.
fn shift_up(ctx: &mut Ctx<'_>, list: &List, lo: u64, mut hi: u64) -> Result<(), Frame> {
    while lo < hi {
        let page = scan(ctx, list, lo, hi, true, PAGE)?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        for (index, value) in &page {
            put(ctx, list, index + 1, value)?;
        }
        hi = last;
    }
    Ok(())
}

/// The offset of the first element equal to `value`.
fn find(ctx: &mut Ctx<'_>, list: &List, value: &[u8]) -> Result<Option<u64>, Frame> {
    let mut found = None;
    if list.len() > 0 {
        walk(ctx, list, (0, list.len() - 1), false, &mut |offset, v| {
            if v == value {
                found = Some(offset);
            }
            found.is_none()
        })?;
    }
    Ok(found)
}

/// `LINSERT key BEFORE|AFTER pivot element`: shifts the shorter side.
pub(super) fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let after = if is(&args[2], "after") {
            true
        } else if is(&args[2], "before") {
            false
        } else {
            return Err(syntax_error());
        };
        let Some(mut list) = existing_list(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let Some(pivot) = find(ctx, &list, &args[3])? else {
            return Ok(Frame::Integer(-1));
        };
        // The new element's offset; elements from there on move up, or
        // those before it move down, whichever are fewer.
        let at = pivot + u64::from(after);
        if at <= list.len() / 2 {
            let head = list.head.checked_sub(1).ok_or_else(super::index_space)?;
            shift_down(ctx, &list, list.head, list.head + at)?;
            list.head = head;
            put(ctx, &list, list.head + at, &args[4])?;
        } else {
            let tail = list.tail.checked_add(1).ok_or_else(super::index_space)?;
            shift_up(ctx, &list, list.head + at, list.tail)?;
            put(ctx, &list, list.head + at, &args[4])?;
            list.tail = tail;
        }
        save(ctx, &mut list)?;
        Ok(Frame::Integer(list.len() as i64))
    })())
}

/// `LREM key count element`: removes matches from the head (`count > 0`),
/// the tail (`count < 0`) or everywhere (`0`), compacting the list toward
/// the end it walks from.
pub(super) fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let count = int_arg(&args[2])?;
        let Some(mut list) = existing_list(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let limit = if count == 0 {
            u64::MAX
        } else {
            count.unsigned_abs()
        };
        let reverse = count < 0;
        let target = &args[3];
        let mut removed = 0u64;
        let (mut lo, mut hi) = (list.head, list.tail);
        while lo < hi {
            let page = scan(ctx, &list, lo, hi, reverse, PAGE)?;
            let Some(&(last, _)) = page.last() else {
                break;
            };
            let full = page.len() == PAGE;
            for (index, value) in &page {
                if removed < limit && value == target {
                    removed += 1;
                } else if removed > 0 {
                    let to = if reverse {
                        index + removed
                    } else {
                        index - removed
                    };
                    put(ctx, &list, to, value)?;
                }
            }
            if !full {
                break;
            }
            if reverse {
                hi = last;
            } else {
                lo = last + 1;
            }
        }
        if removed > 0 && removed < list.len() {
            for i in 0..removed {
                let index = if reverse {
                    list.head + i
                } else {
                    list.tail - 1 - i
                };
                remove(ctx, &list, index)?;
            }
        }
        if reverse {
            list.head += removed;
        } else {
            list.tail -= removed;
        }
        if removed > 0 {
            save(ctx, &mut list)?;
        }
        Ok(Frame::Integer(removed as i64))
    })())
}

/// `LTRIM key start stop`: deletes what is outside the range (the whole
/// key in O(1) if nothing is left).
pub(super) fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
        let Some(mut list) = existing_list(ctx, &args[1])? else {
            return Ok(Frame::OK);
        };
        // Redis raises `ltrim` even when nothing is trimmed (before `del`).
        crate::command::raise_event(ctx, crate::config::NotifyFlags::LIST, "ltrim", &args[1]);
        match list.range(start, stop) {
            None => list.head = list.tail,
            Some((first, last)) => {
                let (keep_from, keep_to) = (list.head + first, list.head + last + 1);
                if keep_from == list.head && keep_to == list.tail {
                    return Ok(Frame::OK);
                }
                let kept = keep_to - keep_from;
                if kept < list.len() - kept {
                    // Keeping less than is dropped: copy what is kept into a
                    // new version of the list (O(kept)); the old version's
                    // subkeys go the way of a deleted key's. Trimming 10
                    // million elements to 10 then writes 10, not 10 million
                    // deletions in one write batch.
                    let mut values = Vec::with_capacity(kept.min(PAGE as u64) as usize);
                    walk(ctx, &list, (first, last), false, &mut |_, value| {
                        values.push(value);
                        true
                    })?;
                    let (key, expiry) = (list.coll.key.clone(), list.coll.expire_at_ms);
                    let fresh = ctx.ks().create_collection(key, Kind::List, expiry);
                    let mut fresh = List::of(fresh.map_err(engine_error)?);
                    for value in &values {
                        push(ctx, &mut fresh, End::Right, value)?;
                    }
                    save(ctx, &mut fresh)?;
                    return Ok(Frame::OK);
                }
                for i in (list.head..keep_from).chain(keep_to..list.tail) {
                    remove(ctx, &list, i)?;
                }
                (list.head, list.tail) = (keep_from, keep_to);
            }
        }
        save(ctx, &mut list)?;
        Ok(Frame::OK)
    })())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
pub(super) fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (mut rank, mut count, mut maxlen) = (1i64, None, 0u64);
        let mut rest = args[3..].iter();
        while let Some(opt) = rest.next() {
            let Some(arg) = rest.next() else {
                return Err(syntax_error());
            };
            if is(opt, "rank") {
                rank = int_arg(arg)?;
                if rank == 0 {
                    return Err(Frame::error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from \
                         the second ... or use negative to start from the end of the list",
                    ));
                }
            } else if is(opt, "count") {
                count = Some(positive(arg, "COUNT can't be negative")?);
            } else if is(opt, "maxlen") {
                maxlen = positive(arg, "MAXLEN can't be negative")?;
            } else {
                return Err(syntax_error());
            }
        }
        let none = || match count {
            Some(_) => Frame::Array(Vec::new()),
            None => Frame::Null,
        };
        let Some(list) = read_list(ctx, &args[1])? else {
            return Ok(none());
        };
        if list.len() == 0 {
            return Ok(none());
        }
        let reverse = rank < 0;
        let mut skip = rank.unsigned_abs() - 1;
        let wanted = match count {
            Some(0) => u64::MAX,
            Some(n) => n,
            None => 1,
        };
        let scanned_max = if maxlen == 0 { u64::MAX } else { maxlen };
        let mut scanned = 0u64;
        let mut found = Vec::new();
        walk(
            ctx,
            &list,
            (0, list.len() - 1),
            reverse,
            &mut |offset, value| {
                scanned += 1;
                if value == args[2] {
                    if skip > 0 {
                        skip -= 1;
                    } else {
                        found.push(Frame::Integer(offset as i64));
                    }
                }
                (found.len() as u64) < wanted && scanned < scanned_max
            },
        )?;
        Ok(match count {
            Some(_) => Frame::Array(found),
            None => found.pop().unwrap_or(Frame::Null),
        })
    })())
}
