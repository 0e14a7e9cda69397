//! Scripting: Lua scripts (`EVAL`, `EVALSHA`, their `_RO` forms, `SCRIPT`)
//! and Redis 7 functions (`FUNCTION`, `FCALL`, `FCALL_RO`), with Redis's
//! Lua 5.1 semantics.
//!
//! **Atomicity.** A script runs inside its command's hold of the keyspace
//! lock, and inside one keyspace write batch: `redis.call` dispatches
//! through the same command table and [`run`] as a client's command (each
//! write nested in the batch, undone alone if it fails), and the whole
//! script's writes reach the engine as one commit. As in Redis, a script
//! that fails halfway keeps the writes it made before the error.
//!
//! **Busy scripts.** Other clients must learn that a script is running
//! without the keyspace lock the script holds. The running script
//! publishes its start time in [`crate::state::scripts::Busy`] (atomics).
//! A connection that wants the lock first tries it with a short timeout
//! ([`wait_for_keyspace`]); while it cannot get it and the script has run
//! past `busy-reply-threshold` (alias `lua-time-limit`, 5 s by default), it
//! answers `BUSY Redis is busy running a script...` without the lock
//! ([`busy_reply`]), and serves `SCRIPT KILL` / `FUNCTION KILL` there: they
//! only set the kill flag, which the script's instruction-count hook checks
//! every 10,000 instructions (an endless loop included) and turns into an
//! error that `pcall` cannot catch. A script that has called a write
//! command cannot be killed (`UNKILLABLE`), as in Redis. Clients that
//! arrive before the threshold simply wait for the lock, as Redis's clients
//! wait for its event loop.
//!
//! **Bounds.** Each interpreter's memory is capped (a failed allocation
//! fails the script, not the server), replies nest at most 1000 deep, and
//! library code run by `FUNCTION LOAD` stops after 500 ms.
//!
//! Libraries available to scripts: `string`, `table`, `math`, `bit`,
//! `cjson`, `cmsgpack`, `struct` (see [`libs`] for what each covers), the
//! `redis` table (`call`, `pcall`, `error_reply`, `status_reply`,
//! `sha1hex`, `log`, `setresp`, `set_repl`, `replicate_commands`,
//! `REPLY_*`/`LOG_*` constants), KEYS/ARGV. Scripts may touch keys they did
//! not declare. Globals are read-only, as in Redis 7.

mod convert;
mod functions;
mod libs;
mod offload;
#[cfg(test)]
mod tests;
mod vm;

use std::time::Duration;

use bytes::Bytes;
use mlua::Function;
use parking_lot::MutexGuard;

use super::{
    Ctx, NOAUTH, Spec, engine_error, int_arg, is, lookup, table, unknown_command, wrong_arity,
};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;
use crate::state::State;
use crate::state::scripts::{CachedScript, EvalState, KillOutcome};
use crate::state::session::ConnState;
use vm::{Mode, RunOptions};

/// Script flag `no-writes`.
pub(crate) const FLAG_NO_WRITES: u32 = 1;
/// Script flag `allow-oom`.
pub(crate) const FLAG_ALLOW_OOM: u32 = 1 << 1;
/// Script flag `allow-stale`.
pub(crate) const FLAG_ALLOW_STALE: u32 = 1 << 2;
/// Script flag `no-cluster`.
pub(crate) const FLAG_NO_CLUSTER: u32 = 1 << 3;
/// Script flag `allow-cross-slot-keys`.
pub(crate) const FLAG_ALLOW_CROSS_SLOT: u32 = 1 << 4;

