//! Consumer groups: `XGROUP` (CREATE, SETID, DESTROY, CREATECONSUMER,
//! DELCONSUMER, HELP), `XACK`, and the group bookkeeping `XREADGROUP` and
//! the claim commands share (delivering an entry, the read counter, lag).

use bytes::Bytes;

use super::id::{Id, IdRules, parse_id, parse_ids};
use super::pel::{Consumer, Group, Nack};
use super::store::{PAGE, Stream};
use super::{raise, subcommand};
use crate::command::{Ctx, int_arg, is, printable, reply};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;

/// The read counter Redis calls `SCG_INVALID_ENTRIES_READ`: unknown.
pub(super) const UNKNOWN_READS: i64 = -1;

fn text(bytes: &[u8]) -> String {
    printable(bytes, usize::MAX)
}

/// `NOGROUP` as `XREADGROUP` words it.
pub(super) fn nogroup_read(key: &[u8], group: &[u8]) -> Frame {
    Frame::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        text(key),
        text(group)
    ))
}

/// `NOGROUP` as `XPENDING`, `XCLAIM` and `XAUTOCLAIM` word it.
pub(super) fn nogroup_key(key: &[u8], group: &[u8]) -> Frame {
    Frame::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    ))
}

/// `NOGROUP` as `XGROUP` and `XINFO CONSUMERS` word it.
pub(super) fn nogroup(key: &[u8], group: &[u8]) -> Frame {
    Frame::error(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    ))
}

/// Whether an `XDEL`ed id may lie in `start..=end` (Redis's
/// `streamRangeHasTombstones`).
pub(super) fn has_tombstones(s: &Stream, start: Id, end: Id) -> bool {
    let max_deleted = s.meta.max_deleted;
    if s.len() == 0 || max_deleted.is_zero() || s.meta.first_id > max_deleted {
        return false;
    }
    start <= max_deleted && max_deleted <= end
}

/// How many entries were added up to `id`, if that can be known (Redis's
/// `streamEstimateDistanceFromFirstEverEntry`); [`UNKNOWN_READS`] if not.
pub(super) fn estimate_reads(s: &Stream, id: Id) -> i64 {
    let added = s.meta.entries_added as i64;
    if added == 0 {
        return 0;
    }
    if s.len() == 0 && id <= s.meta.last_id {
        return added;
    }
    if id == s.meta.last_id {
        return added;
    }
    if id > s.meta.last_id {
        return UNKNOWN_READS;
    }
    let max_deleted = s.meta.max_deleted;
    if max_deleted.is_zero() || max_deleted < s.meta.first_id {
        if id < s.meta.first_id {
            return added - s.len() as i64;
        }
        if id == s.meta.first_id {
            return added - s.len() as i64 + 1;
        }
    }
    UNKNOWN_READS
}

/// A group's lag (entries not yet delivered), or nil if unknown.
pub(super) fn lag(s: &Stream, group: &Group) -> Frame {
    let added = s.meta.entries_added as i64;
    if added == 0 {
        return Frame::Integer(0);
    }
    if group.entries_read != UNKNOWN_READS && !has_tombstones(s, group.last_id, Id::MAX) {
        return Frame::Integer(added - group.entries_read);
    }
    match estimate_reads(s, group.last_id) {
        UNKNOWN_READS => Frame::Null,
        reads => Frame::Integer(added - reads),
    }
}

/// Moves the group's last-delivered id to `id` (if later), keeping its
/// read counter as Redis does.
pub(super) fn advance_group(s: &Stream, group: &mut Group, id: Id) {
    if id <= group.last_id {
        return;
    }
    if group.entries_read != UNKNOWN_READS && !has_tombstones(s, id, Id::MAX) {
        group.entries_read += 1;
    } else if s.meta.entries_added > 0 {
        group.entries_read = estimate_reads(s, id);
    }
    group.last_id = id;
}

/// `XCLAIM ... LASTID id`: moves the group's last-delivered id up to
/// `id` (its read counter unchanged).
pub(super) fn advance_group_to(group: &mut Group, id: Id) {
    group.last_id = group.last_id.max(id);
}

