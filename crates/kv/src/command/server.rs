//! Connection and server commands: `PING`, `HELLO`, `AUTH`, `INFO`, `COMMAND`...
//!
//! These are what real clients send before any data command: the `redis`
//! crate sends `CLIENT SETINFO`, `redis-cli` sends `COMMAND DOCS`,
//! `redis-benchmark` asks `CONFIG GET save` and `appendonly`, RESP3 clients
//! start with `HELLO 3`. Getting them exactly right (reply shapes, error
//! texts) is what makes unmodified tools work.

use bytes::Bytes;

use super::{
    Ctx, NOAUTH, PUBSUB_OK, READONLY, Spec, TX_CONTROL, WRITE, engine_error, is, reply,
    syntax_error, table,
};
use crate::protocol::{Frame, ProtocolVersion};

/// The Redis version we report: clients gate features on it, and we
/// implement 7.x semantics for the commands we have.
pub const REDIS_VERSION: &str = "7.2.0";

pub(super) fn specs() -> Vec<Spec> {
    let s = |name, arity, flags, summary, handler| Spec {
        name,
        arity,
        flags,
        keys: (0, 0, 0),
        group: "server",
        summary,
        handler,
    };
    let c = |name, arity, flags, summary, handler| Spec {
        name,
        arity,
        flags,
        keys: (0, 0, 0),
        group: "connection",
        summary,
        handler,
    };
    let mut specs = vec![
        c(
            "ping",
            -1,
            PUBSUB_OK,
            "Returns PONG, or the given message.",
            ping,
        ),
        c("echo", 2, 0, "Returns the given message.", echo),
        c(
            "hello",
            -1,
            NOAUTH | PUBSUB_OK,
            "Handshakes: protocol version, authentication, client name.",
            hello,
        ),
        c(
            "auth",
            -2,
            NOAUTH | PUBSUB_OK,
            "Authenticates the connection.",
            auth,
        ),
        c(
            "quit",
            -1,
            NOAUTH | PUBSUB_OK | TX_CONTROL,
            "Closes the connection.",
            quit,
        ),
        c(
            "reset",
            1,
            NOAUTH | PUBSUB_OK | TX_CONTROL,
            "Resets the connection's state.",
            reset,
        ),
        c(
            "select",
            2,
            0,
            "Selects the database (only 0 exists).",
            select,
        ),
        s("dbsize", 1, READONLY, "Returns the number of keys.", dbsize),
        s("flushdb", -1, WRITE, "Deletes every key.", flush),
        s("flushall", -1, WRITE, "Deletes every key.", flush),
        s("time", 1, 0, "Returns the server time.", time),
        s(
            "info",
            -1,
            0,
            "Returns information and statistics about the server.",
            super::info::info,
        ),
        s(
            "command",
            -1,
            0,
            "Describes the server's commands.",
            command,
        ),
        s(
            "lastsave",
            1,
            0,
            "Returns the time of the last save (start time: no snapshots).",
            lastsave,
        ),
    ];
    specs.extend(super::client::specs());
    specs.extend(super::config::specs());
    specs
}

fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() > 2 {
        return super::wrong_arity("ping");
    }
    if ctx.conn.in_resp2_subscribed_context() {
        let message = args.get(1).cloned().unwrap_or_default();
        return Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(message)]);
    }
    match args.get(1) {
        Some(message) => Frame::Bulk(message.clone()),
        None => Frame::Simple("PONG"),
    }
}

fn echo(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    Frame::Bulk(args[1].clone())
}

/// Checks `AUTH`-style credentials; `Err` is the reply to send.
fn check_credentials(ctx: &mut Ctx<'_>, user: Option<&[u8]>, password: &[u8]) -> Result<(), Frame> {
    let required = ctx.state.config.read().requirepass.clone();
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && (required.is_empty() || service::auth::same_secret(password, required.as_bytes()))
    {
        ctx.conn.authenticated = true;
        return Ok(());
    }
    Err(Frame::error(
        "WRONGPASS invalid username-password pair or user is disabled.",
    ))
}

fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return syntax_error();
    }
    if args.len() == 2 && ctx.state.config.read().requirepass.is_empty() {
        return Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    }
    let user = (args.len() == 3).then(|| &args[1][..]);
    reply(check_credentials(ctx, user, &args[args.len() - 1]).map(|()| Frame::OK))
}

fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let mut version = ctx.conn.protocol;
        if let Some(arg) = args.get(1) {
            let n = super::int_arg(arg).map_err(|_| {
                Frame::error("ERR Protocol version is not an integer or out of range")
            })?;
            version = match n {
                2 => ProtocolVersion::Resp2,
                3 => ProtocolVersion::Resp3,
                _ => return Err(Frame::error("NOPROTO unsupported protocol version")),
            };
        }
        let mut i = 2;
        let mut name = None;
        while i < args.len() {
            let remaining = args.len() - i - 1;
            if is(&args[i], "auth") && remaining >= 2 {
                check_credentials(ctx, Some(&args[i + 1]), &args[i + 2])?;
                i += 3;
            } else if is(&args[i], "setname") && remaining >= 1 {
                super::client::validate_name(&args[i + 1])?;
                name = Some(args[i + 1].clone());
                i += 2;
            } else {
                return Err(Frame::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    super::printable(&args[i], 64)
                )));
            }
        }
        if !ctx.conn.authenticated {
            return Err(Frame::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            ));
        }
        if let Some(name) = name {
            *ctx.conn.info.name.lock() = name;
        }
        ctx.conn.protocol = version;
        let proto = if version == ProtocolVersion::Resp3 {
            3
        } else {
            2
        };
        Ok(Frame::Map(vec![
            (Frame::bulk("server"), Frame::bulk("redis")),
            (Frame::bulk("version"), Frame::bulk(REDIS_VERSION)),
            (Frame::bulk("proto"), Frame::Integer(proto)),
            (Frame::bulk("id"), Frame::Integer(ctx.conn.id as i64)),
            (Frame::bulk("mode"), Frame::bulk("standalone")),
            (Frame::bulk("role"), Frame::bulk("master")),
            (Frame::bulk("modules"), Frame::Array(Vec::new())),
        ]))
    })())
}

fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    ctx.conn.close_after_reply = true;
    Frame::OK
}

fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    super::transaction::discard_state(ctx);
    super::pubsub::unsubscribe_all(ctx);
    ctx.conn.protocol = ProtocolVersion::Resp2;
    *ctx.conn.info.name.lock() = Bytes::new();
    ctx.conn.authenticated = ctx.state.config.read().requirepass.is_empty();
    Frame::Simple("RESET")
}

fn select(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match super::int_arg(&args[1]) {
        Ok(0) => Frame::OK,
        Ok(_) => Frame::error("ERR DB index is out of range"),
        Err(err) => err,
    }
}

fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    Frame::Integer(ctx.ks().len() as i64)
}

fn flush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match args.get(1) {
        None => {}
        Some(mode) if args.len() == 2 && (is(mode, "sync") || is(mode, "async")) => {}
        Some(_) => return syntax_error(),
    }
    match ctx.ks().clear() {
        Ok(()) => Frame::OK,
        Err(err) => engine_error(err),
    }
}

fn time(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let (secs, micros) = clock::now_secs_and_micros();
    Frame::Array(vec![
        Frame::bulk(secs.to_string()),
        Frame::bulk(micros.to_string()),
    ])
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    Frame::Integer((ctx.state.started_unix_ms / 1000) as i64)
}

/// `COMMAND INFO`'s entry for one command (Redis 7's ten fields).
fn command_info(spec: &Spec) -> Frame {
    let mut flags = Vec::new();
    for (bit, name) in [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (super::DENYOOM, "denyoom"),
        (NOAUTH, "no_auth"),
        (PUBSUB_OK, "pubsub"),
    ] {
        if spec.has(bit) {
            flags.push(Frame::SimpleOwned(name.to_string()));
        }
    }
    let (first, last, step) = spec.keys;
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity.into()),
        Frame::Set(flags),
        Frame::Integer(first.into()),
        Frame::Integer(last.into()),
        Frame::Integer(step.into()),
        Frame::Set(vec![Frame::SimpleOwned(format!("@{}", spec.group))]),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

/// `COMMAND DOCS`'s entry for one command.
fn command_doc(spec: &Spec) -> (Frame, Frame) {
    let doc = Frame::Map(vec![
        (Frame::bulk("summary"), Frame::bulk(spec.summary)),
        (Frame::bulk("since"), Frame::bulk("1.0.0")),
        (Frame::bulk("group"), Frame::bulk(spec.group)),
    ]);
    (Frame::bulk(spec.name), doc)
}

fn named_specs(names: &[Bytes]) -> Vec<Option<&'static Spec>> {
    names
        .iter()
        .map(|name| super::lookup(name).map(|i| &table()[i]))
        .collect()
}

fn command(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(sub) = args.get(1) else {
        return Frame::Array(table().iter().map(command_info).collect());
    };
    if is(sub, "count") && args.len() == 2 {
        Frame::Integer(table().len() as i64)
    } else if is(sub, "list") && args.len() == 2 {
        Frame::Array(table().iter().map(|s| Frame::bulk(s.name)).collect())
    } else if is(sub, "info") {
        let specs = if args.len() == 2 {
            table().iter().map(Some).collect()
        } else {
            named_specs(&args[2..])
        };
        Frame::Array(
            specs
                .into_iter()
                .map(|s| s.map_or(Frame::Null, command_info))
                .collect(),
        )
    } else if is(sub, "docs") {
        let specs = if args.len() == 2 {
            table().iter().map(Some).collect()
        } else {
            named_specs(&args[2..])
        };
        Frame::Map(specs.into_iter().flatten().map(command_doc).collect())
    } else {
        Frame::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            super::printable(sub, 128)
        ))
    }
}
