//! `bit`: LuaBitOp 1.0 as Redis ships it (`lua_bit.c`): `tobit tohex bnot
//! band bor bxor lshift rshift arshift rol ror bswap` on 32-bit integers.
//! Results are signed 32-bit numbers; arguments convert as `barg` does (the
//! low 32 bits of the number rounded with the `+ 2^52 + 2^51` trick), and
//! `band`/`bor`/`bxor` read their arguments first, then last to second, so
//! a bad argument is reported where LuaBitOp reports it.

use mlua::{Lua, Table, Value};

use super::{LibResult, arg, function, one, string, to_number, type_error};

/// LuaBitOp's `barg`: the argument's low 32 bits after rounding; a
/// non-number fails (a string converts as Lua converts it).
fn barg(lua: &Lua, args: &[Value], n: usize) -> LibResult<u32> {
    let value = arg(args, n).unwrap_or(&Value::Nil);
    let number = to_number(lua, value)?;
    let bits = (number.unwrap_or(0.0) + 6_755_399_441_055_744.0).to_bits() as u32;
    if bits == 0 && number.is_none() {
        return Err(type_error(args, n, "number"));
    }
    Ok(bits)
}

/// `BRET`: the result as a signed 32-bit number.
fn bret(bits: u32) -> LibResult<mlua::MultiValue> {
    one(Value::Number(f64::from(bits as i32)))
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "tobit",
        function(lua, |lua, args| bret(barg(lua, &args, 1)?))?,
    )?;
    table.set(
        "bnot",
        function(lua, |lua, args| bret(!barg(lua, &args, 1)?))?,
    )?;
    table.set(
        "bswap",
        function(lua, |lua, args| bret(barg(lua, &args, 1)?.swap_bytes()))?,
    )?;
    let fold = |op: fn(u32, u32) -> u32| {
        function(lua, move |lua, args| {
            let mut acc = barg(lua, &args, 1)?;
            for n in (2..=args.len()).rev() {
                acc = op(acc, barg(lua, &args, n)?);
            }
            bret(acc)
        })
    };
    table.set("band", fold(|a, b| a & b)?)?;
    table.set("bor", fold(|a, b| a | b)?)?;
    table.set("bxor", fold(|a, b| a ^ b)?)?;
    let shift = |op: fn(u32, u32) -> u32| {
        function(lua, move |lua, args| {
            let x = barg(lua, &args, 1)?;
            let n = barg(lua, &args, 2)? & 31;
            bret(op(x, n))
        })
    };
    table.set("lshift", shift(|x, n| x << n)?)?;
    table.set("rshift", shift(|x, n| x >> n)?)?;
    table.set("arshift", shift(|x, n| ((x as i32) >> n) as u32)?)?;
    table.set("rol", shift(|x, n| x.rotate_left(n))?)?;
    table.set("ror", shift(|x, n| x.rotate_right(n))?)?;
    table.set(
        "tohex",
        function(lua, |lua, args| {
            let mut x = barg(lua, &args, 1)?;
            let n = match arg(&args, 2) {
                None => 8,
                Some(_) => barg(lua, &args, 2)? as i32,
            };
            let digits: &[u8; 16] = if n < 0 {
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            // C negates with wrap-around: -INT_MIN stays negative and
            // gives no digits.
            let count = n.wrapping_abs().clamp(0, 8) as usize;
            let mut out = [0u8; 8];
            for slot in out[..count].iter_mut().rev() {
                *slot = digits[(x & 15) as usize];
                x >>= 4;
            }
            one(string(lua, &out[..count])?)
        })?,
    )?;
    Ok(table)
}
