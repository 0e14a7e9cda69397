//! Pub/sub commands: `SUBSCRIBE`, `PSUBSCRIBE`, their inverses, `PUBLISH`, `PUBSUB`.
//!
//! Confirmations have Redis's shape: one `[kind, channel, count]` reply per
//! channel, where `count` is the client's total subscriptions; in RESP3 they
//! are out-of-band push frames, in RESP2 plain arrays. The routing itself is
//! in [`crate::pubsub`].

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Ctx, PUBSUB, PUBSUB_OK, Spec, is, printable};
use crate::protocol::Frame;
use crate::pubsub::Kind;

pub(super) fn specs() -> Vec<Spec> {
    let s = |name, arity, flags, summary, handler| Spec {
        name,
        arity,
        flags: flags | PUBSUB,
        keys: (0, 0, 0),
        group: "pubsub",
        summary,
        handler,
    };
    vec![
        s(
            "subscribe",
            -2,
            PUBSUB_OK,
            "Listens for messages published to channels.",
            subscribe,
        ),
        s(
            "unsubscribe",
            -1,
            PUBSUB_OK,
            "Stops listening to channels (all if none named).",
            unsubscribe,
        ),
        s(
            "psubscribe",
            -2,
            PUBSUB_OK,
            "Listens for messages on channels matching patterns.",
            psubscribe,
        ),
        s(
            "punsubscribe",
            -1,
            PUBSUB_OK,
            "Stops listening to patterns (all if none named).",
            punsubscribe,
        ),
        s(
            "publish",
            3,
            0,
            "Posts a message to a channel; returns how many clients received it.",
            publish,
        ),
        s(
            "pubsub",
            -2,
            0,
            "Inspects channels and patterns (CHANNELS, NUMSUB, NUMPAT).",
            pubsub,
        ),
    ]
}

fn confirmation(ctx: &Ctx<'_>, kind: &'static str, name: Option<Bytes>) -> Frame {
    let count = (ctx.conn.channels.len() + ctx.conn.patterns.len()) as i64;
    let items = vec![
        Frame::bulk(kind),
        Frame::optional(name),
        Frame::Integer(count),
    ];
    if ctx.resp3() {
        Frame::Push(items)
    } else {
        Frame::Array(items)
    }
}

fn publish_counts(ctx: &Ctx<'_>) {
    let info = &ctx.conn.info;
    info.subscriptions[0].store(ctx.conn.channels.len() as i64, Ordering::Relaxed);
    info.subscriptions[1].store(ctx.conn.patterns.len() as i64, Ordering::Relaxed);
}

fn subscribe_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> Frame {
    let mut replies = Vec::with_capacity(args.len() - 1);
    ctx.conn.inbox_used = true;
    for name in &args[1..] {
        ctx.state
            .hub
            .subscribe(kind, name.clone(), &ctx.conn.subscriber);
        match kind {
            Kind::Channel => ctx.conn.channels.insert(name.clone()),
            Kind::Pattern => ctx.conn.patterns.insert(name.clone()),
        };
        let word = if kind == Kind::Channel {
            "subscribe"
        } else {
            "psubscribe"
        };
        replies.push(confirmation(ctx, word, Some(name.clone())));
    }
    publish_counts(ctx);
    Frame::Sequence(replies)
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, names: &[Bytes], kind: Kind) -> Frame {
    let word = if kind == Kind::Channel {
        "unsubscribe"
    } else {
        "punsubscribe"
    };
    let names: Vec<Bytes> = if names.is_empty() {
        let set = if kind == Kind::Channel {
            &ctx.conn.channels
        } else {
            &ctx.conn.patterns
        };
        set.iter().cloned().collect()
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        return Frame::Sequence(vec![confirmation(ctx, word, None)]);
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        ctx.state.hub.unsubscribe(kind, &name, ctx.conn.id);
        match kind {
            Kind::Channel => ctx.conn.channels.remove(&name),
            Kind::Pattern => ctx.conn.patterns.remove(&name),
        };
        replies.push(confirmation(ctx, word, Some(name)));
    }
    publish_counts(ctx);
    Frame::Sequence(replies)
}

/// Drops every subscription of the client (on `RESET` and disconnect).
pub fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    let _ = unsubscribe_generic(ctx, &[], Kind::Channel);
    let _ = unsubscribe_generic(ctx, &[], Kind::Pattern);
}

fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    subscribe_generic(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    subscribe_generic(ctx, args, Kind::Pattern)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    unsubscribe_generic(ctx, &args[1..], Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    unsubscribe_generic(ctx, &args[1..], Kind::Pattern)
}

fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    Frame::Integer(ctx.state.hub.publish(args[1].clone(), args[2].clone()) as i64)
}

fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let hub = &ctx.state.hub;
    let sub = &args[1];
    if is(sub, "channels") && args.len() <= 3 {
        let channels = hub.channels(args.get(2).map(|p| &p[..]));
        Frame::Array(channels.into_iter().map(Frame::Bulk).collect())
    } else if is(sub, "numsub") {
        let pairs = args[2..]
            .iter()
            .map(|c| (Frame::Bulk(c.clone()), Frame::Integer(hub.numsub(c) as i64)))
            .collect();
        Frame::Map(pairs)
    } else if is(sub, "numpat") && args.len() == 2 {
        Frame::Integer(hub.numpat() as i64)
    } else {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            printable(sub, 128)
        ))
    }
}
