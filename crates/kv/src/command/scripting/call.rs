//! `redis.call` and `redis.pcall`: which commands a script may run (Redis's
//! deny list: blocking, transaction, connection and replication commands),
//! how Lua arguments become command arguments (numbers as `%.17g`), and the
//! command run under the script's own protocol with its reply converted
//! back to Lua. Kept apart from the interpreter ([`super::vm`]) so the
//! rules read on their own.

use bytes::Bytes;
use mlua::{Lua, Value};

use super::convert::{error_table, format_g, frame_to_lua};
use crate::command::{Ctx, DENYOOM, WRITE, lookup, run, table};
use crate::protocol::ProtocolVersion;

/// Commands a script may not call (Redis's `noscript` flag).
fn denied(name: &str, args: &[Bytes]) -> bool {
    const DENIED: &[&str] = &[
        "auth",
        "bgrewriteaof",
        "bgsave",
        "blmove",
        "blpop",
        "brpop",
        "brpoplpush",
        "bzpopmax",
        "bzpopmin",
        "debug",
        "discard",
        "eval",
        "eval_ro",
        "evalsha",
        "evalsha_ro",
        "exec",
        "failover",
        "fcall",
        "fcall_ro",
        "function",
        "hello",
        "monitor",
        "multi",
        "psubscribe",
        "psync",
        "punsubscribe",
        "quit",
        "replconf",
        "replicaof",
        "reset",
        "save",
        "script",
        "shutdown",
        "slaveof",
        "ssubscribe",
        "subscribe",
        "sunsubscribe",
        "sync",
        "unsubscribe",
        "unwatch",
        "wait",
        "watch",
        "acl",
        "module",
        "latency",
    ];
    const DENIED_SUB: &[(&str, &[&str])] = &[
        (
            "client",
            &[
                "caching",
                "getname",
                "getredir",
                "id",
                "info",
                "kill",
                "list",
                "no-evict",
                "pause",
                "reply",
                "setname",
                "tracking",
                "trackinginfo",
                "unblock",
                "unpause",
                "no-touch",
            ],
        ),
        ("config", &["get", "resetstat", "rewrite", "set"]),
        ("cluster", &["reset"]),
    ];
    if DENIED.contains(&name) {
        return true;
    }
    DENIED_SUB.iter().any(|(container, subs)| {
        *container == name
            && args
                .get(1)
                .is_some_and(|sub| subs.iter().any(|s| sub.eq_ignore_ascii_case(s.as_bytes())))
    })
}

/// `redis.call` / `redis.pcall`: returns (reply, failed).
pub(super) fn call_command(
    lua: &Lua,
    ctx: &mut Ctx<'_>,
    argv: &[Value],
    resp3: bool,
    read_only: bool,
    allow_oom: bool,
) -> mlua::Result<(Value, bool)> {
    let fail = |text: &str| -> mlua::Result<(Value, bool)> {
        Ok((Value::Table(error_table(lua, text)?), true))
    };
    if argv.is_empty() {
        return fail("ERR Please specify at least one argument for this redis lib call");
    }
    let mut args = Vec::with_capacity(argv.len());
    for value in argv {
        match value {
            Value::String(s) => args.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Number(n) => args.push(Bytes::from(format_g(*n, 17))),
            Value::Integer(n) => args.push(Bytes::from(n.to_string())),
            _ => return fail("ERR Lua redis lib command arguments must be strings or integers"),
        }
    }
    let Some(index) = lookup(&args[0]) else {
        return fail("ERR Unknown Redis command called from script");
    };
    let spec = &table()[index];
    if !spec.arity_ok(args.len()) {
        return fail("ERR Wrong number of args calling Redis command from script");
    }
    if denied(spec.name, &args) {
        return fail("ERR This Redis command is not allowed from script");
    }
    if spec.has(WRITE) {
        if read_only {
            return fail("ERR Write commands are not allowed from read-only scripts.");
        }
        ctx.state.scripts.busy.mark_wrote();
    }
    let _ = allow_oom && spec.has(DENYOOM);
    let protocol = ctx.conn.protocol;
    ctx.conn.protocol = if resp3 {
        ProtocolVersion::Resp3
    } else {
        ProtocolVersion::Resp2
    };
    let reply = run(ctx, index, &args);
    ctx.conn.protocol = protocol;
    let failed = reply.is_error();
    Ok((frame_to_lua(lua, &reply, resp3)?, failed))
}