/// The consumer `name`, its seen time set to `now`; created (and counted
/// in `group`) if absent. The caller saves both.
pub(super) fn touch_consumer(
    ks: &mut Keyspace,
    s: &Stream,
    group: &mut Group,
    name: &Bytes,
    now: u64,
) -> Result<Consumer, Frame> {
    Ok(match s.consumer(ks, &group.name, name)? {
        Some(mut c) => {
            c.seen_time = now;
            c
        }
        None => {
            group.consumers += 1;
            Consumer {
                name: name.clone(),
                seen_time: now,
                pending: 0,
            }
        }
    })
}

/// Moves pending entry `id` to `consumer` (from whoever had it), keeping
/// every count right; `nack` is its new state.
pub(super) fn assign(
    ks: &mut Keyspace,
    s: &Stream,
    group: &mut Group,
    consumer: &mut Consumer,
    id: Id,
    old: Option<&Nack>,
    nack: &Nack,
) -> Result<(), Frame> {
    match old {
        Some(old) if old.consumer != consumer.name => {
            s.remove_nack(ks, &group.name, id, &old.consumer)?;
            if let Some(mut previous) = s.consumer(ks, &group.name, &old.consumer)? {
                previous.pending = previous.pending.saturating_sub(1);
                s.put_consumer(ks, &group.name, &previous)?;
            }
            consumer.pending += 1;
        }
        Some(_) => {}
        None => {
            group.pending += 1;
            consumer.pending += 1;
        }
    }
    s.put_nack(ks, &group.name, id, nack)
}

/// Records the delivery of `id` to `consumer` by `XREADGROUP >`: a new
/// pending entry, or one taken over from another consumer.
pub(super) fn deliver(
    ks: &mut Keyspace,
    s: &Stream,
    group: &mut Group,
    consumer: &mut Consumer,
    id: Id,
    now: u64,
) -> Result<(), Frame> {
    let old = s.nack(ks, &group.name, id)?;
    let nack = Nack {
        consumer: consumer.name.clone(),
        delivery_time: now,
        delivery_count: 1,
    };
    assign(ks, s, group, consumer, id, old.as_ref(), &nack)
}

