//! Keyspace notifications (`notify-keyspace-events`): Redis publishes an
//! event on pub/sub channels whenever a key changes, so a client can react to
//! writes, expiries and evictions without polling (the proximity chapter's
//! location cache and any cache-invalidation scheme rely on it).
//!
//! Events come from two places. The keyspace raises its own (`expired`,
//! `evicted`, `del` when a collection's last element goes) as they happen.
//! Command events are derived by the dispatcher: every key a successful
//! write command modified (the keyspace records the keys it touches while
//! notifications are on) gets the command's event, named as Redis names it
//! ([`command_event`]: `INCR` raises `incrby`, `HMSET` raises `hset`...) in
//! the class of the command's group; `RENAME` raises `rename_from` on the
//! first key and `rename_to` on the second. A command whose events depend
//! on its options or outcome names them itself ([`EventNaming`]): it renames
//! the derived event (`ZADD ... INCR` raises `zincr`, `LMPOP ... LEFT`
//! `lpop`), or raises its own events in Redis's order and none is derived
//! (`LMOVE`: `lpush`/`rpush` on the destination, then `lpop`/`rpop` and
//! maybe `del` on the source; `EXPIRE` in the past: `del`; `GETEX`:
//! `expire`, `persist` or `del`; a `*STORE` of nothing: `del`).
//!
//! Publishing goes through the pub/sub hub like `PUBLISH`:
//! `__keyspace@0__:<key>` carries the event name, `__keyevent@0__:<event>`
//! carries the key. With notifications off (the default) nothing is recorded
//! and this costs one branch per write.

use bytes::{BufMut, Bytes, BytesMut};

use super::State;
use crate::config::NotifyFlags;
use crate::keyspace::{EventNaming, KeyEvent, Keyspace};

/// The class bit of a command group (Redis's group names).
pub(crate) fn group_class(group: &str) -> u32 {
    match group {
        "string" | "bitmap" | "hyperloglog" => NotifyFlags::STRING,
        "list" => NotifyFlags::LIST,
        "set" => NotifyFlags::SET,
        "hash" => NotifyFlags::HASH,
        "sorted-set" | "sorted_set" | "zset" | "geo" => NotifyFlags::ZSET,
        "stream" => NotifyFlags::STREAM,
        _ => NotifyFlags::GENERIC,
    }
}

/// The events Redis raises for a write command: on the first modified key,
/// and on the others (the same for most commands).
pub(crate) fn command_event(name: &'static str) -> (&'static str, &'static str) {
    let one = |e| (e, e);
    match name {
        "incr" | "decr" | "incrby" | "decrby" => one("incrby"),
        "set" | "setnx" | "setex" | "psetex" | "getset" | "mset" | "msetnx" => one("set"),
        "getdel" | "del" | "unlink" => one("del"),
        "expire" | "pexpire" | "expireat" | "pexpireat" => one("expire"),
        "rename" | "renamenx" => ("rename_from", "rename_to"),
        "copy" => one("copy_to"),
        "hmset" | "hsetnx" => one("hset"),
        "lpushx" => one("lpush"),
        "rpushx" => one("rpush"),
        "blpop" => one("lpop"),
        "brpop" => one("rpop"),
        "rpoplpush" | "brpoplpush" => ("rpop", "lpush"),
        "smove" => ("srem", "sadd"),
        "zincrby" => one("zincr"),
        "bzpopmin" => one("zpopmin"),
        "bzpopmax" => one("zpopmax"),
        "geoadd" => one("zadd"),
        "georadius" | "georadiusbymember" => one("georadiusstore"),
        "pfmerge" => one("pfadd"),
        "bitop" => one("set"),
        "bitfield" => one("setbit"),
        "sort" => one("sortstore"),
        other => one(other),
    }
}

/// Collects what a write command `name` of `group` did, in Redis's order:
/// keys expired or evicted on the way, one command event per modified key,
/// then the events raised after the change (`del` of an emptied collection,
/// the `expire` of a `SET ... EX`).
pub(crate) fn collect(ks: &mut Keyspace, name: &'static str, group: &str) -> Vec<KeyEvent> {
    let (mut events, after): (Vec<_>, Vec<_>) = ks
        .take_events()
        .into_iter()
        .partition(|e| e.class & (NotifyFlags::EXPIRED | NotifyFlags::EVICTED) != 0);
    // `SORT ... STORE` is a generic command that stores a list.
    let class = if name == "sort" {
        NotifyFlags::LIST
    } else {
        group_class(group)
    };
    let touched = ks.take_touched();
    let (first, rest) = match ks.take_naming() {
        EventNaming::Derived => command_event(name),
        EventNaming::Renamed(event) => (event, event),
        EventNaming::Own => {
            events.extend(after);
            return events;
        }
    };
    for (i, key) in touched.into_iter().enumerate() {
        events.push(KeyEvent {
            class,
            event: if i == 0 { first } else { rest },
            key,
        });
    }
    events.extend(after);
    events
}

/// Publishes events as `flags` says (channels `K`/`E`, classes).
pub(crate) fn publish(state: &State, flags: NotifyFlags, events: Vec<KeyEvent>) {
    for event in events {
        if !flags.wants(event.class) {
            continue;
        }
        if flags.0 & NotifyFlags::KEYSPACE != 0 {
            let channel = channel(b"__keyspace@0__:", &event.key);
            state
                .hub
                .publish(channel, Bytes::from_static(event.event.as_bytes()));
        }
        if flags.0 & NotifyFlags::KEYEVENT != 0 {
            let channel = channel(b"__keyevent@0__:", event.event.as_bytes());
            state.hub.publish(channel, event.key);
        }
    }
}

fn channel(prefix: &[u8], name: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + name.len());
    out.put_slice(prefix);
    out.put_slice(name);
    out.freeze()
}
