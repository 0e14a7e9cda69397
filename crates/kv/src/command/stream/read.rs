//! Reading entries: `XRANGE`, `XREVRANGE`, `XREAD` and `XREADGROUP` (which
//! also moves a group's last-delivered id and fills its pending list).

use bytes::Bytes;

use super::groups::{advance_group, deliver, nogroup_read, touch_consumer};
use super::id::{Id, IdRules, parse_id, range_end, range_start};
use super::pel::Group;
use super::store::Stream;
use super::{raise, raise_more};
use crate::command::blocking::timeout_ms;
use crate::command::{Ctx, int_arg, is, reply, syntax_error, wrong_type};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;

/// `XRANGE key start end [COUNT n]`
pub(super) fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, false)
}

/// `XREVRANGE key end start [COUNT n]`
pub(super) fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, true)
}

fn range_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Frame {
    reply((|| {
        let (start_arg, end_arg) = if rev {
            (&args[3], &args[2])
        } else {
            (&args[2], &args[3])
        };
        let start = range_start(start_arg)?;
        let end = range_end(end_arg)?;
        let mut count: i64 = -1;
        let mut j = 4;
        while j < args.len() {
            if is(&args[j], "count") && j + 1 < args.len() {
                count = int_arg(&args[j + 1])?.max(0);
                j += 2;
            } else {
                return Err(syntax_error());
            }
        }
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(s) = Stream::read(ks, &args[1], now)? else {
            return Ok(Frame::Array(Vec::new()));
        };
        if count == 0 {
            return Ok(Frame::NullArray);
        }
        let count = usize::try_from(count.max(0)).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        s.each_entry(ks, (start, end), rev, count, |_, e| {
            out.push(e.frame());
            Ok(true)
        })?;
        Ok(Frame::Array(out))
    })())
}

/// What `XREAD`/`XREADGROUP` asked for.
struct ReadArgs {
    count: usize,
    /// `BLOCK`: the deadline (Unix ms, `None` = forever), if given.
    block: Option<Option<u64>>,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    /// Index of the first key.
    streams: usize,
    /// Number of keys.
    n: usize,
}

