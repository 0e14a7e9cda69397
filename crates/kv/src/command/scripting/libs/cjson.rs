//! `cjson`: lua-cjson 2.1.0 as Redis 7.0 vendors it (`lua_cjson.c`,
//! `strbuf.c`, `fpconv.c`): the module table, its settings and
//! `cjson.encode`; decoding is in [`super::json_decode`].
//!
//! Hand-written rather than serde_json: the output must match Redis byte
//! for byte, and serde_json differs in every detail that shows — numbers
//! are `printf("%.14g")` (`1e+15`, `0.1`, `-0`, `inf`), `/` is escaped as
//! `\/` and DEL as `\u007f`, a Lua table is an array or an object by
//! lua-cjson's sparse-array rules, keys come in Lua's `next` order, and
//! the error texts are lua-cjson's.
//!
//! Encoding walks the value without native recursion: open tables live in
//! [`super::Depths`] and a Rust stack of [`Level`]s, objects advance with
//! Lua's `next`, and the C code's Lua stack use is counted so that
//! "excessive nesting" happens at the depth it happens in Redis (the
//! setting, or `lua_checkstack` failing near 8000 slots).

use std::sync::Arc;

use mlua::{Function, LightUserData, Lua, Table, Value};
use parking_lot::Mutex;

use super::{
    C_STACK, Depths, LibResult, Raise, arg, budget, check_integer, check_string, function,
    json_decode, number_of, one, string,
};
use crate::command::scripting::convert::format_g;

/// `cjson.null`: the NULL light userdata.
pub(super) fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// How `encode_invalid_numbers` treats NaN and infinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InvalidNumbers {
    /// An error (the default).
    Off,
    /// `nan`, `inf`, `-inf`.
    On,
    /// `null`.
    Null,
}

/// One cjson instance's settings (`json_config_t`), shared by its functions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) sparse_convert: bool,
    pub(super) sparse_ratio: i32,
    pub(super) sparse_safe: i32,
    pub(super) encode_max_depth: i32,
    pub(super) decode_max_depth: i32,
    pub(super) encode_invalid_numbers: InvalidNumbers,
    pub(super) encode_number_precision: i32,
    pub(super) encode_keep_buffer: bool,
    pub(super) decode_invalid_numbers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: InvalidNumbers::Off,
            encode_number_precision: 14,
            encode_keep_buffer: true,
            decode_invalid_numbers: true,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// The cjson module table (before the sandbox hides the global `next`).
pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    instance(lua, lua.globals().raw_get("next")?)
}

