//! Transactions: `MULTI` / `EXEC` / `DISCARD` and optimistic locking with `WATCH`.
//!
//! Redis's model: `MULTI` starts queueing; commands are checked (name,
//! arity) when queued and a failure there aborts the whole transaction at
//! `EXEC` (`EXECABORT`); `EXEC` runs the queue atomically, and runtime errors
//! of single commands are returned in place without rolling back the rest.
//! `WATCH` makes `EXEC` fail (a null reply) if any watched key was modified,
//! expired or evicted after the `WATCH`: check-and-set without locks held
//! across round trips. Atomicity comes from holding the keyspace lock for
//! the whole `EXEC`, and the dirty check happens under that same lock.

use bytes::Bytes;

use super::{Ctx, Spec, TX_CONTROL, engine_error, run};
use crate::protocol::Frame;

pub(super) fn specs() -> Vec<Spec> {
    let s = |name, arity, flags, summary, handler| Spec {
        name,
        arity,
        flags,
        keys: (0, 0, 0),
        group: "transactions",
        summary,
        handler,
    };
    vec![
        s("multi", 1, TX_CONTROL, "Starts a transaction.", multi),
        s(
            "exec",
            1,
            TX_CONTROL,
            "Runs the queued commands atomically.",
            exec,
        ),
        s(
            "discard",
            1,
            TX_CONTROL,
            "Drops the queued commands.",
            discard,
        ),
        Spec {
            keys: (1, -1, 1),
            ..s(
                "watch",
                -2,
                TX_CONTROL,
                "Makes the next EXEC conditional on keys not changing.",
                watch,
            )
        },
        s("unwatch", 1, 0, "Forgets every watched key.", unwatch),
    ]
}

fn set_multi_gauge(ctx: &Ctx<'_>) {
    let queued = ctx
        .conn
        .multi
        .as_ref()
        .map_or(-1, |m| m.queued.len() as i64);
    ctx.conn
        .info
        .multi
        .store(queued, std::sync::atomic::Ordering::Relaxed);
}

fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    if ctx.conn.multi.is_some() {
        return Frame::error("ERR MULTI calls can not be nested");
    }
    ctx.conn.multi = Some(Default::default());
    set_multi_gauge(ctx);
    Frame::OK
}

/// Leaves `MULTI` and forgets watched keys.
pub fn discard_state(ctx: &mut Ctx<'_>) {
    ctx.conn.multi = None;
    set_multi_gauge(ctx);
    unwatch_all(ctx);
}

fn unwatch_all(ctx: &mut Ctx<'_>) {
    if ctx.conn.watch.is_empty() {
        return;
    }
    let mut set = std::mem::take(&mut ctx.conn.watch);
    ctx.ks().unwatch_all(&mut set);
    ctx.conn.watch = set;
}

fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let Some(multi) = ctx.conn.multi.take() else {
        return Frame::error("ERR EXEC without MULTI");
    };
    set_multi_gauge(ctx);
    if multi.aborted {
        unwatch_all(ctx);
        return Frame::error("EXECABORT Transaction discarded because of previous errors.");
    }
    // Take the lock before the dirty check so nothing can slip in between.
    ctx.ks();
    if ctx.conn.watch.is_dirty() {
        unwatch_all(ctx);
        return Frame::NullArray;
    }
    unwatch_all(ctx);
    let mut replies = Vec::with_capacity(multi.queued.len());
    for (index, args) in &multi.queued {
        replies.push(run(ctx, *index, args));
    }
    Frame::Array(replies)
}

fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    if ctx.conn.multi.is_none() {
        return Frame::error("ERR DISCARD without MULTI");
    }
    discard_state(ctx);
    Frame::OK
}

fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.conn.multi.is_some() {
        return Frame::error("ERR WATCH inside MULTI is not allowed");
    }
    let now = ctx.now_ms;
    let mut set = std::mem::take(&mut ctx.conn.watch);
    for key in &args[1..] {
        // Collect an already-expired key first, so its deletion is not
        // mistaken for a modification after the WATCH.
        if let Err(err) = ctx.ks().lookup(key, now) {
            ctx.conn.watch = set;
            return engine_error(err);
        }
        ctx.ks().watch(&mut set, key.clone());
    }
    ctx.conn.watch = set;
    Frame::OK
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    unwatch_all(ctx);
    Frame::OK
}
