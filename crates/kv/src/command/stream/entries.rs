//! Writing entries: `XADD` (with its trimming options), `XTRIM`, `XDEL`,
//! `XLEN`, `XSETID`.

use bytes::Bytes;

use super::id::{Id, IdRules, parse_id, parse_ids};
use super::raise;
use super::store::{NODE_ENTRIES, PAGE, Stream};
use crate::command::{Ctx, int_arg, is, reply, syntax_error, wrong_arity};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;

/// Redis's largest listpack: an entry's fields and values may not total more.
const ENTRY_BYTES_MAX: usize = 1 << 30;

/// How a trim chooses what to delete.
#[derive(Debug, Clone, Copy)]
pub(super) enum Strategy {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Delete entries below this id.
    MinId(Id),
}

/// Parsed `MAXLEN`/`MINID`/`LIMIT` options.
#[derive(Debug, Clone, Copy)]
pub(super) struct Trim {
    /// What to delete.
    pub strategy: Strategy,
    /// `~`: delete whole nodes only.
    pub approx: bool,
    /// Most entries deleted (`0` = no limit).
    pub limit: u64,
}

/// `XADD`'s or `XTRIM`'s options.
#[derive(Default)]
struct AddArgs {
    trim: Option<Trim>,
    no_mkstream: bool,
    /// The explicit id and whether its sequence was given.
    id: Option<(Id, bool)>,
    /// Index of the id argument (XADD).
    id_pos: usize,
}