/// Flag names in Redis's order (`FUNCTION LIST` prints them so).
pub(crate) const FLAG_NAMES: [(u32, &str); 5] = [
    (FLAG_NO_WRITES, "no-writes"),
    (FLAG_ALLOW_OOM, "allow-oom"),
    (FLAG_ALLOW_STALE, "allow-stale"),
    (FLAG_NO_CLUSTER, "no-cluster"),
    (FLAG_ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
];

/// A flag by name (case-insensitive, as `register_function` reads them).
pub(crate) fn parse_flag(name: &str) -> Option<u32> {
    FLAG_NAMES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(bit, _)| *bit)
}

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    let s = |name, arity, summary, handler| Spec {
        name,
        arity,
        flags: 0,
        keys: (0, 0, 0),
        group: "scripting",
        summary,
        handler,
    };
    vec![
        s("eval", -3, "Runs a Lua script.", eval),
        s(
            "evalsha",
            -3,
            "Runs a cached Lua script by its SHA1.",
            evalsha,
        ),
        s("eval_ro", -3, "Runs a read-only Lua script.", eval_ro),
        s(
            "evalsha_ro",
            -3,
            "Runs a cached read-only Lua script by its SHA1.",
            evalsha_ro,
        ),
        s("script", -2, "Manages the Lua script cache.", script),
        s("fcall", -3, "Calls a function.", functions::fcall),
        s(
            "fcall_ro",
            -3,
            "Calls a read-only function.",
            functions::fcall_ro,
        ),
        s(
            "function",
            -2,
            "Manages function libraries.",
            functions::function,
        ),
    ]
}

/// Redis's `BUSY` reply while a script (`function == false`) or a function runs.
fn busy_error(function: bool) -> Frame {
    Frame::error(if function {
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    } else {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    })
}

/// Takes the keyspace lock, or returns `None` once a script holding it has
/// run past `busy-reply-threshold` (the caller answers with [`busy_reply`]).
pub(crate) fn wait_for_keyspace(state: &State) -> Option<MutexGuard<'_, Keyspace>> {
    loop {
        let threshold = state.config.read().busy_reply_threshold;
        if state.scripts.busy.timed_out(threshold).is_some() {
            return None;
        }
        if let Some(ks) = state.db.try_lock_for(Duration::from_millis(10)) {
            return Some(ks);
        }
    }
}

/// The reply to a command that arrives while a script is busy: the usual
/// checks (unknown command, arity, `NOAUTH`), `SCRIPT KILL` and
/// `FUNCTION KILL`, and `BUSY` for everything else. Never takes the
/// keyspace lock.
pub(crate) fn busy_reply(state: &State, conn: &mut ConnState, args: &[Bytes]) -> Frame {
    let Some(index) = lookup(&args[0]) else {
        conn.flag_multi_error();
        return unknown_command(args);
    };
    let spec = &table()[index];
    if !spec.arity_ok(args.len()) {
        conn.flag_multi_error();
        return wrong_arity(spec.name);
    }
    if !conn.authenticated && !spec.has(NOAUTH) {
        conn.flag_multi_error();
        return Frame::error("NOAUTH Authentication required.");
    }
    let kill = args.len() == 2 && is(&args[1], "kill");
    if kill && (spec.name == "script" || spec.name == "function") {
        return kill_reply(state, spec.name == "function");
    }
    conn.flag_multi_error();
    let threshold = state.config.read().busy_reply_threshold;
    busy_error(state.scripts.busy.timed_out(threshold).unwrap_or(false))
}

/// `SCRIPT KILL` / `FUNCTION KILL`.
fn kill_reply(state: &State, function: bool) -> Frame {
    match state.scripts.busy.kill(function) {
        KillOutcome::NotBusy => Frame::error("NOTBUSY No scripts in execution right now."),
        KillOutcome::Unkillable => Frame::error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ),
        KillOutcome::WrongKind { function } => busy_error(function),
        KillOutcome::Killed => Frame::OK,
    }
}

/// Clears the busy flags when a script ends, even by a panic.
struct Running<'a>(&'a State);

impl<'a> Running<'a> {
    fn start(state: &'a State, function: bool) -> Self {
        state.scripts.busy.start(function);
        Running(state)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.scripts.busy.stop();
    }
}

