//! The libraries Redis adds to its Lua, written in Rust, with Redis 7.0's
//! behaviour (results, error texts, limits):
//!
//! - `bit` (LuaBitOp 1.0, [`bit`]): `tobit tohex bnot band bor bxor lshift
//!   rshift arshift rol ror bswap`, on 32-bit integers.
//! - `cjson` (lua-cjson 2.1.0 with Redis's patches, [`cjson`] and
//!   [`json_decode`]): `encode decode new null` and the settings
//!   `encode_sparse_array encode_max_depth decode_max_depth
//!   encode_number_precision encode_keep_buffer encode_invalid_numbers
//!   decode_invalid_numbers`, kept per interpreter as Redis keeps them.
//! - `cmsgpack` (lua-cmsgpack 0.4.0, [`cmsgpack`]): `pack unpack
//!   unpack_one unpack_limit`.
//! - `struct` (lua-struct 0.2, [`structs`]): `pack unpack size`.
//!
//! **Errors.** A C library raises a Lua *string* (`luaL_error` puts the
//! caller's `user_script:1: ` in front; `luaL_argerror` names the function
//! as the caller spelled it). A Rust callback can only raise mlua's
//! userdata error, so [`function`] builds the string the C code would
//! have, parks it in the registry slot the sandbox's handler and `pcall`
//! read (as `redis.call` does), and raises. The functions stay native so
//! that `return cjson.decode(x)` keeps the script's frame (a Lua wrapper
//! would be tail-called away, losing the error position).
//!
//! **Limits.** The C code's only depth limit past its settings is Lua's
//! C stack (`LUAI_MAXCSTACK`, 8000 slots, checked with `lua_checkstack`);
//! the ports count the slots the C code would hold ([`C_STACK`]) and fail
//! where it fails, with its message. Nothing recurses natively deeper than
//! cmsgpack's 16 levels, and a deep structure holds a bounded number of
//! mlua references (past 32 levels its tables live in a Lua table, see
//! [`Depths`]), because mlua's reference stack shares that 8000-slot limit. Output built in Rust is bounded by what the
//! interpreter may still allocate ([`budget`]): past it, the script gets
//! Lua's "not enough memory". Many-value returns are capped at
//! [`MAX_REF_RESULTS`] strings and tables (an mlua limit Redis lacks).

mod bit;
pub(super) mod cjson;
pub(super) mod cmsgpack;
pub(super) mod json_decode;
pub(super) mod strtod;
pub(super) mod structs;

use mlua::{Function, Lua, MultiValue, Table, Value, Variadic};

use super::convert::{format_g, number_to_integer};
use super::vm::{MEMORY_LIMIT, PENDING};

/// Lua 5.1's `LUAI_MAXCSTACK`: the stack slots a C function may use.
pub(super) const C_STACK: usize = 8000;

/// Most strings and tables one call returns as separate values: each is an
/// mlua reference until pushed, and mlua's reference stack is as small as
/// Lua's C stack (Redis allows up to 7999 values).
pub(super) const MAX_REF_RESULTS: usize = 7000;

/// Adds the libraries to the host table the sandbox reads.
pub(crate) fn register(lua: &Lua, host: &Table) -> mlua::Result<()> {
    host.set("bit", bit::module(lua)?)?;
    host.set("cjson", cjson::module(lua)?)?;
    host.set("cmsgpack", cmsgpack::module(lua)?)?;
    host.set("struct", structs::module(lua)?)?;
    Ok(())
}

/// A failure as the C libraries raise it.
#[derive(Debug)]
pub(super) enum Raise {
    /// `luaL_error`: the caller's position, then the message.
    Error(Vec<u8>),
    /// `luaL_argerror(narg, message)`.
    Arg(usize, String),
    /// An error without a position (`lua_error` from the core, e.g.
    /// "table index is nil").
    Plain(String),
    /// An interpreter failure (memory, mlua).
    Lua(mlua::Error),
}

impl From<mlua::Error> for Raise {
    fn from(err: mlua::Error) -> Raise {
        Raise::Lua(err)
    }
}

