//! `CLIENT`: what a connection says about itself and sees of others.
//!
//! `CLIENT SETINFO` matters more than it looks: the `redis` crate (and
//! other official clients) send it on every connect and treat an error as a
//! failed handshake in some versions.

use bytes::Bytes;

use super::{Ctx, Spec, is, printable};
use crate::protocol::Frame;

pub(super) fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "client",
        arity: -2,
        flags: 0,
        keys: (0, 0, 0),
        group: "connection",
        summary: "Inspects and names connections (ID, SETNAME, GETNAME, SETINFO, LIST, INFO, UNBLOCK, REPLY, NO-EVICT, NO-TOUCH).",
        handler: client,
    }]
}

/// Redis refuses names with spaces or non-printable characters.
pub(super) fn validate_name(name: &[u8]) -> Result<(), Frame> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

fn arity(sub: &str) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for 'client|{sub}' command"
    ))
}

/// `CLIENT REPLY ON|OFF|SKIP` (the connection drops the replies: see
/// `ConnState::reply_wanted`). `OFF` and `SKIP` send no reply themselves.
fn reply_mode(ctx: &mut Ctx<'_>, mode: &[u8]) -> Frame {
    let conn = &mut *ctx.conn;
    if is(mode, "on") {
        conn.reply_off = false;
        conn.reply_skip = false;
    } else if is(mode, "off") {
        conn.reply_off = true;
    } else if is(mode, "skip") {
        if !conn.reply_off {
            conn.reply_skip = true;
            conn.reply_skip_next = true;
        }
    } else {
        return super::syntax_error();
    }
    Frame::OK
}

fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = &args[1];
    let argc = args.len();
    let info = ctx.conn.info.clone();
    if is(sub, "id") {
        if argc != 2 {
            return arity("id");
        }
        Frame::Integer(info.id as i64)
    } else if is(sub, "setname") {
        if argc != 3 {
            return arity("setname");
        }
        if let Err(err) = validate_name(&args[2]) {
            return err;
        }
        *info.name.lock() = args[2].clone();
        Frame::OK
    } else if is(sub, "getname") {
        if argc != 2 {
            return arity("getname");
        }
        let name = info.name.lock().clone();
        if name.is_empty() {
            Frame::Null
        } else {
            Frame::Bulk(name)
        }
    } else if is(sub, "setinfo") {
        if argc != 4 {
            return arity("setinfo");
        }
        let mut lib = info.lib.lock();
        if is(&args[2], "lib-name") {
            lib.0 = args[3].clone();
        } else if is(&args[2], "lib-ver") {
            lib.1 = args[3].clone();
        } else {
            return Frame::error(format!(
                "ERR Unrecognized option '{}'",
                printable(&args[2], 64)
            ));
        }
        Frame::OK
    } else if is(sub, "list") {
        let mut text = String::new();
        for client in ctx.state.clients.list() {
            text.push_str(&client.line(super::name_of));
            text.push('\n');
        }
        Frame::Bulk(Bytes::from(text))
    } else if is(sub, "info") {
        if argc != 2 {
            return arity("info");
        }
        Frame::Bulk(Bytes::from(format!("{}\n", info.line(super::name_of))))
    } else if is(sub, "reply") {
        if argc != 3 {
            return arity("reply");
        }
        reply_mode(ctx, &args[2])
    } else if is(sub, "no-evict") || is(sub, "no-touch") {
        let name = if is(sub, "no-evict") {
            "no-evict"
        } else {
            "no-touch"
        };
        if argc != 3 {
            return arity(name);
        }
        let on = if is(&args[2], "on") {
            true
        } else if is(&args[2], "off") {
            false
        } else {
            return super::syntax_error();
        };
        if name == "no-evict" {
            ctx.conn.no_evict = on;
        } else {
            ctx.conn.no_touch = on;
        }
        Frame::OK
    } else if is(sub, "unblock") {
        unblock(ctx, args)
    } else {
        Frame::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            printable(sub, 128)
        ))
    }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: ends a blocked client's wait (see
/// `crate::state::blocking`); `1` if it was blocked.
fn unblock(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    use crate::keyspace::blocking::Unblock;
    match args.len() {
        2 => return arity("unblock"),
        3 | 4 => {}
        _ => {
            return Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                printable(&args[1], 128)
            ));
        }
    }
    let id = match super::int_arg(&args[2]) {
        Ok(id) => id,
        Err(err) => return err,
    };
    let how = match args.get(3) {
        None => Unblock::Timeout,
        Some(arg) if is(arg, "timeout") => Unblock::Timeout,
        Some(arg) if is(arg, "error") => Unblock::Error,
        Some(_) => {
            return Frame::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        }
    };
    let unblocked = u64::try_from(id).is_ok_and(|id| ctx.ks().unblock_client(id, how));
    Frame::Integer(i64::from(unblocked))
}
