//! The Lua interpreter: creation (libraries, sandbox, hooks, memory bound)
//! and running one script with `redis.call` wired to the command table.
//!
//! Each interpreter is a vendored Lua 5.1 (Redis's dialect) behind a
//! mutex in [`crate::state::scripts`]. `sandbox.lua` builds the environment
//! once; this file supplies what must be native: running commands
//! ([`execute`], through a scoped function that borrows the caller's
//! [`Ctx`] for exactly one script), SHA1, logging, Redis's random
//! generator, and the libraries (`bit`, `cjson`, `cmsgpack`, `struct`).
//!
//! Bounds: the interpreter's memory is capped ([`MEMORY_LIMIT`]); an
//! allocation past it fails the script with an error, not the server. An
//! instruction-count hook runs every [`HOOK_INSTRUCTIONS`] instructions, so
//! even `while true do end` sees `SCRIPT KILL`, and `FUNCTION LOAD` code is
//! stopped after [`LOAD_TIMEOUT`].

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{
    ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic,
    VmState,
};
use parking_lot::Mutex;

use super::convert::{error_table, format_g, frame_to_lua, lua_to_frame, one_line};
use super::libs;
use crate::command::{Ctx, DENYOOM, WRITE, lookup, run, table};
use crate::protocol::{Frame, ProtocolVersion};
use crate::state::scripts::Busy;

/// Bytes one interpreter may allocate (scripts, their data, cached code).
pub(crate) const MEMORY_LIMIT: usize = 256 * 1024 * 1024;
/// The kill / timeout hook runs this often.
const HOOK_INSTRUCTIONS: u32 = 10_000;
/// Longest a library's top-level code may run in `FUNCTION LOAD` (Redis's 500 ms).
pub(crate) const LOAD_TIMEOUT: Duration = Duration::from_millis(500);
/// The version scripts see in `redis.REDIS_VERSION`.
const VERSION: &str = "7.0.15";
const VERSION_NUM: u32 = 0x00_07_00_0f;

/// Named registry slots.
const SANDBOX: &str = "hyperscale.sandbox";
const RUN: &str = "hyperscale.run";
pub(super) const PENDING: &str = "hyperscale.pending";

/// When the running `FUNCTION LOAD` must stop (in the interpreter's app data).
struct LoadDeadline(Option<Instant>);

/// What `redis.register_function` collects during a `FUNCTION LOAD`.
#[derive(Default)]
pub(crate) struct Registered {
    /// (name, callback, description, flags) in registration order.
    pub(crate) functions: Vec<(String, Function, Option<String>, u32)>,
}

/// Which interpreter: `EVAL` scripts or `FUNCTION` libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `EVAL`: `KEYS` / `ARGV` are globals.
    Eval,
    /// `FCALL`: keys and args are the callback's arguments.
    Function,
}

