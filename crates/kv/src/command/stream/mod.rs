//! Streams: an append-only log with consumer groups (XADD, XREADGROUP...).
//!
//! A stream is a durable work queue: producers `XADD` entries under
//! increasing ids; readers `XRANGE`/`XREAD` them; consumer groups hand each
//! entry to one consumer (`XREADGROUP >`), remember it as pending until
//! `XACK`, and let another consumer take over entries left idle (`XCLAIM`,
//! `XAUTOCLAIM`). Everything — entries, groups, pending lists, consumers —
//! is subkeys of one collection ([`store`] shows the layout), so on the lsm
//! engine an acknowledged `XADD` or `XACK` survives a crash like any write.
//!
//! Replies and error texts are Redis 7.0's, in RESP2 and RESP3.
//! `XREAD`/`XREADGROUP ... BLOCK ms` with nothing to read wait through
//! `Ctx::block` (see `state::blocking`) and re-run when a stream key is
//! written, with `$` pinned to the id it meant at the first run; inside
//! `MULTI` they answer nil at once, as Redis does.

mod entries;
mod groups;
mod id;
mod info;
mod pel;
mod pending;
mod rdb;
mod read;
mod store;
#[cfg(test)]
mod tests;

pub(crate) use rdb::{read as read_rdb, write as write_rdb};

use bytes::Bytes;

use crate::config::NotifyFlags;
use crate::keyspace::{EventNaming, Keyspace};

use super::{DENYOOM, READONLY, Spec, WRITE, printable, wrong_arity};
use crate::protocol::Frame;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = crate::command::in_group("stream");
    let one = (1, 1, 1);
    let none = (0, 0, 0);
    vec![
        s(
            "xadd",
            -5,
            WRITE | DENYOOM,
            one,
            "Appends an entry to a stream.",
            entries::xadd,
        ),
        s(
            "xlen",
            2,
            READONLY,
            one,
            "Returns the number of entries in a stream.",
            entries::xlen,
        ),
        s(
            "xdel",
            -3,
            WRITE,
            one,
            "Deletes entries from a stream.",
            entries::xdel,
        ),
        s(
            "xtrim",
            -4,
            WRITE,
            one,
            "Deletes the oldest entries of a stream.",
            entries::xtrim,
        ),
        s(
            "xsetid",
            -3,
            WRITE | DENYOOM,
            one,
            "Sets a stream's last id and counters.",
            entries::xsetid,
        ),
        s(
            "xrange",
            -4,
            READONLY,
            one,
            "Returns the entries within a range of ids.",
            read::xrange,
        ),
        s(
            "xrevrange",
            -4,
            READONLY,
            one,
            "Returns the entries within a range of ids, last first.",
            read::xrevrange,
        ),
        s(
            "xread",
            -4,
            READONLY,
            none,
            "Returns entries after given ids from several streams.",
            read::xread,
        ),
        s(
            "xreadgroup",
            -7,
            WRITE,
            none,
            "Returns entries for a consumer of a group.",
            read::xreadgroup,
        ),
        s(
            "xgroup",
            -2,
            WRITE,
            none,
            "Creates, changes and deletes consumer groups and consumers.",
            groups::xgroup,
        ),
        s(
            "xack",
            -4,
            WRITE,
            one,
            "Acknowledges entries of a group's pending list.",
            groups::xack,
        ),
        s(
            "xpending",
            -3,
            READONLY,
            one,
            "Returns a group's pending entries.",
            pending::xpending,
        ),
        s(
            "xclaim",
            -6,
            WRITE,
            one,
            "Takes over pending entries of another consumer.",
            pending::xclaim,
        ),
        s(
            "xautoclaim",
            -6,
            WRITE,
            one,
            "Takes over pending entries idle for long enough.",
            pending::xautoclaim,
        ),
        s(
            "xinfo",
            -2,
            READONLY,
            none,
            "Returns information about a stream, its groups or consumers.",
            info::xinfo,
        ),
    ]
}

/// The subcommand of a container command (`XGROUP`, `XINFO`), checked as
/// Redis's dispatcher does: unknown name, then the subcommand's arity.
fn subcommand(
    args: &[Bytes],
    command: &str,
    table: &[(&'static str, i32)],
) -> Result<&'static str, Frame> {
    let name = &args[1];
    let Some(&(sub, arity)) = table.iter().find(|(sub, _)| super::is(name, sub)) else {
        return Err(Frame::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            printable(name, 128),
            command.to_ascii_uppercase()
        )));
    };
    let argc = args.len() as i32;
    if (arity >= 0 && argc != arity) || (arity < 0 && argc < -arity) {
        return Err(wrong_arity(&format!("{command}|{sub}")));
    }
    Ok(sub)
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax_error(args: &[Bytes]) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        printable(&args[1], 128),
        printable(&args[0], 128).to_ascii_uppercase()
    ))
}

/// Raises Redis's stream events for `key` (`xadd`, `xgroup-create`...)
/// instead of the dispatcher's default (the command's name on every key it
/// touched): a stream command's events depend on what it did (`XACK`
/// raises none, `XREADGROUP` only `xgroup-createconsumer` when it made one).
fn raise(ks: &mut Keyspace, key: &[u8], events: &[&'static str]) {
    if !ks.notifying() {
        return;
    }
    ks.name_events(EventNaming::Own);
    for event in events {
        ks.raise(NotifyFlags::STREAM, event, key);
    }
}

/// One more stream event (after [`raise`]).
fn raise_more(ks: &mut Keyspace, key: &[u8], event: &'static str) {
    ks.raise(NotifyFlags::STREAM, event, key);
}

/// A `HELP` reply: status lines.
fn help(lines: &[&'static str]) -> Frame {
    Frame::Array(lines.iter().map(|l| Frame::Simple(l)).collect())
}