impl Raise {
    /// `luaL_error` with a text message.
    pub(super) fn error(message: impl Into<String>) -> Raise {
        Raise::Error(message.into().into_bytes())
    }

    /// `luaL_checkstack`'s failure.
    pub(super) fn stack_overflow(what: &str) -> Raise {
        Raise::error(format!("stack overflow ({what})"))
    }

    /// Lua's out-of-memory error.
    pub(super) fn memory() -> Raise {
        Raise::Lua(mlua::Error::MemoryError("not enough memory".into()))
    }
}

/// What a library function returns.
pub(super) type LibResult<T> = Result<T, Raise>;

/// A library function: `f` gets the arguments as given (absent ones are
/// absent, not nil) and its failures reach the script as C's would.
pub(super) fn function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, Vec<Value>) -> LibResult<MultiValue> + Send + 'static,
{
    lua.create_function(move |lua, args: Variadic<Value>| {
        f(lua, args.into()).map_err(|raise| throw(lua, raise))
    })
}

/// Turns `raise` into the Lua error C would raise (see the module docs).
fn throw(lua: &Lua, raise: Raise) -> mlua::Error {
    let message = match raise {
        Raise::Error(message) => [position(lua).into_bytes(), message].concat(),
        Raise::Arg(narg, extra) => argument_error(lua, narg, &extra),
        Raise::Plain(message) => message.into_bytes(),
        Raise::Lua(mlua::Error::MemoryError(_)) => b"not enough memory".to_vec(),
        Raise::Lua(other) => return other,
    };
    let text = String::from_utf8_lossy(&message).into_owned();
    match lua.create_string(&message) {
        Ok(value) => match lua.set_named_registry_value(PENDING, value) {
            Ok(()) => mlua::Error::runtime(text),
            Err(err) => err,
        },
        Err(err) => err,
    }
}

/// `luaL_where(L, 1)`: "short_src:line: " of the caller, if it is Lua code.
fn position(lua: &Lua) -> String {
    lua.inspect_stack(1, |debug| {
        let line = debug.current_line().unwrap_or(0);
        let source = debug.source().short_src.map(|s| s.into_owned());
        match source {
            Some(source) if line > 0 => format!("{source}:{line}: "),
            _ => String::new(),
        }
    })
    .unwrap_or_default()
}

/// `luaL_argerror`: names the function as its caller did ('?' from C).
fn argument_error(lua: &Lua, narg: usize, extra: &str) -> Vec<u8> {
    let (name, method) = lua
        .inspect_stack(0, |debug| {
            let names = debug.names();
            (
                names.name.map(|n| n.into_owned()),
                names.name_what == Some("method"),
            )
        })
        .unwrap_or((None, false));
    let mut narg = narg as i64;
    let name = name.unwrap_or_else(|| "?".into());
    let message = if method {
        narg -= 1;
        if narg == 0 {
            format!("calling '{name}' on bad self ({extra})")
        } else {
            format!("bad argument #{narg} to '{name}' ({extra})")
        }
    } else {
        format!("bad argument #{narg} to '{name}' ({extra})")
    };
    [position(lua).into_bytes(), message.into_bytes()].concat()
}

/// Bytes Rust-side output may still take: what the interpreter may still
/// allocate (the result becomes a Lua string of that size).
pub(super) fn budget(lua: &Lua) -> usize {
    MEMORY_LIMIT.saturating_sub(lua.used_memory())
}

/// Argument `n` (1-based), `None` when absent.
pub(super) fn arg(args: &[Value], n: usize) -> Option<&Value> {
    args.get(n.wrapping_sub(1))
}

/// `lua_typename(lua_type(v))`, "no value" when absent (`luaL_typename`).
pub(super) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// `luaL_typerror`.
pub(super) fn type_error(args: &[Value], n: usize, expected: &str) -> Raise {
    Raise::Arg(
        n,
        format!("{expected} expected, got {}", type_name(arg(args, n))),
    )
}

/// A Lua number as a double.
pub(super) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