/// Runs a compiled script or function under the keyspace lock (taken
/// already) and one write batch, with the busy flags set.
pub(crate) fn run_script(
    ctx: &mut Ctx<'_>,
    lua: &mlua::Lua,
    mode: Mode,
    function: &Function,
    keys: &[Bytes],
    args: &[Bytes],
    options: &RunOptions<'_>,
) -> Frame {
    let state = ctx.state;
    ctx.ks().begin_batch();
    let running = Running::start(state, mode == Mode::Function);
    let reply = vm::execute(lua, mode, function, keys, args, ctx, options);
    drop(running);
    match ctx.ks().commit_batch() {
        Ok(()) => reply,
        Err(err) => engine_error(err),
    }
}

/// Parses `numkeys` and splits keys from arguments (`args[2]` onwards).
fn split_keys(args: &[Bytes], bad_count: fn() -> Frame) -> Result<(&[Bytes], &[Bytes]), Frame> {
    let numkeys = int_arg(&args[2]).map_err(|_| bad_count())?;
    let rest = &args[3..];
    if numkeys > rest.len() as i64 {
        return Err(Frame::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(Frame::error("ERR Number of keys can't be negative"));
    }
    Ok(rest.split_at(numkeys as usize))
}

/// Reads a `#!lua flags=...` first line: the flags and where the code
/// starts (the line feed stays, so line numbers do not move). `None` flags
/// = no shebang (Redis's compatibility mode).
fn shebang(body: &[u8]) -> Result<(Option<u32>, usize), Frame> {
    if !body.starts_with(b"#!") {
        return Ok((None, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err(Frame::error("ERR Invalid script shebang"));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(Frame::error(format!(
            "ERR Unexpected engine in script shebang: {engine}"
        )));
    }
    let mut flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(Frame::error(format!(
                "ERR Unknown lua shebang option: {part}"
            )));
        };
        for flag in list.split(',') {
            match FLAG_NAMES.iter().find(|(_, name)| *name == flag) {
                Some((bit, _)) => flags |= bit,
                None => {
                    return Err(Frame::error(format!(
                        "ERR Unexpected flag in script shebang: {flag}"
                    )));
                }
            }
        }
    }
    Ok((Some(flags), end))
}

/// The `EVAL` interpreter, created on first use.
fn eval_lua<'g>(state: &State, eval: &'g mut EvalState) -> Result<&'g mlua::Lua, Frame> {
    if eval.lua.is_none() {
        let lua = vm::new(Mode::Eval, state.scripts.busy.clone()).map_err(|err| {
            Frame::Error(convert::one_line(
                format!("ERR {}", vm::lua_message(&err)).as_bytes(),
            ))
        })?;
        eval.lua = Some(lua);
    }
    Ok(eval.lua.as_ref().expect("just created"))
}

/// Compiles `body` into the cache (if new); returns its SHA1.
fn load_script(state: &State, eval: &mut EvalState, body: &[u8]) -> Result<String, Frame> {
    let sha = vm::sha1_hex(body);
    if eval.scripts.contains_key(&sha) {
        return Ok(sha);
    }
    let (flags, start) = shebang(body)?;
    let lua = eval_lua(state, eval)?;
    let function = vm::compile(lua, &body[start..], "@user_script").map_err(|message| {
        Frame::error(convert::one_line(
            format!("ERR Error compiling script (new function): {message}").as_bytes(),
        ))
    })?;
    let function = lua
        .create_registry_value(function)
        .map_err(|err| Frame::error(format!("ERR {}", vm::lua_message(&err))))?;
    eval.scripts
        .insert(sha.clone(), CachedScript { function, flags });
    Ok(sha)
}

fn eval(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    eval_generic(ctx, args, true, true)
}

fn noscript() -> Frame {
    Frame::error("NOSCRIPT No matching script. Please use EVAL.")
}