/// A new interpreter with Redis's environment.
pub(crate) fn new(mode: Mode, busy: Arc<Busy>) -> mlua::Result<Lua> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    lua.set_memory_limit(MEMORY_LIMIT)?;
    let host = lua.create_table()?;
    host.set("run", lua.create_table()?)?;
    host.set("version", VERSION)?;
    host.set("version_num", VERSION_NUM)?;
    host.set(
        "sha1hex",
        lua.create_function(|_, data: mlua::String| Ok(sha1_hex(&data.as_bytes())))?,
    )?;
    host.set(
        "log",
        lua.create_function(|_, (level, text): (u8, mlua::String)| {
            let text = text.to_string_lossy();
            match level {
                0 => tracing::debug!(target: "kv::script", "{text}"),
                1 | 2 => tracing::info!(target: "kv::script", "{text}"),
                _ => tracing::warn!(target: "kv::script", "{text}"),
            }
            Ok(())
        })?,
    )?;
    host.set(
        "where",
        lua.create_function(|lua, ()| Ok(error_position(lua)))?,
    )?;
    // redis.call is native so that `return redis.call(...)` (a tail call)
    // keeps the script's frame for the error position; its error table
    // travels beside the raised error and the handler picks it up.
    host.set(
        "call",
        lua.create_function(|lua, args: MultiValue| {
            let run: Table = lua.named_registry_value(RUN)?;
            let (reply, failed) = match run.raw_get::<Value>("impl")? {
                Value::Function(command) => command.call::<(Value, bool)>(args)?,
                _ => (
                    Value::Table(error_table(
                        lua,
                        "ERR redis.call/pcall can only be called inside a script invocation",
                    )?),
                    true,
                ),
            };
            if failed {
                lua.set_named_registry_value(PENDING, reply)?;
                return Err(mlua::Error::runtime("redis.call failed"));
            }
            Ok(reply)
        })?,
    )?;
    host.set(
        "take_pending",
        lua.create_function(|lua, ()| {
            let pending: Value = lua.named_registry_value(PENDING)?;
            lua.set_named_registry_value(PENDING, Value::Nil)?;
            Ok(pending)
        })?,
    )?;
    let killed_flag = busy.clone();
    host.set(
        "killed",
        lua.create_function(move |_, ()| Ok(killed_flag.kill_requested()))?,
    )?;
    host.set(
        "known_command",
        lua.create_function(|_, name: mlua::String| Ok(lookup(&name.as_bytes()).is_some()))?,
    )?;
    let rng = Arc::new(Mutex::new(Rand48::default()));
    let random = rng.clone();
    host.set(
        "random",
        lua.create_function(move |_, ()| {
            let r = random.lock().next() % i32::MAX;
            Ok(f64::from(r) / f64::from(i32::MAX))
        })?,
    )?;
    host.set(
        "randomseed",
        lua.create_function(move |_, seed: f64| {
            rng.lock().seed(seed as i32);
            Ok(())
        })?,
    )?;
    host.set("register_function", lua.create_function(register_function)?)?;
    libs::register(&lua, &host)?;
    let mode_name = match mode {
        Mode::Eval => "eval",
        Mode::Function => "function",
    };
    let sandbox: Table = lua
        .load(include_str!("sandbox.lua"))
        .set_name("@redis_api")
        .set_mode(ChunkMode::Text)
        .call((host.clone(), mode_name))?;
    lua.set_named_registry_value(SANDBOX, sandbox)?;
    lua.set_named_registry_value(RUN, host.get::<Table>("run")?)?;
    lua.set_app_data(LoadDeadline(None));
    lua.set_app_data(Registered::default());
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
        move |lua, _| {
            if busy.kill_requested() {
                return Err(mlua::Error::runtime(KILLED));
            }
            if busy.offload_due() {
                super::offload::hand_off_worker();
            }
            if let Some(deadline) = lua.app_data_ref::<LoadDeadline>()
                && deadline.0.is_some_and(|d| Instant::now() >= d)
            {
                return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
            }
            Ok(VmState::Continue)
        },
    )?;
    Ok(lua)
}

/// Where an error was raised, for the handler: the innermost frame that
/// is neither a C function nor this crate's Lua (`@redis_api`), as Redis's
/// handler reports it (`@user_script`, line).
fn error_position(lua: &Lua) -> (Option<String>, Option<i64>) {
    for level in 1..=256 {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            let skip = source.what == "C" || source.source.as_deref() == Some("@redis_api");
            let line = debug.current_line().map(|l| l as i64);
            (skip, source.source.map(|s| s.into_owned()), line)
        });
        match frame {
            None => break,
            Some((true, ..)) => continue,
            Some((false, source, line)) => return (source, line),
        }
    }
    (None, None)
}

const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// Lower-case hex SHA1, as script ids are written.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// Compiles source text (never bytecode) into a function named `chunk`
/// (`@user_script` / `@user_function`); the error is Lua's message.
pub(crate) fn compile(lua: &Lua, code: &[u8], chunk: &str) -> Result<Function, String> {
    lua.load(code)
        .set_name(chunk)
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|err| lua_message(&err))
}

