//! Pending entries: `XPENDING` (summary and extended), `XCLAIM` and
//! `XAUTOCLAIM` (taking over entries another consumer left idle).

use bytes::Bytes;

use super::groups::{advance_group_to, assign, nogroup_key, touch_consumer};
use super::id::{Id, IdRules, parse_id, range_end, range_start};
use super::pel::{Consumer, Group, Nack};
use super::raise;
use super::store::{PAGE, Stream};
use crate::command::{Ctx, int_arg, is, printable, reply, syntax_error};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;

/// The stream and group a pending-list command works on, or its `NOGROUP`.
fn stream_and_group(ks: &mut Keyspace, args: &[Bytes], now: u64) -> Result<(Stream, Group), Frame> {
    let s = Stream::read(ks, &args[1], now)?;
    let group = match &s {
        Some(s) => s.group(ks, &args[2])?,
        None => None,
    };
    match (s, group) {
        (Some(s), Some(group)) => Ok((s, group)),
        _ => Err(nogroup_key(&args[1], &args[2])),
    }
}

/// `XPENDING key group [[IDLE min-idle] start end count [consumer]]`
pub(super) fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let argc = args.len();
        if argc != 3 && !(6..=9).contains(&argc) {
            return Err(syntax_error());
        }
        let mut range = None;
        let mut min_idle = 0;
        if argc >= 6 {
            let mut at = 3;
            if is(&args[3], "idle") {
                min_idle = int_arg(&args[4])?;
                if argc < 8 {
                    return Err(syntax_error());
                }
                at += 2;
            }
            let count = int_arg(&args[at + 2])?.max(0) as u64;
            let start = range_start(&args[at])?;
            let end = range_end(&args[at + 1])?;
            range = Some((start, end, count, args.get(at + 3)));
        }
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let (s, group) = stream_and_group(ks, args, now)?;
        let Some((start, end, count, consumer)) = range else {
            return summary(ks, &s, &group);
        };
        let mut out = Vec::new();
        let consumer = match consumer {
            Some(name) => match s.consumer(ks, &group.name, name)? {
                Some(c) => Some(c.name),
                None => return Ok(Frame::Array(out)),
            },
            None => None,
        };
        let mut lo = start;
        let mut left = count;
        while left > 0 && lo <= end {
            let page: Vec<(Id, Nack)> = match &consumer {
                None => s.pel(ks, &group.name, (lo, end), false, PAGE)?,
                Some(name) => {
                    let ids = s.consumer_pel(ks, &group.name, name, (lo, end), PAGE)?;
                    let mut page = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some(nack) = s.nack(ks, &group.name, id)? {
                            page.push((id, nack));
                        }
                    }
                    page
                }
            };
            let Some(last) = page.last().map(|(id, _)| *id) else {
                break;
            };
            let full = page.len() == PAGE;
            for (id, nack) in page {
                let idle = (now as i64).saturating_sub(nack.delivery_time as i64);
                if min_idle != 0 && idle < min_idle {
                    continue;
                }
                out.push(Frame::Array(vec![
                    id.frame(),
                    Frame::Bulk(nack.consumer),
                    Frame::Integer(idle.max(0)),
                    Frame::Integer(nack.delivery_count as i64),
                ]));
                left -= 1;
                if left == 0 {
                    break;
                }
            }
            match last.next() {
                Some(next) if full => lo = next,
                _ => break,
            }
        }
        Ok(Frame::Array(out))
    })())
}

/// `XPENDING key group`: count, smallest and largest id, and per-consumer counts.
fn summary(ks: &mut Keyspace, s: &Stream, group: &Group) -> Result<Frame, Frame> {
    let first = s.pel(ks, &group.name, (Id::MIN, Id::MAX), false, 1)?;
    let last = s.pel(ks, &group.name, (Id::MIN, Id::MAX), true, 1)?;
    let (Some((first, _)), Some((last, _))) = (first.first(), last.first()) else {
        return Ok(Frame::Array(vec![
            Frame::Integer(0),
            Frame::Null,
            Frame::Null,
            Frame::NullArray,
        ]));
    };
    let mut owners = Vec::new();
    let mut after: Option<Bytes> = None;
    loop {
        let page = s.consumers(ks, &group.name, after.as_deref(), PAGE)?;
        for c in &page {
            if c.pending > 0 {
                owners.push(Frame::Array(vec![
                    Frame::Bulk(c.name.clone()),
                    Frame::Bulk(Bytes::from(c.pending.to_string())),
                ]));
            }
        }
        match page.last() {
            Some(c) if page.len() == PAGE => after = Some(c.name.clone()),
            _ => break,
        }
    }
    Ok(Frame::Array(vec![
        Frame::Integer(group.pending as i64),
        first.frame(),
        last.frame(),
        Frame::Array(owners),
    ]))
}