/// Parses the options as Redis's `xreadCommand` does.
fn parse_read(args: &[Bytes], group_cmd: bool, now_ms: u64) -> Result<ReadArgs, Frame> {
    let mut out = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        streams: 0,
        n: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = &args[i];
        if is(opt, "block") && more > 0 {
            i += 1;
            out.block = Some(timeout_ms(&args[i], now_ms)?);
        } else if is(opt, "count") && more > 0 {
            i += 1;
            out.count = usize::try_from(int_arg(&args[i])?.max(0)).unwrap_or(usize::MAX);
        } else if is(opt, "streams") && more > 0 {
            out.streams = i + 1;
            let rest = args.len() - out.streams;
            if !rest.is_multiple_of(2) {
                return Err(Frame::error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            out.n = rest / 2;
            break;
        } else if is(opt, "group") && more >= 2 {
            if !group_cmd {
                return Err(Frame::error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is(opt, "noack") {
            if !group_cmd {
                return Err(Frame::error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.noack = true;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if out.streams == 0 {
        return Err(syntax_error());
    }
    if group_cmd && out.group.is_none() {
        return Err(Frame::error("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(out)
}

/// Where one stream is read from.
enum From {
    /// Entries after this id.
    After(Id),
    /// `>`: entries the group has not delivered yet.
    New,
    /// A consumer's own pending entries from this id.
    History(Id),
}

/// `XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...`
pub(super) fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    read_generic(ctx, args, false)
}

/// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...`
pub(super) fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    read_generic(ctx, args, true)
}

fn read_generic(ctx: &mut Ctx<'_>, args: &[Bytes], group_cmd: bool) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let parsed = parse_read(args, group_cmd, now)?;
        let keys = &args[parsed.streams..parsed.streams + parsed.n];
        let ids = &args[parsed.streams + parsed.n..];
        let resp3 = ctx.resp3();
        let retrying = ctx.retrying();
        let ks = ctx.ks();
        let mut froms = Vec::with_capacity(parsed.n.min(1024));
        for (key, arg) in keys.iter().zip(ids) {
            // A key that changed type while a client waited on it reads as
            // absent on the re-run (Redis 7.0 keeps such a reader blocked).
            let s = match Stream::read(ks, key, now) {
                Err(err) if retrying && err == wrong_type() => None,
                found => found?,
            };
            if let Some((group, _)) = &parsed.group {
                let found = match &s {
                    Some(s) => s.group(ks, group)?,
                    None => None,
                };
                if found.is_none() && retrying {
                    return Err(Frame::error(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    ));
                }
                if found.is_none() {
                    return Err(nogroup_read(key, group));
                }
            }
            froms.push(match arg.as_ref() {
                b"$" if group_cmd => {
                    return Err(Frame::error(
                        "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                    ));
                }
                b"$" => From::After(s.map_or(Id::MIN, |s| s.meta.last_id)),
                b">" if !group_cmd => {
                    return Err(Frame::error(
                        "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                    ));
                }
                b">" => From::New,
                _ => {
                    let id = parse_id(arg, IdRules::STRICT)?.0;
                    if group_cmd {
                        From::History(id)
                    } else {
                        From::After(id)
                    }
                }
            });
        }
        let mut served = Vec::new();
        let mut new_consumers = Vec::new();
        let rerun = rerun_args(args, &parsed, &froms);
        for (key, from) in keys.iter().zip(froms) {
            let Some(mut s) = Stream::read(ks, key, now).ok().flatten() else {
                continue;
            };
            let entries = match &parsed.group {
                None => read_plain(ks, &s, from, parsed.count)?,
                Some((group, consumer)) => {
                    let opts = GroupRead {
                        group,
                        consumer,
                        count: parsed.count,
                        noack: parsed.noack,
                        now,
                    };
                    let (entries, created) = read_group(ks, &mut s, from, &opts)?;
                    if created {
                        new_consumers.push(key);
                    }
                    entries
                }
            };
            if let Some(entries) = entries {
                served.push((Frame::Bulk(key.clone()), Frame::Array(entries)));
            }
        }
        if group_cmd {
            raise(ks, b"", &[]);
            for key in new_consumers {
                raise_more(ks, key, "xgroup-createconsumer");
            }
        }
        if served.is_empty() {
            // Nothing to read: wait (a client that may not block, in MULTI
            // or a script, gets the timeout's answer at once).
            if let Some(deadline) = parsed.block {
                ctx.block(keys, deadline, &rerun);
            }
            return Ok(Frame::NullArray);
        }
        Ok(if resp3 {
            Frame::Map(served)
        } else {
            Frame::Array(
                served
                    .into_iter()
                    .map(|(k, v)| Frame::Array(vec![k, v]))
                    .collect(),
            )
        })
    })())
}

/// The arguments a blocked read re-runs with: `$` replaced by the last id
/// it stood for, and `COUNT 1000` if no count was given (Redis serves a
/// woken reader at most that many entries per stream).
fn rerun_args(args: &[Bytes], parsed: &ReadArgs, froms: &[From]) -> Vec<Bytes> {
    if parsed.block.is_none() {
        return Vec::new();
    }
    let mut out = args[..parsed.streams - 1].to_vec();
    if parsed.count == 0 {
        out.extend([Bytes::from_static(b"COUNT"), Bytes::from_static(b"1000")]);
    }
    out.extend_from_slice(&args[parsed.streams - 1..parsed.streams + parsed.n]);
    let ids = &args[parsed.streams + parsed.n..];
    for (arg, from) in ids.iter().zip(froms) {
        out.push(match from {
            From::After(id) if arg.as_ref() == b"$" => Bytes::from(id.to_string()),
            _ => arg.clone(),
        });
    }
    out
}

/// `XREAD` of one stream: the entries after an id, or `None` if there are none.
fn read_plain(
    ks: &mut Keyspace,
    s: &Stream,
    from: From,
    count: usize,
) -> Result<Option<Vec<Frame>>, Frame> {
    let From::After(after) = from else {
        return Ok(None);
    };
    let Some(start) = after.next() else {
        return Ok(None);
    };
    if s.len() == 0 {
        return Ok(None);
    }
    let mut out = Vec::new();
    s.each_entry(ks, (start, Id::MAX), false, count, |_, e| {
        out.push(e.frame());
        Ok(true)
    })?;
    Ok((!out.is_empty()).then_some(out))
}

/// One `XREADGROUP` stream's options.
struct GroupRead<'a> {
    group: &'a Bytes,
    consumer: &'a Bytes,
    count: usize,
    noack: bool,
    now: u64,
}

/// `XREADGROUP` of one stream: `None` if nothing is served; whether it
/// created the consumer.
fn read_group(
    ks: &mut Keyspace,
    s: &mut Stream,
    from: From,
    opts: &GroupRead<'_>,
) -> Result<(Option<Vec<Frame>>, bool), Frame> {
    let Some(mut group) = s.group(ks, opts.group)? else {
        return Ok((None, false));
    };
    let consumers = group.consumers;
    let served = match from {
        From::History(start) => {
            let consumer = touch_consumer(ks, s, &mut group, opts.consumer, opts.now)?;
            let out = history(ks, s, &group, &consumer.name, start, opts)?;
            s.put_consumer(ks, opts.group, &consumer)?;
            s.put_group(ks, &group)?;
            Some(out)
        }
        From::New | From::After(_) => {
            let top = match s.len() {
                0 => None,
                _ => s.edge(ks, true)?.map(|e| e.id),
            };
            if top.is_none_or(|top| top <= group.last_id) {
                return Ok((None, false));
            }
            let mut consumer = touch_consumer(ks, s, &mut group, opts.consumer, opts.now)?;
            let mut out = Vec::new();
            let start = group.last_id.next().unwrap_or(Id::MAX);
            let snapshot: &Stream = s;
            snapshot.each_entry(ks, (start, Id::MAX), false, opts.count, |ks, e| {
                advance_group(snapshot, &mut group, e.id);
                if !opts.noack {
                    deliver(ks, snapshot, &mut group, &mut consumer, e.id, opts.now)?;
                }
                out.push(e.frame());
                Ok(true)
            })?;
            s.put_consumer(ks, opts.group, &consumer)?;
            s.put_group(ks, &group)?;
            Some(out)
        }
    };
    Ok((served, group.consumers > consumers))
}

/// A consumer's own pending entries from `start` (Redis's
/// `streamReplyWithRangeFromConsumerPEL`): deleted entries come back as
/// `[id, nil]`; delivered ones count a delivery.
fn history(
    ks: &mut Keyspace,
    s: &Stream,
    group: &Group,
    consumer: &Bytes,
    start: Id,
    opts: &GroupRead<'_>,
) -> Result<Vec<Frame>, Frame> {
    let mut out = Vec::new();
    let mut lo = start;
    loop {
        let want = if opts.count == 0 {
            super::store::PAGE
        } else {
            (opts.count - out.len()).min(super::store::PAGE)
        };
        let ids = s.consumer_pel(ks, &group.name, consumer, (lo, Id::MAX), want)?;
        for &id in &ids {
            match s.entry(ks, id)? {
                Some(entry) => {
                    if let Some(mut nack) = s.nack(ks, &group.name, id)? {
                        nack.delivery_time = opts.now;
                        nack.delivery_count = nack.delivery_count.wrapping_add(1);
                        s.put_nack(ks, &group.name, id, &nack)?;
                    }
                    out.push(entry.frame());
                }
                None => out.push(Frame::Array(vec![id.frame(), Frame::NullArray])),
            }
        }
        let done = ids.len() < want || (opts.count > 0 && out.len() >= opts.count);
        match ids.last().and_then(|id| id.next()) {
            Some(next) if !done => lo = next,
            _ => return Ok(out),
        }
    }
}