fn eval_generic(ctx: &mut Ctx<'_>, args: &[Bytes], by_sha: bool, read_only: bool) -> Frame {
    let (keys, argv) = match split_keys(args, super::not_integer) {
        Ok(split) => split,
        Err(reply) => return reply,
    };
    if by_sha && args[1].len() != 40 {
        return noscript();
    }
    let state = ctx.state;
    ctx.ks(); // keyspace before interpreter: the lock order
    let mut eval = state.scripts.eval.lock();
    let sha = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        if !eval.scripts.contains_key(&sha) {
            return noscript();
        }
        sha
    } else {
        match load_script(state, &mut eval, &args[1]) {
            Ok(sha) => sha,
            Err(reply) => return reply,
        }
    };
    let eval = &*eval;
    let script = &eval.scripts[&sha];
    let lua = eval
        .lua
        .as_ref()
        .expect("a cached script has an interpreter");
    let flags = script.flags;
    let no_writes = flags.is_some_and(|f| f & FLAG_NO_WRITES != 0);
    if read_only && flags.is_some() && !no_writes {
        return Frame::error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let function: Function = match lua.registry_value(&script.function) {
        Ok(function) => function,
        Err(err) => return Frame::error(format!("ERR {}", vm::lua_message(&err))),
    };
    let options = RunOptions {
        name: &sha,
        read_only: read_only || no_writes,
        allow_oom: flags.is_some_and(|f| f & FLAG_ALLOW_OOM != 0),
    };
    run_script(ctx, lua, Mode::Eval, &function, keys, argv, &options)
}

fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let state = ctx.state;
    let sub = &args[1];
    if is(sub, "help") && args.len() == 2 {
        return help();
    }
    if is(sub, "flush") {
        if args.len() > 3 || (args.len() == 3 && !is(&args[2], "sync") && !is(&args[2], "async")) {
            return Frame::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        }
        let mut eval = state.scripts.eval.lock();
        eval.scripts.clear();
        eval.lua = None;
        return Frame::OK;
    }
    if is(sub, "exists") && args.len() >= 3 {
        let eval = state.scripts.eval.lock();
        let found = args[2..]
            .iter()
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Frame::Integer(i64::from(eval.scripts.contains_key(&sha)))
            })
            .collect();
        return Frame::Array(found);
    }
    if is(sub, "load") && args.len() == 3 {
        let mut eval = state.scripts.eval.lock();
        return match load_script(state, &mut eval, &args[2]) {
            Ok(sha) => Frame::Bulk(Bytes::from(sha)),
            Err(reply) => reply,
        };
    }
    if is(sub, "kill") && args.len() == 2 {
        return kill_reply(state, false);
    }
    if is(sub, "debug") && args.len() == 3 {
        return Frame::error("ERR SCRIPT DEBUG is not supported");
    }
    subcommand_error("script", args)
}

/// Redis's errors for a container command's subcommand: wrong arity for a
/// known one, "unknown subcommand" otherwise.
pub(crate) fn subcommand_error(container: &str, args: &[Bytes]) -> Frame {
    const KNOWN: &[(&str, &[&str])] = &[
        (
            "script",
            &["debug", "exists", "flush", "help", "kill", "load"],
        ),
        (
            "function",
            &[
                "delete", "dump", "flush", "help", "kill", "list", "load", "restore", "stats",
            ],
        ),
    ];
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let known = KNOWN
        .iter()
        .any(|(c, subs)| *c == container && subs.contains(&sub.as_str()));
    if known {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{container}|{sub}' command"
        ));
    }
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        super::printable(&args[1], 128),
        container.to_ascii_uppercase()
    ))
}

fn help() -> Frame {
    let lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    Frame::Array(
        lines
            .iter()
            .map(|line| Frame::SimpleOwned((*line).to_string()))
            .collect(),
    )
}