/// Parses options from `args[2]` on as Redis's
/// `streamParseAddOrTrimArgsOrReply` does.
fn parse_add_or_trim(args: &[Bytes], xadd: bool) -> Result<AddArgs, Frame> {
    let mut out = AddArgs::default();
    let mut strategy = None;
    let mut approx = false;
    let mut limit: Option<u64> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if strategy.is_some() {
                return Err(Frame::error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let next = args[i + 1].as_ref();
            if more >= 2 && (next == b"~" || next == b"=") {
                approx = next == b"~";
                i += 1;
            }
            let value = &args[i + 1];
            strategy = Some(if is(opt, "maxlen") {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(Frame::error("ERR The MAXLEN argument must be >= 0."));
                }
                Strategy::MaxLen(n as u64)
            } else {
                Strategy::MinId(parse_id(value, IdRules::STRICT)?.0)
            });
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Frame::error("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n as u64);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            out.no_mkstream = true;
        } else if xadd {
            let rules = IdRules {
                auto_seq: true,
                ..IdRules::STRICT
            };
            out.id = Some(parse_id(opt, rules)?);
            break;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    out.id_pos = i;
    let Some(strategy) = strategy else {
        if limit.is_some_and(|n| n > 0) {
            return Err(Frame::error(
                "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
            ));
        }
        if !xadd {
            return Err(Frame::error(
                "ERR syntax error, XTRIM must be called with a trimming strategy",
            ));
        }
        return Ok(out);
    };
    let limit = match (limit, approx) {
        (Some(_), false) => {
            return Err(Frame::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        (Some(n), true) => n,
        (None, true) => 100 * NODE_ENTRIES,
        (None, false) => 0,
    };
    out.trim = Some(Trim {
        strategy,
        approx,
        limit,
    });
    Ok(out)
}

/// Deletes entries from the head as `trim` says (Redis's `streamTrim`):
/// whole nodes while they fit, then (unless approximate) single entries.
/// Returns how many were deleted.
pub(super) fn trim(ks: &mut Keyspace, s: &mut Stream, trim: &Trim) -> Result<u64, Frame> {
    let mut deleted = 0;
    loop {
        if let Strategy::MaxLen(max) = trim.strategy
            && s.len() <= max
        {
            break;
        }
        let head = s.entries(ks, Id::MIN, Id::MAX, false, NODE_ENTRIES as usize + 1)?;
        let Some(node) = head.first().map(|e| e.node) else {
            break;
        };
        let node_len = head.iter().take_while(|e| e.node == node).count();
        let node_entries = &head[..node_len];
        if trim.limit > 0 && deleted + node_len as u64 > trim.limit {
            break;
        }
        let whole = match trim.strategy {
            Strategy::MaxLen(max) => s.len() - node_len as u64 >= max,
            Strategy::MinId(min) => node_entries.last().is_some_and(|e| e.id < min),
        };
        if whole {
            for entry in node_entries {
                s.remove_entry(ks, entry.id)?;
            }
            deleted += node_len as u64;
            continue;
        }
        if trim.approx {
            break;
        }
        for entry in node_entries {
            let stop = match trim.strategy {
                Strategy::MaxLen(max) => s.len() <= max,
                Strategy::MinId(min) => entry.id >= min,
            };
            if stop {
                break;
            }
            s.remove_entry(ks, entry.id)?;
            deleted += 1;
        }
        break;
    }
    if deleted > 0 {
        s.refresh_first_id(ks)?;
    }
    Ok(deleted)
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] *|id field value ...`
pub(super) fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let parsed = parse_add_or_trim(args, true)?;
        let fields = &args[(parsed.id_pos + 1).min(args.len())..];
        if fields.len() < 2 || !fields.len().is_multiple_of(2) {
            return Err(wrong_arity("xadd"));
        }
        if let Some((Id::MIN, true)) = parsed.id {
            return Err(Frame::error(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
        if fields.iter().map(Bytes::len).sum::<usize>() > ENTRY_BYTES_MAX {
            return Err(Frame::error("ERR Elements are too large to be stored"));
        }
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let mut s = match Stream::existing(ks, &args[1], now)? {
            Some(s) => s,
            None if parsed.no_mkstream => return Ok(Frame::Null),
            None => Stream::create(ks, &args[1], now)?,
        };
        let last = s.meta.last_id;
        if last == Id::MAX {
            return Err(Frame::error(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = match parsed.id {
            Some((id, true)) => Some(id),
            // Redis 7.0 fails this one with whatever `errno` held, which
            // is ERANGE from parsing: its "too large" text.
            Some((id, false)) if id.ms == last.ms && last.seq == u64::MAX => {
                return Err(Frame::error("ERR Elements are too large to be stored"));
            }
            Some((id, false)) if id.ms == last.ms => last.next(),
            Some((id, false)) => Some(id),
            None if now > last.ms => Some(Id::new(now, 0)),
            None => last.next(),
        };
        let id = id.filter(|id| *id > last).ok_or_else(|| {
            Frame::error(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )
        })?;
        s.append(ks, id, fields)?;
        let trimmed = match parsed.trim {
            Some(t) => trim(ks, &mut s, &t)?,
            None => 0,
        };
        s.save(ks)?;
        let events: &[_] = if trimmed > 0 {
            &["xadd", "xtrim"]
        } else {
            &["xadd"]
        };
        raise(ks, &args[1], events);
        Ok(id.frame())
    })())
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
pub(super) fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let parsed = parse_add_or_trim(args, false)?;
        let Some(t) = parsed.trim else {
            return Err(syntax_error());
        };
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(mut s) = Stream::existing(ks, &args[1], now)? else {
            return Ok(Frame::Integer(0));
        };
        let deleted = trim(ks, &mut s, &t)?;
        if deleted > 0 {
            s.save(ks)?;
            raise(ks, &args[1], &["xtrim"]);
        }
        Ok(Frame::Integer(deleted as i64))
    })())
}

/// `XDEL key id [id ...]`
pub(super) fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(mut s) = Stream::existing(ks, &args[1], now)? else {
            return Ok(Frame::Integer(0));
        };
        let ids = parse_ids(&args[2..])?;
        let mut deleted = 0;
        let mut first = false;
        for id in ids {
            if s.remove_entry(ks, id)? {
                first |= id == s.meta.first_id;
                s.meta.max_deleted = s.meta.max_deleted.max(id);
                deleted += 1;
            }
        }
        if deleted > 0 {
            if s.len() == 0 || first {
                s.refresh_first_id(ks)?;
            }
            s.save(ks)?;
            raise(ks, &args[1], &["xdel"]);
        }
        Ok(Frame::Integer(deleted))
    })())
}

/// `XLEN key`
pub(super) fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let s = Stream::read(ctx.ks(), &args[1], now)?;
        Ok(Frame::Integer(s.map_or(0, |s| s.len() as i64)))
    })())
}

/// `XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]`
pub(super) fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let id = parse_id(&args[2], IdRules::STRICT)?.0;
        let mut entries_added: Option<u64> = None;
        let mut max_deleted = Id::MIN;
        let mut i = 3;
        while i < args.len() {
            let more = args.len() - 1 - i;
            if is(&args[i], "entriesadded") && more > 0 {
                let n = int_arg(&args[i + 1])?;
                if n < 0 {
                    return Err(Frame::error("ERR entries_added must be positive"));
                }
                entries_added = Some(n as u64);
            } else if is(&args[i], "maxdeletedid") && more > 0 {
                max_deleted = parse_id(&args[i + 1], IdRules::STRICT)?.0;
                if id < max_deleted {
                    return Err(Frame::error(
                        "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    ));
                }
            } else {
                return Err(syntax_error());
            }
            i += 2;
        }
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(mut s) = Stream::existing(ks, &args[1], now)? else {
            return Err(Frame::error("ERR no such key"));
        };
        if s.len() > 0 {
            let top = s.edge(ks, true)?.map_or(Id::MIN, |e| e.id);
            if id < top {
                return Err(Frame::error(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|n| s.len() > n) {
                return Err(Frame::error(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        s.meta.last_id = id;
        if let Some(n) = entries_added {
            s.meta.entries_added = n;
        }
        if !max_deleted.is_zero() {
            s.meta.max_deleted = max_deleted;
        }
        s.save(ks)?;
        raise(ks, &args[1], &["xsetid"]);
        Ok(Frame::OK)
    })())
}

/// Pages through every entry of `s` from the head (for `XINFO STREAM FULL`).
pub(super) fn head(ks: &mut Keyspace, s: &Stream, count: usize) -> Result<Vec<Frame>, Frame> {
    let mut out = Vec::new();
    s.each_entry(ks, (Id::MIN, Id::MAX), false, count, |_, e| {
        out.push(e.frame());
        Ok(true)
    })?;
    debug_assert!(count == 0 || out.len() <= count.max(PAGE));
    Ok(out)
}
