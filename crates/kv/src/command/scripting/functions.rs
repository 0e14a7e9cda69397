//! Redis 7 functions: `FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/KILL/
//! STATS`, `FCALL` and `FCALL_RO`.
//!
//! A library is Lua code whose first line is `#!lua name=<lib>`; running
//! its top level (with only `redis.register_function` and `redis.log` in
//! reach, for at most 500 ms) registers named callbacks. Function names are
//! global across libraries. Libraries live in their own interpreter, as in
//! Redis, so `SCRIPT FLUSH` does not touch them and `FUNCTION FLUSH` does
//! not touch the `EVAL` cache. `FUNCTION DUMP` writes Redis's payload
//! payload ([`payload`]), so a dump moves between Redis and Hyperscale both
//! ways.

use std::collections::BTreeMap;

use bytes::Bytes;
use mlua::Function;

use super::payload;
use super::vm::{self, Mode, Registered, RunOptions};
use super::{
    FLAG_ALLOW_OOM, FLAG_NAMES, FLAG_NO_WRITES, is, kill_reply, run_script, split_keys,
    subcommand_error,
};
use crate::command::Ctx;
use crate::pattern::glob_match;
use crate::protocol::Frame;
use crate::state::State;
use crate::state::scripts::{FunctionInfo, FunctionState, Library};

/// Redis's rule for library and function names.
pub(crate) fn check_function_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into())
    }
}

pub(super) fn fcall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    fcall_generic(ctx, args, false)
}

pub(super) fn fcall_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> Frame {
    let state = ctx.state;
    ctx.ks(); // keyspace before interpreter: the lock order
    let functions = state.scripts.functions.lock();
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let Some(info) = functions
        .index
        .get(&name)
        .and_then(|lib| functions.libraries.get(lib))
        .and_then(|lib| lib.functions.get(&name))
    else {
        return Frame::error("ERR Function not found");
    };
    let (keys, argv) = match split_keys(args, || Frame::error("ERR Bad number of keys provided")) {
        Ok(split) => split,
        Err(reply) => return reply,
    };
    let no_writes = info.flags & FLAG_NO_WRITES != 0;
    if read_only && !no_writes {
        return Frame::error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let lua = functions
        .lua
        .as_ref()
        .expect("a loaded library has an interpreter");
    let callback: Function = match lua.registry_value(&info.callback) {
        Ok(callback) => callback,
        Err(err) => return Frame::error(format!("ERR {}", vm::lua_message(&err))),
    };
    let options = RunOptions {
        name: &name,
        read_only: read_only || no_writes,
        allow_oom: info.flags & FLAG_ALLOW_OOM != 0,
    };
    run_script(ctx, lua, Mode::Function, &callback, keys, argv, &options)
}

pub(super) fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let state = ctx.state;
    let sub = &args[1];
    match () {
        () if is(sub, "load") && args.len() >= 3 => load_command(state, args),
        () if is(sub, "list") => list(state, args),
        () if is(sub, "delete") && args.len() == 3 => {
            let mut functions = state.scripts.functions.lock();
            let name = String::from_utf8_lossy(&args[2]).into_owned();
            match functions.libraries.remove(&name) {
                Some(library) => {
                    unindex(&mut functions, &library);
                    Frame::OK
                }
                None => Frame::error("ERR Library not found"),
            }
        }
        () if is(sub, "flush") && args.len() <= 3 => {
            if args.len() == 3 && !is(&args[2], "sync") && !is(&args[2], "async") {
                return Frame::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            }
            *state.scripts.functions.lock() = FunctionState::default();
            Frame::OK
        }
        () if is(sub, "dump") && args.len() == 2 => dump(state),
        () if is(sub, "restore") && (3..=4).contains(&args.len()) => restore(state, args),
        () if is(sub, "kill") && args.len() == 2 => kill_reply(state, true),
        () if is(sub, "stats") && args.len() == 2 => stats(state),
        () if is(sub, "help") && args.len() == 2 => help(),
        () => subcommand_error("function", args),
    }
}