/// Claims pending entry `id` for `consumer` (created on first use):
/// Redis's shared core of `XCLAIM` and `XAUTOCLAIM`.
struct Claimer<'a> {
    name: &'a Bytes,
    consumer: Option<Consumer>,
    now: u64,
}

impl Claimer<'_> {
    fn claim(
        &mut self,
        ks: &mut Keyspace,
        s: &Stream,
        group: &mut Group,
        id: Id,
        old: Option<&Nack>,
        nack: &mut Nack,
    ) -> Result<(), Frame> {
        if self.consumer.is_none() {
            self.consumer = Some(touch_consumer(ks, s, group, self.name, self.now)?);
        }
        let consumer = self.consumer.as_mut().expect("set above");
        nack.consumer = consumer.name.clone();
        assign(ks, s, group, consumer, id, old, nack)
    }

    /// Drops pending entry `id` whose stream entry is gone.
    fn drop_stale(
        &mut self,
        ks: &mut Keyspace,
        s: &Stream,
        group: &mut Group,
        id: Id,
        nack: &Nack,
    ) -> Result<(), Frame> {
        s.remove_nack(ks, &group.name, id, &nack.consumer)?;
        group.pending = group.pending.saturating_sub(1);
        match &mut self.consumer {
            Some(c) if c.name == nack.consumer => c.pending = c.pending.saturating_sub(1),
            _ => {
                if let Some(mut owner) = s.consumer(ks, &group.name, &nack.consumer)? {
                    owner.pending = owner.pending.saturating_sub(1);
                    s.put_consumer(ks, &group.name, &owner)?;
                }
            }
        }
        Ok(())
    }

    /// Saves the consumer and group; raises `xgroup-createconsumer` if
    /// the consumer is new (`consumers`: the group's count before).
    fn finish(
        self,
        ks: &mut Keyspace,
        s: &Stream,
        group: &Group,
        consumers: u64,
    ) -> Result<(), Frame> {
        if let Some(c) = &self.consumer {
            s.put_consumer(ks, &group.name, c)?;
        }
        s.put_group(ks, group)?;
        let events: &[_] = if group.consumers > consumers {
            &["xgroup-createconsumer"]
        } else {
            &[]
        };
        raise(ks, &s.coll.key, events);
        Ok(())
    }
}

fn claimed(ks: &mut Keyspace, s: &Stream, id: Id, justid: bool) -> Result<Frame, Frame> {
    if justid {
        return Ok(id.frame());
    }
    Ok(s.entry(ks, id)?.map_or(Frame::NullArray, |e| e.frame()))
}