/// `luaL_checklstring`: a string, or a number as Lua writes it (`%.14g`).
pub(super) fn check_string(lua: &Lua, args: &[Value], n: usize) -> LibResult<mlua::String> {
    match arg(args, n) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(value) => match number_of(value) {
            Some(number) => Ok(lua.create_string(format_g(number, 14))?),
            None => Err(type_error(args, n, "string")),
        },
        None => Err(type_error(args, n, "string")),
    }
}

/// `lua_tonumber`: a number, or a string Lua converts (`nil` otherwise).
pub(super) fn to_number(lua: &Lua, value: &Value) -> LibResult<Option<f64>> {
    Ok(match value {
        Value::String(_) => lua.coerce_number(value.clone())?,
        other => number_of(other),
    })
}

/// `luaL_checknumber`.
pub(super) fn check_number(lua: &Lua, args: &[Value], n: usize) -> LibResult<f64> {
    let value = arg(args, n).unwrap_or(&Value::Nil);
    to_number(lua, value)?.ok_or_else(|| type_error(args, n, "number"))
}

/// `luaL_checkinteger` (`(ptrdiff_t)` of the double, as x86 converts).
pub(super) fn check_integer(lua: &Lua, args: &[Value], n: usize) -> LibResult<i64> {
    Ok(number_to_integer(check_number(lua, args, n)?))
}

/// `luaL_optinteger`.
pub(super) fn opt_integer(lua: &Lua, args: &[Value], n: usize, default: i64) -> LibResult<i64> {
    match arg(args, n) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, n),
    }
}

/// Values by nesting depth (open tables, pending keys) for the decoders
/// and the encoder: the first [`Depths::NEAR`] in Rust, deeper ones in a
/// Lua table made on first use, so that a deep structure holds a bounded
/// number of mlua references and a shallow one costs no Lua table.
pub(super) struct Depths<'lua> {
    lua: &'lua Lua,
    near: Vec<Value>,
    far: Option<Table>,
}

impl<'lua> Depths<'lua> {
    const NEAR: usize = 32;

    pub(super) fn new(lua: &'lua Lua) -> Self {
        Depths {
            lua,
            near: Vec::new(),
            far: None,
        }
    }

    /// Stores `value` at `depth` (1-based).
    pub(super) fn set(&mut self, depth: usize, value: Value) -> mlua::Result<()> {
        if depth <= Self::NEAR {
            if self.near.len() < depth {
                self.near.resize(depth, Value::Nil);
            }
            self.near[depth - 1] = value;
            return Ok(());
        }
        if self.far.is_none() {
            self.far = Some(self.lua.create_table()?);
        }
        self.far.as_ref().expect("just made").raw_set(depth, value)
    }

    /// The value at `depth` (nil if none).
    pub(super) fn get<T: mlua::FromLua>(&self, depth: usize) -> mlua::Result<T> {
        let value = match (depth <= Self::NEAR, &self.far) {
            (true, _) => self.near.get(depth - 1).cloned().unwrap_or(Value::Nil),
            (false, Some(far)) => far.raw_get(depth)?,
            (false, None) => Value::Nil,
        };
        T::from_lua(value, self.lua)
    }

    /// The value at `depth`, leaving nil there.
    pub(super) fn take(&mut self, depth: usize) -> mlua::Result<Value> {
        let value = self.get(depth)?;
        self.set(depth, Value::Nil)?;
        Ok(value)
    }
}

/// Fails (as `luaL_checkstack` with `what`) unless `count` results fit on
/// the Lua stack above `nargs` arguments: mlua needs one slot more than C
/// to return them, so the last count C allows is refused here.
pub(super) fn fit_results(nargs: usize, count: usize, what: &str) -> LibResult<()> {
    if nargs + count + 1 > C_STACK {
        return Err(Raise::stack_overflow(what));
    }
    Ok(())
}

/// One value as a function's result.
pub(super) fn one(value: Value) -> LibResult<MultiValue> {
    Ok(MultiValue::from_vec(vec![value]))
}

/// A Lua string value.
pub(super) fn string(lua: &Lua, bytes: &[u8]) -> LibResult<Value> {
    Ok(Value::String(lua.create_string(bytes)?))
}