fn load_command(state: &State, args: &[Bytes]) -> Frame {
    let mut replace = false;
    let mut at = 2;
    while at < args.len() - 1 {
        if is(&args[at], "replace") {
            replace = true;
            at += 1;
            continue;
        }
        return Frame::error(format!(
            "ERR Unknown option given: {}",
            crate::command::printable(&args[at], 128)
        ));
    }
    let mut functions = state.scripts.functions.lock();
    match create_library(state, &mut functions, &args[at], replace) {
        Ok(name) => Frame::Bulk(Bytes::from(name)),
        Err(text) => Frame::error(super::convert::one_line(format!("ERR {text}").as_bytes())),
    }
}

/// Parses the `#!lua name=...` line: (engine, name, code after the line).
fn metadata(code: &[u8]) -> Result<(String, String, &[u8]), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("#!")[2..].to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {part}"));
    }
    let name = name.ok_or("Library name was not given")?;
    Ok((engine, name, &code[end..]))
}

/// `FUNCTION LOAD`: compiles and registers a library; returns its name.
fn create_library(
    state: &State,
    functions: &mut FunctionState,
    code: &Bytes,
    replace: bool,
) -> Result<String, String> {
    let (engine, name, body) = metadata(code)?;
    check_function_name(&name)?;
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    if functions.libraries.contains_key(&name) && !replace {
        return Err(format!("Library '{name}' already exists"));
    }
    if functions.lua.is_none() {
        let lua = vm::new(Mode::Function, state.scripts.busy.clone())
            .map_err(|err| vm::lua_message(&err))?;
        functions.lua = Some(lua);
    }
    let lua = functions.lua.as_ref().expect("just created");
    let Registered {
        functions: registered,
    } = vm::load_library(lua, body)?;
    if registered.is_empty() {
        return Err("No functions registered".into());
    }
    for (function, ..) in &registered {
        if let Some(owner) = functions.index.get(function)
            && *owner != name
        {
            return Err(format!("Function {function} already exists"));
        }
    }
    let mut library = Library {
        code: code.clone(),
        functions: BTreeMap::new(),
    };
    for (function, callback, description, flags) in registered {
        let callback = lua
            .create_registry_value(callback)
            .map_err(|err| vm::lua_message(&err))?;
        library.functions.insert(
            function,
            FunctionInfo {
                callback,
                description,
                flags,
            },
        );
    }
    if let Some(old) = functions.libraries.remove(&name) {
        unindex(functions, &old);
    }
    for function in library.functions.keys() {
        functions.index.insert(function.clone(), name.clone());
    }
    functions.libraries.insert(name.clone(), library);
    Ok(name)
}

fn unindex(functions: &mut FunctionState, library: &Library) {
    for function in library.functions.keys() {
        functions.index.remove(function);
    }
}