/// Acknowledges `id`: whether it was pending.
pub(super) fn ack(ks: &mut Keyspace, s: &Stream, group: &mut Group, id: Id) -> Result<bool, Frame> {
    let Some(nack) = s.nack(ks, &group.name, id)? else {
        return Ok(false);
    };
    s.remove_nack(ks, &group.name, id, &nack.consumer)?;
    group.pending = group.pending.saturating_sub(1);
    if let Some(mut owner) = s.consumer(ks, &group.name, &nack.consumer)? {
        owner.pending = owner.pending.saturating_sub(1);
        s.put_consumer(ks, &group.name, &owner)?;
    }
    Ok(true)
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// `XGROUP <subcommand> ...`
pub(super) fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let sub = subcommand(
            args,
            "xgroup",
            &[
                ("create", -5),
                ("setid", -5),
                ("destroy", 4),
                ("createconsumer", 5),
                ("delconsumer", 5),
                ("help", 2),
            ],
        )?;
        let syntax = || super::subcommand_syntax_error(args);
        if sub == "help" {
            return Ok(super::help(XGROUP_HELP));
        }
        let (create, setid) = (sub == "create", sub == "setid");
        let mut mkstream = false;
        let mut entries_read = UNKNOWN_READS;
        let mut i = 5;
        while i < args.len() {
            if create && is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if (create || setid) && is(&args[i], "entriesread") && i + 1 < args.len() {
                entries_read = int_arg(&args[i + 1])?;
                if entries_read < 0 && entries_read != UNKNOWN_READS {
                    return Err(Frame::error(
                        "ERR value for ENTRIESREAD must be positive or -1",
                    ));
                }
                i += 2;
            } else {
                return Err(syntax());
            }
        }
        let (key, name) = (&args[2], &args[3]);
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let mut s = Stream::existing(ks, key, now)?;
        let group = match &s {
            Some(s) => s.group(ks, name)?,
            None if mkstream => None,
            None => {
                return Err(Frame::error(
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
                ));
            }
        };
        if group.is_none() && matches!(sub, "setid" | "createconsumer" | "delconsumer") {
            return Err(nogroup(key, name));
        }
        match sub {
            "create" if args.len() <= 8 => {
                let id = match args[4].as_ref() {
                    b"$" => s.as_ref().map_or(Id::MIN, |s| s.meta.last_id),
                    arg => parse_id(arg, IdRules::STRICT)?.0,
                };
                if group.is_some() {
                    return Err(Frame::error("BUSYGROUP Consumer Group name already exists"));
                }
                let mut s = match s {
                    Some(s) => s,
                    None => Stream::create(ks, key, now)?,
                };
                let group = Group {
                    name: name.clone(),
                    last_id: id,
                    entries_read,
                    pending: 0,
                    consumers: 0,
                };
                s.put_group(ks, &group)?;
                s.meta.groups += 1;
                s.save(ks)?;
                raise(ks, key, &["xgroup-create"]);
                Ok(Frame::OK)
            }
            "setid" if args.len() == 5 || args.len() == 7 => {
                let (Some(s), Some(mut group)) = (s, group) else {
                    return Err(nogroup(key, name));
                };
                group.last_id = match args[4].as_ref() {
                    b"$" => s.meta.last_id,
                    arg => parse_id(arg, IdRules::LAX)?.0,
                };
                group.entries_read = entries_read;
                s.put_group(ks, &group)?;
                raise(ks, key, &["xgroup-setid"]);
                Ok(Frame::OK)
            }
            "destroy" => match (s.as_mut(), group) {
                (Some(s), Some(_)) => {
                    s.remove_group(ks, name)?;
                    s.save(ks)?;
                    raise(ks, key, &["xgroup-destroy"]);
                    Ok(Frame::Integer(1))
                }
                _ => Ok(Frame::Integer(0)),
            },
            "createconsumer" => {
                let (Some(s), Some(mut group)) = (s, group) else {
                    return Err(nogroup(key, name));
                };
                if s.consumer(ks, name, &args[4])?.is_some() {
                    return Ok(Frame::Integer(0));
                }
                let consumer = touch_consumer(ks, &s, &mut group, &args[4], now)?;
                s.put_consumer(ks, name, &consumer)?;
                s.put_group(ks, &group)?;
                raise(ks, key, &["xgroup-createconsumer"]);
                Ok(Frame::Integer(1))
            }
            "delconsumer" => {
                let (Some(s), Some(mut group)) = (s, group) else {
                    return Err(nogroup(key, name));
                };
                let Some(consumer) = s.consumer(ks, name, &args[4])? else {
                    return Ok(Frame::Integer(0));
                };
                let pending = delete_consumer(ks, &s, &mut group, &consumer)?;
                s.put_group(ks, &group)?;
                raise(ks, key, &["xgroup-delconsumer"]);
                Ok(Frame::Integer(pending as i64))
            }
            _ => Err(syntax()),
        }
    })())
}

/// Deletes a consumer and its pending entries; returns how many it had.
fn delete_consumer(
    ks: &mut Keyspace,
    s: &Stream,
    group: &mut Group,
    consumer: &Consumer,
) -> Result<u64, Frame> {
    let mut removed = 0;
    loop {
        let ids = s.consumer_pel(ks, &group.name, &consumer.name, (Id::MIN, Id::MAX), PAGE)?;
        for &id in &ids {
            s.remove_nack(ks, &group.name, id, &consumer.name)?;
            removed += 1;
        }
        if ids.len() < PAGE {
            break;
        }
    }
    group.pending = group.pending.saturating_sub(removed);
    group.consumers = group.consumers.saturating_sub(1);
    s.remove_consumer(ks, &group.name, &consumer.name)?;
    Ok(removed)
}

/// `XACK key group id [id ...]`
pub(super) fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(s) = Stream::read(ks, &args[1], now)? else {
            return Ok(Frame::Integer(0));
        };
        let Some(mut group) = s.group(ks, &args[2])? else {
            return Ok(Frame::Integer(0));
        };
        let ids = parse_ids(&args[3..])?;
        let mut acked = 0;
        for id in ids {
            if ack(ks, &s, &mut group, id)? {
                acked += 1;
            }
        }
        if acked > 0 {
            s.put_group(ks, &group)?;
        }
        raise(ks, &args[1], &[]);
        Ok(Frame::Integer(acked))
    })())
}
