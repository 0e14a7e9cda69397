//! `XINFO STREAM [FULL [COUNT n]]`, `XINFO GROUPS`, `XINFO CONSUMERS`.

use bytes::Bytes;

use super::entries::head;
use super::groups::{UNKNOWN_READS, lag, nogroup};
use super::id::Id;
use super::pel::Group;
use super::store::{PAGE, Stream};
use super::{help, subcommand, subcommand_syntax_error};
use crate::command::{Ctx, int_arg, is, reply};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn field(name: &'static str) -> Frame {
    Frame::Bulk(Bytes::from_static(name.as_bytes()))
}

/// `XINFO <subcommand> ...`
pub(super) fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let sub = subcommand(
            args,
            "xinfo",
            &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)],
        )?;
        if sub == "help" {
            return Ok(help(XINFO_HELP));
        }
        let now = ctx.now_ms;
        let ks = ctx.ks();
        let Some(s) = Stream::read(ks, &args[2], now)? else {
            return Err(Frame::error("ERR no such key"));
        };
        match sub {
            "consumers" => {
                let Some(group) = s.group(ks, &args[3])? else {
                    return Err(nogroup(&args[2], &args[3]));
                };
                let mut out = Vec::new();
                each_consumer(ks, &s, &group, |c| {
                    let idle = (now as i64).saturating_sub(c.seen_time as i64).max(0);
                    out.push(Frame::Map(vec![
                        (field("name"), Frame::Bulk(c.name.clone())),
                        (field("pending"), Frame::Integer(c.pending as i64)),
                        (field("idle"), Frame::Integer(idle)),
                    ]));
                })?;
                Ok(Frame::Array(out))
            }
            "groups" => {
                let mut out = Vec::new();
                for group in all_groups(ks, &s)? {
                    out.push(Frame::Map(vec![
                        (field("name"), Frame::Bulk(group.name.clone())),
                        (field("consumers"), Frame::Integer(group.consumers as i64)),
                        (field("pending"), Frame::Integer(group.pending as i64)),
                        (field("last-delivered-id"), group.last_id.frame()),
                        (field("entries-read"), entries_read(&group)),
                        (field("lag"), lag(&s, &group)),
                    ]));
                }
                Ok(Frame::Array(out))
            }
            _ => stream_info(ks, &s, args),
        }
    })())
}

fn entries_read(group: &Group) -> Frame {
    match group.entries_read {
        UNKNOWN_READS => Frame::Null,
        n => Frame::Integer(n),
    }
}