fn list(state: &State, args: &[Bytes]) -> Frame {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut at = 2;
    while at < args.len() {
        let arg = &args[at];
        if !with_code && is(arg, "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(arg, "libraryname") {
            if at >= args.len() - 1 {
                return Frame::error("ERR library name argument was not given");
            }
            at += 1;
            pattern = Some(&args[at]);
        } else {
            return Frame::error(format!(
                "ERR Unknown argument {}",
                crate::command::printable(arg, 128)
            ));
        }
        at += 1;
    }
    let functions = state.scripts.functions.lock();
    let mut libraries = Vec::new();
    for (name, library) in &functions.libraries {
        if let Some(pattern) = pattern
            && !glob_match(pattern, name.as_bytes())
        {
            continue;
        }
        let mut fields = vec![
            (Frame::bulk("library_name"), Frame::bulk(name)),
            (Frame::bulk("engine"), Frame::bulk("LUA")),
            (
                Frame::bulk("functions"),
                Frame::Array(
                    library
                        .functions
                        .iter()
                        .map(|(fname, info)| {
                            let flags = FLAG_NAMES
                                .iter()
                                .filter(|(bit, _)| info.flags & bit != 0)
                                .map(|(_, flag)| Frame::Simple(flag))
                                .collect();
                            Frame::Map(vec![
                                (Frame::bulk("name"), Frame::bulk(fname)),
                                (
                                    Frame::bulk("description"),
                                    info.description.as_ref().map_or(Frame::Null, Frame::bulk),
                                ),
                                (Frame::bulk("flags"), Frame::Set(flags)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ];
        if with_code {
            fields.push((
                Frame::bulk("library_code"),
                Frame::Bulk(library.code.clone()),
            ));
        }
        libraries.push(Frame::Map(fields));
    }
    Frame::Array(libraries)
}

fn stats(state: &State) -> Frame {
    let functions = state.scripts.functions.lock();
    let count: usize = functions
        .libraries
        .values()
        .map(|l| l.functions.len())
        .sum();
    Frame::Map(vec![
        (Frame::bulk("running_script"), Frame::Null),
        (
            Frame::bulk("engines"),
            Frame::Map(vec![(
                Frame::bulk("LUA"),
                Frame::Map(vec![
                    (
                        Frame::bulk("libraries_count"),
                        Frame::Integer(functions.libraries.len() as i64),
                    ),
                    (Frame::bulk("functions_count"), Frame::Integer(count as i64)),
                ]),
            )]),
        ),
    ])
}

fn dump(state: &State) -> Frame {
    let functions = state.scripts.functions.lock();
    Frame::Bulk(payload::encode(
        functions
            .libraries
            .values()
            .map(|library| &library.code[..]),
    ))
}

fn restore(state: &State, args: &[Bytes]) -> Frame {
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if is(p, "append") => Policy::Append,
        Some(p) if is(p, "replace") => Policy::Replace,
        Some(p) if is(p, "flush") => Policy::Flush,
        Some(_) => {
            return Frame::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
        }
    };
    let codes = match payload::decode(&args[2]) {
        Ok(codes) => codes,
        Err(text) => return Frame::error(text),
    };
    let mut functions = state.scripts.functions.lock();
    // Load into a fresh context on the same interpreter, then merge.
    let mut fresh = FunctionState {
        lua: functions.lua.take(),
        ..FunctionState::default()
    };
    let loaded = codes
        .iter()
        .try_for_each(|code| create_library(state, &mut fresh, code, false).map(drop));
    functions.lua = fresh.lua.take();
    if let Err(text) = loaded {
        return Frame::error(super::convert::one_line(format!("ERR {text}").as_bytes()));
    }
    let mut libraries = match policy {
        Policy::Flush => BTreeMap::new(),
        _ => functions.libraries.clone_names(),
    };
    for name in fresh.libraries.keys() {
        if libraries.contains_key(name) {
            if policy == Policy::Append {
                return Frame::error(format!("ERR Library {name} already exists"));
            }
            libraries.remove(name);
        }
    }
    for (name, library) in &fresh.libraries {
        for function in library.functions.keys() {
            if let Some(owner) = functions.index.get(function)
                && libraries.contains_key(owner)
                && owner != name
            {
                return Frame::error(format!("ERR Function {function} already exists"));
            }
        }
    }
    let mut kept: BTreeMap<String, Library> = std::mem::take(&mut functions.libraries)
        .into_iter()
        .filter(|(name, _)| libraries.contains_key(name))
        .collect();
    kept.extend(fresh.libraries);
    functions.index = rebuild_index(&kept);
    functions.libraries = kept;
    Frame::OK
}

/// The names of a library map (what a merge keeps).
trait CloneNames {
    fn clone_names(&self) -> BTreeMap<String, ()>;
}

impl CloneNames for BTreeMap<String, Library> {
    fn clone_names(&self) -> BTreeMap<String, ()> {
        self.keys().map(|name| (name.clone(), ())).collect()
    }
}

fn rebuild_index(
    libraries: &BTreeMap<String, Library>,
) -> std::collections::HashMap<String, String> {
    libraries
        .iter()
        .flat_map(|(lib, library)| {
            library
                .functions
                .keys()
                .map(move |f| (f.clone(), lib.clone()))
        })
        .collect()
}

fn help() -> Frame {
    let lines = [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "DELETE <LIBRARY NAME>",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "FLUSH [ASYNC|SYNC]",
        "DUMP",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "KILL",
        "STATS",
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