/// The message of a Lua error, without mlua's decoration.
pub(crate) fn lua_message(err: &mlua::Error) -> String {
    match err {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::MemoryError(message) => message.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

/// How a script runs.
pub(crate) struct RunOptions<'s> {
    /// What error replies name the script by (its SHA1, or the function name).
    pub(crate) name: &'s str,
    /// Write commands are refused (`*_RO`, `no-writes`).
    pub(crate) read_only: bool,
    /// Write commands may run over `maxmemory` (`allow-oom`).
    pub(crate) allow_oom: bool,
}

/// Runs `function` (a compiled `EVAL` script, or a library callback in
/// [`Mode::Function`]) with its keys and arguments: commands it calls go
/// through the command table with `ctx`. Returns the reply for the caller.
pub(crate) fn execute(
    lua: &Lua,
    mode: Mode,
    function: &Function,
    keys: &[Bytes],
    args: &[Bytes],
    ctx: &mut Ctx<'_>,
    options: &RunOptions<'_>,
) -> Frame {
    let busy = ctx.state.scripts.busy.clone();
    let result = run_scoped(lua, mode, function, keys, args, ctx, options);
    let killed = busy.kill_requested();
    let frame = match result {
        Ok(Ok(frame)) => frame,
        Ok(Err(err)) => error_reply(&err, options.name, killed),
        Err(err) => Frame::error(format!(
            "ERR Error running script {}, {}",
            options.name,
            truncate(&one_line(lua_message(&err).as_bytes()), 100)
        )),
    };
    if matches!(&frame, Frame::Error(text) if text.contains("not enough memory")) {
        let _ = lua.gc_collect();
    }
    frame
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The run: `Ok(Ok(reply))`, `Ok(Err(error value))` for a Lua error the
/// handler saw, `Err` for a failure of the interpreter itself.
fn run_scoped(
    lua: &Lua,
    mode: Mode,
    function: &Function,
    keys: &[Bytes],
    args: &[Bytes],
    ctx: &mut Ctx<'_>,
    options: &RunOptions<'_>,
) -> mlua::Result<Result<Frame, Value>> {
    let sandbox: Table = lua.named_registry_value(SANDBOX)?;
    let run_table: Table = lua.named_registry_value(RUN)?;
    let resp3 = Cell::new(false);
    let ctx = RefCell::new(ctx);
    let result = lua.scope(|scope| {
        let call = scope.create_function(|lua, argv: Variadic<Value>| {
            let mut ctx = ctx
                .try_borrow_mut()
                .map_err(|_| mlua::Error::runtime("recursive redis.call"))?;
            call_command(lua, &mut ctx, &argv, resp3.get(), options)
        })?;
        let setresp = scope.create_function(|_, version: f64| {
            resp3.set(version == 3.0);
            Ok(())
        })?;
        run_table.raw_set("impl", call)?;
        run_table.raw_set("setresp", setresp)?;
        let keys = string_array(lua, keys)?;
        let args = string_array(lua, args)?;
        let outcome: MultiValue = match mode {
            Mode::Eval => {
                sandbox
                    .get::<Function>("set_args")?
                    .call::<()>((keys, args))?;
                sandbox
                    .get::<Function>("run_eval")?
                    .call(function.clone())?
            }
            Mode::Function => {
                sandbox
                    .get::<Function>("run_function")?
                    .call((function.clone(), keys, args))?
            }
        };
        run_table.raw_remove("impl")?;
        run_table.raw_remove("setresp")?;
        let mut values = outcome.into_iter();
        let ok = matches!(values.next(), Some(Value::Boolean(true)));
        let value = values.next().unwrap_or(Value::Nil);
        Ok(if ok {
            Ok(lua_to_frame(&value, resp3.get()))
        } else {
            Err(value)
        })
    });
    // A failed run may leave them set; the scope has invalidated them.
    let _ = run_table.raw_remove("impl");
    let _ = run_table.raw_remove("setresp");
    result
}

fn string_array(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_seti(i + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

/// The reply for a script that raised `err` (a table from the handler).
fn error_reply(err: &Value, name: &str, killed: bool) -> Frame {
    let Value::Table(table) = err else {
        let text = match err {
            Value::String(s) => s.to_string_lossy(),
            _ => "execution failure".to_string(),
        };
        return Frame::error(one_line(
            format!("ERR Error running script {name}, {}", truncate(&text, 100)).as_bytes(),
        ));
    };
    let mut message = match table.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => "ERR unknown error".to_string(),
    };
    if killed {
        message = KILLED.to_string();
    } else if message.contains("FUNCTION LOAD timeout") {
        message = "ERR FUNCTION LOAD timeout".to_string();
    }
    let source = table.raw_get::<Value>("source");
    let line = table.raw_get::<Value>("line");
    if let (Ok(Value::String(source)), Ok(line)) = (source, line) {
        let line = match line {
            Value::Number(n) => format_g(n, 14),
            Value::Integer(n) => n.to_string(),
            Value::String(s) => s.to_string_lossy(),
            _ => String::new(),
        };
        if !line.is_empty() {
            message = format!(
                "{message} script: {name}, on {}:{line}.",
                source.to_string_lossy()
            );
        }
    }
    Frame::Error(one_line(message.as_bytes()))
}

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
fn call_command(
    lua: &Lua,
    ctx: &mut Ctx<'_>,
    argv: &[Value],
    resp3: bool,
    options: &RunOptions<'_>,
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
        if options.read_only {
            return fail("ERR Write commands are not allowed from read-only scripts.");
        }
        ctx.state.scripts.busy.mark_wrote();
    }
    let _ = options.allow_oom && spec.has(DENYOOM);
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

/// `redis.register_function`, valid only while `FUNCTION LOAD` runs.
fn register_function(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Option<String>> {
    let raise = |text: &str| -> mlua::Result<Option<String>> { Ok(Some(text.to_string())) };
    if lua
        .app_data_ref::<LoadDeadline>()
        .is_none_or(|d| d.0.is_none())
    {
        return raise("redis.register_function can only be called on FUNCTION LOAD command");
    }
    let (name, callback, description, flags) = match args.len() {
        1 => {
            let Value::Table(named) = &args[0] else {
                return raise(
                    "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
                );
            };
            let (mut name, mut callback, mut description, mut flags) = (None, None, None, 0);
            for pair in named.pairs::<Value, Value>() {
                let (key, value) = pair?;
                let Value::String(key) = key else {
                    return raise(
                        "named argument key given to redis.register_function is not a string",
                    );
                };
                let key = key.to_string_lossy().to_ascii_lowercase();
                match key.as_str() {
                    "function_name" => match value {
                        Value::String(s) => name = Some(s.to_string_lossy()),
                        Value::Number(n) => name = Some(format_g(n, 14)),
                        _ => {
                            return raise(
                                "function_name argument given to redis.register_function must be a string",
                            );
                        }
                    },
                    "description" => match value {
                        Value::String(s) => description = Some(s.to_string_lossy()),
                        _ => {
                            return raise(
                                "description argument given to redis.register_function must be a string",
                            );
                        }
                    },
                    "callback" => match value {
                        Value::Function(f) => callback = Some(f),
                        _ => {
                            return raise(
                                "callback argument given to redis.register_function must be a function",
                            );
                        }
                    },
                    "flags" => {
                        let Value::Table(list) = value else {
                            return raise(
                                "flags argument to redis.register_function must be a table representing function flags",
                            );
                        };
                        for flag in list.sequence_values::<Value>() {
                            let parsed = match flag? {
                                Value::String(s) => super::parse_flag(&s.to_string_lossy()),
                                _ => None,
                            };
                            match parsed {
                                Some(bit) => flags |= bit,
                                None => return raise("unknown flag given"),
                            }
                        }
                    }
                    _ => return raise("unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return raise("redis.register_function must get a function name argument");
            };
            let Some(callback) = callback else {
                return raise("redis.register_function must get a callback argument");
            };
            (name, callback, description, flags)
        }
        2 => {
            let name = match &args[0] {
                Value::String(s) => s.to_string_lossy(),
                Value::Number(n) => format_g(*n, 14),
                _ => return raise("first argument to redis.register_function must be a string"),
            };
            let Value::Function(callback) = &args[1] else {
                return raise("second argument to redis.register_function must be a function");
            };
            (name, callback.clone(), None, 0)
        }
        _ => return raise("wrong number of arguments to redis.register_function"),
    };
    if let Err(text) = super::functions::check_function_name(&name) {
        return raise(&text);
    }
    let mut registered = lua.app_data_mut::<Registered>().expect("set at creation");
    if registered.functions.iter().any(|(n, ..)| *n == name) {
        drop(registered);
        return raise("Function already exists in the library");
    }
    registered
        .functions
        .push((name, callback, description, flags));
    Ok(None)
}

/// Runs a library's top-level code (`FUNCTION LOAD`) with the library API
/// as globals and a time limit; returns what it registered.
pub(crate) fn load_library(lua: &Lua, code: &[u8]) -> Result<Registered, String> {
    let function = compile(lua, code, "@user_function")
        .map_err(|message| format!("Error compiling function: {message}"))?;
    let sandbox: Table = lua
        .named_registry_value(SANDBOX)
        .map_err(|e| e.to_string())?;
    let loading: Function = sandbox.get("loading").map_err(|e| e.to_string())?;
    loading.call::<()>(true).map_err(|e| e.to_string())?;
    lua.set_app_data(LoadDeadline(Some(Instant::now() + LOAD_TIMEOUT)));
    lua.set_app_data(Registered::default());
    let outcome = sandbox
        .get::<Function>("run_function")
        .and_then(|run| run.call::<MultiValue>((function, Value::Nil, Value::Nil)));
    lua.set_app_data(LoadDeadline(None));
    let registered = lua.remove_app_data::<Registered>().unwrap_or_default();
    lua.set_app_data(Registered::default());
    let _ = loading.call::<()>(false);
    let outcome =
        outcome.map_err(|e| format!("Error registering functions: {}", lua_message(&e)))?;
    let mut values = outcome.into_iter();
    if matches!(values.next(), Some(Value::Boolean(true))) {
        return Ok(registered);
    }
    let message = match values.next() {
        Some(Value::Table(err)) => match err.raw_get::<Value>("err") {
            Ok(Value::String(s)) => s.to_string_lossy(),
            _ => "ERR unknown error".into(),
        },
        Some(Value::String(s)) => s.to_string_lossy(),
        _ => "ERR unknown error".into(),
    };
    let message = if message.contains("FUNCTION LOAD timeout") {
        "ERR FUNCTION LOAD timeout".to_string()
    } else {
        message
    };
    Err(format!("Error registering functions: {message}"))
}

/// Redis's `redisLrand48`: the 48-bit generator of POSIX `lrand48`, so
/// `math.random` gives the same sequence as Redis for the same seed.
struct Rand48(u64);

impl Default for Rand48 {
    fn default() -> Self {
        Rand48(0x1234_ABCD_330E)
    }
}

impl Rand48 {
    fn seed(&mut self, seed: i32) {
        self.0 = ((u64::from(seed as u32)) << 16) | 0x330E;
    }

    fn next(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        (self.0 >> 17) as i32
    }
}