/// `XCLAIM key group consumer min-idle id [id ...] [IDLE ms] [TIME ms]
/// [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id]`
pub(super) fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let (s, mut group) = stream_and_group(ks, args, now)?;
        let consumers = group.consumers;
        let min_idle = parse_i64_strict(&args[4])
            .ok_or_else(|| Frame::error("ERR Invalid min-idle-time argument for XCLAIM"))?
            .max(0);
        let mut ids = Vec::new();
        let mut j = 5;
        while let Some(Ok((id, _))) = args.get(j).map(|a| parse_id(a, IdRules::STRICT)) {
            ids.push(id);
            j += 1;
        }
        let (mut force, mut justid) = (false, false);
        let mut delivery: Option<i64> = None;
        let mut retry: i64 = -1;
        let mut last_id = Id::MIN;
        let option_int = |arg: &[u8], what: &str| {
            parse_i64_strict(arg).ok_or_else(|| {
                Frame::error(format!("ERR Invalid {what} option argument for XCLAIM"))
            })
        };
        while j < args.len() {
            let more = args.len() - 1 - j;
            let opt = &args[j];
            if is(opt, "force") {
                force = true;
            } else if is(opt, "justid") {
                justid = true;
            } else if is(opt, "idle") && more > 0 {
                j += 1;
                delivery = Some((now as i64).saturating_sub(option_int(&args[j], "IDLE")?));
            } else if is(opt, "time") && more > 0 {
                j += 1;
                delivery = Some(option_int(&args[j], "TIME")?);
            } else if is(opt, "retrycount") && more > 0 {
                j += 1;
                retry = option_int(&args[j], "RETRYCOUNT")?;
            } else if is(opt, "lastid") && more > 0 {
                j += 1;
                last_id = parse_id(&args[j], IdRules::STRICT)?.0;
            } else {
                return Err(Frame::error(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    printable(opt, usize::MAX)
                )));
            }
            j += 1;
        }
        advance_group_to(&mut group, last_id);
        let delivery = match delivery {
            Some(t) if t >= 0 && t <= now as i64 => t as u64,
            _ => now,
        };
        let mut claimer = Claimer {
            name: &args[3],
            consumer: None,
            now,
        };
        let mut out = Vec::new();
        for id in ids {
            let old = s.nack(ks, &group.name, id)?;
            if s.entry(ks, id)?.is_none() {
                if let Some(old) = &old {
                    claimer.drop_stale(ks, &s, &mut group, id, old)?;
                }
                continue;
            }
            let mut nack = match &old {
                Some(old) => {
                    let idle = (now as i64).saturating_sub(old.delivery_time as i64);
                    if min_idle > 0 && idle < min_idle {
                        continue;
                    }
                    old.clone()
                }
                None if force => Nack {
                    consumer: Bytes::new(),
                    delivery_time: now,
                    delivery_count: 1,
                },
                None => continue,
            };
            nack.delivery_time = delivery;
            if retry >= 0 {
                nack.delivery_count = retry as u64;
            } else if !justid {
                nack.delivery_count = nack.delivery_count.wrapping_add(1);
            }
            claimer.claim(ks, &s, &mut group, id, old.as_ref(), &mut nack)?;
            out.push(claimed(ks, &s, id, justid)?);
        }
        claimer.finish(ks, &s, &group, consumers)?;
        Ok(Frame::Array(out))
    })())
}

/// `XAUTOCLAIM key group consumer min-idle start [COUNT n] [JUSTID]`
pub(super) fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let min_idle = parse_i64_strict(&args[4])
            .ok_or_else(|| Frame::error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
            .max(0);
        let start = range_start(&args[5])?;
        let mut count: u64 = 100;
        let mut justid = false;
        let mut j = 6;
        while j < args.len() {
            let more = args.len() - 1 - j;
            if is(&args[j], "count") && more > 0 {
                let max = i64::MAX / 16;
                count = parse_i64_strict(&args[j + 1])
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| Frame::error("ERR COUNT must be > 0"))?
                    as u64;
                j += 1;
            } else if is(&args[j], "justid") {
                justid = true;
            } else {
                return Err(syntax_error());
            }
            j += 1;
        }
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let (s, mut group) = stream_and_group(ks, args, now)?;
        let consumers = group.consumers;
        let mut attempts = count.saturating_mul(10);
        let mut left = count;
        let mut claimer = Claimer {
            name: &args[3],
            consumer: None,
            now,
        };
        let (mut out, mut deleted) = (Vec::new(), Vec::new());
        let mut lo = start;
        let cursor = 'scan: loop {
            let page = s.pel(ks, &group.name, (lo, Id::MAX), false, PAGE)?;
            let full = page.len() == PAGE;
            for (id, old) in page {
                if attempts == 0 || left == 0 {
                    break 'scan id;
                }
                attempts -= 1;
                lo = id.next().unwrap_or(Id::MAX);
                if s.entry(ks, id)?.is_none() {
                    claimer.drop_stale(ks, &s, &mut group, id, &old)?;
                    deleted.push(id.frame());
                    left -= 1;
                    continue;
                }
                let idle = (now as i64).saturating_sub(old.delivery_time as i64);
                if min_idle > 0 && idle < min_idle {
                    continue;
                }
                let mut nack = old.clone();
                nack.delivery_time = now;
                if !justid {
                    nack.delivery_count = nack.delivery_count.wrapping_add(1);
                }
                claimer.claim(ks, &s, &mut group, id, Some(&old), &mut nack)?;
                out.push(claimed(ks, &s, id, justid)?);
                left -= 1;
            }
            if !full || lo == Id::MAX {
                break Id::MIN;
            }
        };
        claimer.finish(ks, &s, &group, consumers)?;
        Ok(Frame::Array(vec![
            cursor.frame(),
            Frame::Array(out),
            Frame::Array(deleted),
        ]))
    })())
}