/// A cjson instance with default settings (`cjson.new()` makes more).
fn instance(lua: &Lua, next: Function) -> mlua::Result<Table> {
    let config: Shared = Arc::default();
    let table = lua.create_table()?;
    let fresh = next.clone();
    let shared = config.clone();
    table.set(
        "encode",
        function(lua, move |lua, args| {
            if args.len() != 1 {
                return Err(Raise::Arg(1, "expected 1 argument".into()));
            }
            let config = *shared.lock();
            let value = args.into_iter().next().unwrap_or(Value::Nil);
            let json = encode(lua, &config, &next, value)?;
            one(string(lua, &json)?)
        })?,
    )?;
    let shared = config.clone();
    table.set(
        "decode",
        function(lua, move |lua, args| {
            if args.len() != 1 {
                return Err(Raise::Arg(1, "expected 1 argument".into()));
            }
            let text = check_string(lua, &args, 1)?;
            let config = *shared.lock();
            one(json_decode::decode(lua, &config, &text.as_bytes())?)
        })?,
    )?;
    let settings: [(&str, Setter); 7] = [
        ("encode_sparse_array", sparse_array),
        ("encode_max_depth", |lua, args, c| {
            integer_option(lua, args, 1, &mut c.encode_max_depth, 1, i32::MAX)
        }),
        ("decode_max_depth", |lua, args, c| {
            integer_option(lua, args, 1, &mut c.decode_max_depth, 1, i32::MAX)
        }),
        ("encode_number_precision", |lua, args, c| {
            integer_option(lua, args, 1, &mut c.encode_number_precision, 1, 14)
        }),
        ("encode_keep_buffer", |lua, args, c| {
            bool_option(lua, args, 1, &mut c.encode_keep_buffer)
        }),
        ("encode_invalid_numbers", invalid_numbers),
        ("decode_invalid_numbers", |lua, args, c| {
            bool_option(lua, args, 1, &mut c.decode_invalid_numbers)
        }),
    ];
    for (name, setter) in settings {
        let shared = config.clone();
        let arity = if name == "encode_sparse_array" { 3 } else { 1 };
        table.set(
            name,
            function(lua, move |lua, args| {
                // json_arg_init: at most `arity` arguments.
                if args.len() > arity {
                    return Err(Raise::Arg(arity + 1, "found too many arguments".into()));
                }
                let mut config = *shared.lock();
                let result = setter(lua, &args, &mut config);
                *shared.lock() = config;
                Ok(mlua::MultiValue::from_vec(result?))
            })?,
        )?;
    }
    table.set(
        "new",
        lua.create_function(move |lua, _: mlua::MultiValue| instance(lua, fresh.clone()))?,
    )?;
    table.set("null", null())?;
    table.set("_NAME", "cjson")?;
    table.set("_VERSION", "2.1.0")?;
    Ok(table)
}

/// A setting function: reads its arguments into the config (keeping what
/// it set even when a later argument fails, as C does) and returns the
/// values it reports.
type Setter = fn(&Lua, &[Value], &mut Config) -> LibResult<Vec<Value>>;

fn sparse_array(lua: &Lua, args: &[Value], config: &mut Config) -> LibResult<Vec<Value>> {
    let mut out = bool_option(lua, args, 1, &mut config.sparse_convert)?;
    out.extend(integer_option(
        lua,
        args,
        2,
        &mut config.sparse_ratio,
        0,
        i32::MAX,
    )?);
    out.extend(integer_option(
        lua,
        args,
        3,
        &mut config.sparse_safe,
        0,
        i32::MAX,
    )?);
    Ok(out)
}

fn invalid_numbers(lua: &Lua, args: &[Value], config: &mut Config) -> LibResult<Vec<Value>> {
    let current = match config.encode_invalid_numbers {
        InvalidNumbers::Off => 0,
        InvalidNumbers::On => 1,
        InvalidNumbers::Null => 2,
    };
    let chosen = enum_option(lua, args, 1, current, &["off", "on", "null"])?;
    config.encode_invalid_numbers = match chosen {
        0 => InvalidNumbers::Off,
        1 => InvalidNumbers::On,
        _ => InvalidNumbers::Null,
    };
    Ok(vec![match chosen {
        0 | 1 => Value::Boolean(chosen == 1),
        _ => string(lua, b"null")?,
    }])
}