fn all_groups(ks: &mut Keyspace, s: &Stream) -> Result<Vec<Group>, Frame> {
    let mut out: Vec<Group> = Vec::new();
    loop {
        let after = out.last().map(|g| g.name.clone());
        let page = s.groups(ks, after.as_deref(), PAGE)?;
        let full = page.len() == PAGE;
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

fn each_consumer(
    ks: &mut Keyspace,
    s: &Stream,
    group: &Group,
    mut f: impl FnMut(&super::pel::Consumer),
) -> Result<(), Frame> {
    let mut after: Option<Bytes> = None;
    loop {
        let page = s.consumers(ks, &group.name, after.as_deref(), PAGE)?;
        page.iter().for_each(&mut f);
        match page.last() {
            Some(c) if page.len() == PAGE => after = Some(c.name.clone()),
            _ => return Ok(()),
        }
    }
}

/// `XINFO STREAM key [FULL [COUNT n]]`
fn stream_info(ks: &mut Keyspace, s: &Stream, args: &[Bytes]) -> Result<Frame, Frame> {
    let opts = &args[3..];
    let syntax = || subcommand_syntax_error(args);
    let full = !opts.is_empty();
    let mut count: i64 = 10;
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return Err(syntax());
        }
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return Err(syntax());
            }
            count = int_arg(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    // Redis's radix tree figures, from the node numbers (see `store`).
    let first = s.edge(ks, false)?;
    let last = s.edge(ks, true)?;
    let nodes = match (&first, &last) {
        (Some(f), Some(l)) => l.node - f.node + 1,
        _ => 0,
    };
    let mut map = vec![
        (field("length"), Frame::Integer(s.len() as i64)),
        (field("radix-tree-keys"), Frame::Integer(nodes as i64)),
        (field("radix-tree-nodes"), Frame::Integer(nodes as i64 + 1)),
        (field("last-generated-id"), s.meta.last_id.frame()),
        (field("max-deleted-entry-id"), s.meta.max_deleted.frame()),
        (
            field("entries-added"),
            Frame::Integer(s.meta.entries_added as i64),
        ),
        (field("recorded-first-entry-id"), s.meta.first_id.frame()),
    ];
    if !full {
        map.push((field("groups"), Frame::Integer(s.meta.groups as i64)));
        map.push((
            field("first-entry"),
            first.map_or(Frame::Null, |e| e.frame()),
        ));
        map.push((field("last-entry"), last.map_or(Frame::Null, |e| e.frame())));
        return Ok(Frame::Map(map));
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    map.push((field("entries"), Frame::Array(head(ks, s, count)?)));
    let mut groups = Vec::new();
    for group in all_groups(ks, s)? {
        groups.push(full_group(ks, s, &group, count)?);
    }
    map.push((field("groups"), Frame::Array(groups)));
    Ok(Frame::Map(map))
}

/// One group of `XINFO STREAM FULL`: its pending list and consumers, each
/// list cut at `count` (`0` = whole).
fn full_group(ks: &mut Keyspace, s: &Stream, group: &Group, count: usize) -> Result<Frame, Frame> {
    let limit = if count == 0 { usize::MAX } else { count };
    let mut pending = Vec::new();
    let mut lo = Id::MIN;
    while pending.len() < limit {
        let page = s.pel(
            ks,
            &group.name,
            (lo, Id::MAX),
            false,
            PAGE.min(limit - pending.len()),
        )?;
        let want = PAGE.min(limit - pending.len());
        let Some(last) = page.last().map(|(id, _)| *id) else {
            break;
        };
        let done = page.len() < want;
        for (id, nack) in page {
            pending.push(Frame::Array(vec![
                id.frame(),
                Frame::Bulk(nack.consumer),
                Frame::Integer(nack.delivery_time as i64),
                Frame::Integer(nack.delivery_count as i64),
            ]));
        }
        match last.next() {
            Some(next) if !done => lo = next,
            _ => break,
        }
    }
    let mut consumers = Vec::new();
    let mut list = Vec::new();
    each_consumer(ks, s, group, |c| list.push(c.clone()))?;
    for c in list {
        let mut own = Vec::new();
        let ids = s.consumer_pel(
            ks,
            &group.name,
            &c.name,
            (Id::MIN, Id::MAX),
            limit.min(1 << 20),
        )?;
        for id in ids {
            if let Some(nack) = s.nack(ks, &group.name, id)? {
                own.push(Frame::Array(vec![
                    id.frame(),
                    Frame::Integer(nack.delivery_time as i64),
                    Frame::Integer(nack.delivery_count as i64),
                ]));
            }
        }
        consumers.push(Frame::Map(vec![
            (field("name"), Frame::Bulk(c.name.clone())),
            (field("seen-time"), Frame::Integer(c.seen_time as i64)),
            (field("pel-count"), Frame::Integer(c.pending as i64)),
            (field("pending"), Frame::Array(own)),
        ]));
    }
    Ok(Frame::Map(vec![
        (field("name"), Frame::Bulk(group.name.clone())),
        (field("last-delivered-id"), group.last_id.frame()),
        (field("entries-read"), entries_read(group)),
        (field("lag"), lag(s, group)),
        (field("pel-count"), Frame::Integer(group.pending as i64)),
        (field("pending"), Frame::Array(pending)),
        (field("consumers"), Frame::Array(consumers)),
    ]))
}
