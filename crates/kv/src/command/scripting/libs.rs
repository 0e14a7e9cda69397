//! The libraries Redis adds to its Lua, written in Rust.
//!
//! - `bit` (LuaBitOp 1.0): `tobit tohex bnot band bor bxor lshift rshift
//!   arshift rol ror bswap`, on 32-bit integers, as Redis ships it.
//!
//! Not yet available: `cjson`, `cmsgpack` and `struct` (scripts that use
//! them get "attempt to index global" style errors: the globals are
//! absent).

use mlua::{Lua, Table, Value, Variadic};

/// Adds the libraries to the host table the sandbox reads.
pub(crate) fn register(lua: &Lua, host: &Table) -> mlua::Result<()> {
    host.set("bit", bit(lua)?)?;
    Ok(())
}

/// LuaBitOp's argument conversion: the low 32 bits of the number rounded
/// to an integer (the `+ 2^52 + 2^51` trick).
fn tobit(value: &Value, position: usize, name: &str) -> mlua::Result<i32> {
    let n = match value {
        Value::Number(n) => *n,
        Value::Integer(n) => *n as f64,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| bad_argument(position, name, "string"))?,
        other => return Err(bad_argument(position, name, other.type_name())),
    };
    Ok((n + 6_755_399_441_055_744.0).to_bits() as u32 as i32)
}

fn bad_argument(position: usize, name: &str, got: &str) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #{position} to '{name}' (number expected, got {got})"
    ))
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "tobit",
        lua.create_function(|_, x: Value| Ok(f64::from(tobit(&x, 1, "tobit")?)))?,
    )?;
    table.set(
        "bnot",
        lua.create_function(|_, x: Value| Ok(f64::from(!tobit(&x, 1, "bnot")?)))?,
    )?;
    table.set(
        "bswap",
        lua.create_function(|_, x: Value| Ok(f64::from(tobit(&x, 1, "bswap")?.swap_bytes())))?,
    )?;
    let fold = |name: &'static str, op: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut acc = tobit(args.first().unwrap_or(&Value::Nil), 1, name)?;
            for (i, arg) in args.iter().enumerate().skip(1) {
                acc = op(acc, tobit(arg, i + 1, name)?);
            }
            Ok(f64::from(acc))
        })
    };
    table.set("band", fold("band", |a, b| a & b)?)?;
    table.set("bor", fold("bor", |a, b| a | b)?)?;
    table.set("bxor", fold("bxor", |a, b| a ^ b)?)?;
    let shift = |name: &'static str, op: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (x, n): (Value, Value)| {
            let x = tobit(&x, 1, name)?;
            let n = tobit(&n, 2, name)? as u32 & 31;
            Ok(f64::from(op(x, n)))
        })
    };
    table.set("lshift", shift("lshift", |x, n| ((x as u32) << n) as i32)?)?;
    table.set("rshift", shift("rshift", |x, n| ((x as u32) >> n) as i32)?)?;
    table.set("arshift", shift("arshift", |x, n| x >> n)?)?;
    table.set(
        "rol",
        shift("rol", |x, n| (x as u32).rotate_left(n) as i32)?,
    )?;
    table.set(
        "ror",
        shift("ror", |x, n| (x as u32).rotate_right(n) as i32)?,
    )?;
    table.set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let x = tobit(&x, 1, "tohex")? as u32;
            let n = match n {
                Some(Value::Nil) | None => 8,
                Some(n) => tobit(&n, 2, "tohex")?,
            };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let masked = if digits == 8 {
                x
            } else {
                x & ((1u32 << (4 * digits)) - 1)
            };
            Ok(if upper {
                format!("{masked:0digits$X}")
            } else {
                format!("{masked:0digits$x}")
            })
        })?,
    )?;
    Ok(table)
}