/// `json_integer_option`: `(int)` of the integer, range-checked (the error
/// always names argument #1, as lua-cjson does).
fn integer_option(
    lua: &Lua,
    args: &[Value],
    n: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> LibResult<Vec<Value>> {
    if !matches!(arg(args, n), None | Some(Value::Nil)) {
        let value = check_integer(lua, args, n)? as i32;
        if value < min || value > max {
            return Err(Raise::Arg(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    Ok(vec![Value::Number(f64::from(*setting))])
}

/// `json_enum_option` with the on/off options.
fn bool_option(lua: &Lua, args: &[Value], n: usize, setting: &mut bool) -> LibResult<Vec<Value>> {
    let chosen = enum_option(lua, args, n, usize::from(*setting), &["off", "on"])?;
    *setting = chosen == 1;
    Ok(vec![Value::Boolean(*setting)])
}

/// `json_enum_option`: a boolean, or one of `options` by name
/// (`luaL_checkoption`); returns the chosen index.
fn enum_option(
    lua: &Lua,
    args: &[Value],
    n: usize,
    current: usize,
    options: &[&str],
) -> LibResult<usize> {
    match arg(args, n) {
        None | Some(Value::Nil) => Ok(current),
        Some(Value::Boolean(b)) => Ok(usize::from(*b)),
        Some(_) => {
            let name = check_string(lua, args, n)?;
            let name = name.as_bytes();
            options
                .iter()
                .position(|o| o.as_bytes() == &name[..])
                .ok_or_else(|| {
                    Raise::Arg(
                        n,
                        format!("invalid option '{}'", String::from_utf8_lossy(&name)),
                    )
                })
        }
    }
}

/// An open table while encoding.
enum Level {
    /// Elements `next..=len` are left.
    Array { len: i64, next: i64 },
    /// Keys after `key` are left (`key` in the key store while a child is
    /// open).
    Object { first: bool },
}

impl Level {
    /// Lua stack slots the C code holds for this level (element; key and
    /// value).
    fn slots(&self) -> usize {
        match self {
            Level::Array { .. } => 1,
            Level::Object { .. } => 2,
        }
    }
}

/// `cjson.encode(value)`.
pub(super) fn encode(
    lua: &Lua,
    config: &Config,
    next: &Function,
    value: Value,
) -> LibResult<Vec<u8>> {
    let limit = budget(lua);
    let mut out = Vec::new();
    // Open tables by depth, and the current key of each open object.
    let mut tables = Depths::new(lua);
    let mut keys = Depths::new(lua);
    let mut levels: Vec<Level> = Vec::new();
    let mut current: Option<Table> = None;
    let mut key = Value::Nil;
    // Slots the C code would use: the argument, then per level.
    let mut slots = 1usize;
    let mut pending = Some(value);
    loop {
        if out.len() > limit {
            return Err(Raise::memory());
        }
        if let Some(value) = pending.take() {
            let Value::Table(table) = value else {
                append_scalar(config, &mut out, &value, limit)?;
                continue;
            };
            let depth = levels.len() + 1;
            if depth > config.encode_max_depth as usize || slots + 3 > C_STACK {
                return Err(Raise::error(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            let level = match array_length(config, &table)? {
                len if len > 0 => {
                    out.push(b'[');
                    Level::Array {
                        len: i64::from(len),
                        next: 1,
                    }
                }
                _ => {
                    out.push(b'{');
                    Level::Object { first: true }
                }
            };
            if let Some(Level::Object { .. }) = levels.last() {
                keys.set(levels.len(), std::mem::replace(&mut key, Value::Nil))?;
            }
            slots += level.slots();
            levels.push(level);
            tables.set(depth, Value::Table(table.clone()))?;
            current = Some(table);
        }
        let Some(level) = levels.last_mut() else {
            break;
        };
        let table = current.as_ref().expect("an open table");
        let done = match level {
            Level::Array { len, next } => {
                if *next > *len {
                    out.push(b']');
                    true
                } else {
                    if *next > 1 {
                        out.push(b',');
                    }
                    pending = Some(table.raw_get(*next)?);
                    *next += 1;
                    false
                }
            }
            Level::Object { first } => {
                let (k, v): (Value, Value) =
                    next.call((table, std::mem::replace(&mut key, Value::Nil)))?;
                if k.is_nil() {
                    out.push(b'}');
                    true
                } else {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                    append_key(config, &mut out, &k, limit)?;
                    key = k;
                    pending = Some(v);
                    false
                }
            }
        };
        if done {
            let level = levels.pop().expect("a level");
            slots -= level.slots();
            tables.set(levels.len() + 1, Value::Nil)?;
            current = match levels.len() {
                0 => None,
                depth => Some(tables.get(depth)?),
            };
            if let Some(Level::Object { .. }) = levels.last() {
                key = keys.take(levels.len())?;
            }
        }
    }
    Ok(out)
}

/// `lua_array_length`: the length to encode as an array, or 0 or less
/// for an object (C's `int` arithmetic kept, e.g. a key past `INT_MAX`
/// makes the maximum `INT_MIN`).
fn array_length(config: &Config, table: &Table) -> LibResult<i32> {
    let (mut max, mut items, mut array) = (0i32, 0i32, true);
    table.for_each::<Value, Value>(|key, _| {
        if array {
            match number_of(&key) {
                Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                    if k > f64::from(max) {
                        max = c_int(k);
                    }
                    items = items.wrapping_add(1);
                }
                _ => array = false,
            }
        }
        Ok(())
    })?;
    if !array {
        return Ok(-1);
    }
    if config.sparse_ratio > 0
        && max > items.wrapping_mul(config.sparse_ratio)
        && max > config.sparse_safe
    {
        if !config.sparse_convert {
            return Err(Raise::error(
                "Cannot serialise table: excessively sparse array",
            ));
        }
        return Ok(-1);
    }
    Ok(max)
}

/// C's `(int)` of a double on x86: out of range gives `INT_MIN`.
fn c_int(value: f64) -> i32 {
    if value > -2_147_483_649.0 && value < 2_147_483_648.0 {
        value as i32
    } else {
        i32::MIN
    }
}

fn append_key(config: &Config, out: &mut Vec<u8>, key: &Value, limit: usize) -> LibResult<()> {
    match key {
        Value::String(s) => {
            append_string(out, &s.as_bytes(), limit)?;
            out.push(b':');
        }
        other => match number_of(other) {
            Some(n) => {
                out.push(b'"');
                append_number(config, out, n)?;
                out.extend_from_slice(b"\":");
            }
            None => {
                return Err(Raise::error(format!(
                    "Cannot serialise {}: table key must be a number or string",
                    super::type_name(Some(key))
                )));
            }
        },
    }
    Ok(())
}

fn append_scalar(config: &Config, out: &mut Vec<u8>, value: &Value, limit: usize) -> LibResult<()> {
    match value {
        Value::String(s) => append_string(out, &s.as_bytes(), limit)?,
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        other => match number_of(other) {
            Some(n) => append_number(config, out, n)?,
            None => {
                return Err(Raise::error(format!(
                    "Cannot serialise {}: type not supported",
                    super::type_name(Some(value))
                )));
            }
        },
    }
    Ok(())
}

fn append_number(config: &Config, out: &mut Vec<u8>, n: f64) -> LibResult<()> {
    let invalid = n.is_nan() || n.is_infinite();
    match config.encode_invalid_numbers {
        InvalidNumbers::Off if invalid => {
            return Err(Raise::error(
                "Cannot serialise number: must not be NaN or Inf",
            ));
        }
        InvalidNumbers::On if n.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        InvalidNumbers::Null if invalid => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    out.extend_from_slice(format_g(n, config.encode_number_precision as usize).as_bytes());
    Ok(())
}

/// `json_append_string`: quotes and lua-cjson's escapes (control bytes,
/// `"`, `\`, `/` and DEL); other bytes, invalid UTF-8 included, as they are.
/// Fails if the result would pass `limit` bytes.
fn append_string(out: &mut Vec<u8>, s: &[u8], limit: usize) -> LibResult<()> {
    let escaped: usize = s
        .iter()
        .map(|&c| match c {
            b'"' | b'\\' | b'/' | 0x08 | b'\t' | b'\n' | 0x0c | b'\r' => 2,
            0..0x20 | 0x7f => 6,
            _ => 1,
        })
        .sum();
    if out.len().saturating_add(escaped + 2) > limit {
        return Err(Raise::memory());
    }
    out.reserve(escaped + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..0x20 | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
    Ok(())
}
