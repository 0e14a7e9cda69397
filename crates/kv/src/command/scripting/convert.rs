//! Redis's type conversions between replies and Lua values, both ways.
//!
//! Reply → Lua (what `redis.call` returns), in the script's protocol
//! (RESP2 unless it called `redis.setresp(3)`): integer → number, bulk →
//! string, null → `false` (RESP2) or `nil` (RESP3), array → table, status →
//! `{ok=...}`, error → `{err=...}`; in RESP3 also map → `{map={...}}`, set →
//! `{set={k=true}}`, double → `{double=n}`, boolean → boolean. In RESP2 the
//! RESP3 types arrive degraded, exactly as a RESP2 client would see them.
//!
//! Lua → reply (what a script returns): string → bulk, number → integer
//! (truncated toward zero, as C's cast), `true` → 1 and `false` → null (or
//! booleans in RESP3), table with `err` / `ok` / `double` / `map` / `set`
//! fields → that reply, other tables → array up to the first `nil`, and
//! anything else → null.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::protocol::Frame;
use crate::protocol::frame::format_double_reply;

/// Deepest table nesting converted; deeper (or cyclic) tables end in an
/// error reply instead of exhausting the stack.
const DEPTH_MAX: usize = 1000;

/// C's `printf("%.{precision}g", value)`.
pub(crate) fn format_g(value: f64, precision: usize) -> String {
    if value.is_nan() {
        return if value.is_sign_negative() {
            "-nan"
        } else {
            "nan"
        }
        .into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    let precision = precision.max(1);
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // An integer of at most `precision` digits prints as itself (the
    // common case, without the exact-digits formatting below).
    if value.fract() == 0.0 && value.abs() < 10f64.powi(precision.min(15) as i32) {
        return (value as i64).to_string();
    }
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = sci.split_once('e').expect("an exponent");
    let exponent: i32 = exponent.parse().expect("a number");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        strip_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A Lua number as Redis sends it: `(long long)` of the double (x86's
/// conversion gives `i64::MIN` for NaN and out-of-range values).
pub(crate) fn number_to_integer(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Maps CR and LF to spaces after trimming them at both ends (Redis's
/// `addReplyErrorFormat` and status replies).
pub(crate) fn one_line(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    text.trim_matches(['\r', '\n']).replace(['\r', '\n'], " ")
}

/// An error reply's text as a `{err=...}` table holds it: `CODE message`.
pub(crate) fn error_text(text: &str) -> String {
    let (code, message) = match text.split_once(' ') {
        Some((code, message)) => (code, message),
        None => ("ERR", text),
    };
    format!("{code} {}", message.trim_matches(['\r', '\n']))
}

/// `{err=text, ignore_error_stats_update=true}`.
pub(crate) fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(0, 2)?;
    table.raw_set("err", error_text(text))?;
    table.raw_set("ignore_error_stats_update", true)?;
    Ok(table)
}

/// A command's reply as the script sees it.
pub(crate) fn frame_to_lua(lua: &Lua, frame: &Frame, resp3: bool) -> mlua::Result<Value> {
    let single = |key: &str, value: Value| -> mlua::Result<Value> {
        let table = lua.create_table_with_capacity(0, 1)?;
        table.raw_set(key, value)?;
        Ok(Value::Table(table))
    };
    Ok(match frame {
        Frame::Simple(s) => single("ok", Value::String(lua.create_string(s)?))?,
        Frame::SimpleOwned(s) => single("ok", Value::String(lua.create_string(s)?))?,
        Frame::Error(text) => Value::Table(error_table(lua, text)?),
        Frame::Integer(n) => Value::Number(*n as f64),
        Frame::Bulk(data) => Value::String(lua.create_string(data)?),
        Frame::Null | Frame::NullArray if resp3 => Value::Nil,
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) | Frame::Sequence(items) => {
            array(lua, items, resp3)?
        }
        Frame::Set(items) if resp3 => {
            let set = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                set.raw_set(frame_to_lua(lua, item, resp3)?, true)?;
            }
            single("set", Value::Table(set))?
        }
        Frame::Set(items) => array(lua, items, resp3)?,
        Frame::Map(pairs) if resp3 => {
            let map = lua.create_table_with_capacity(0, pairs.len())?;
            for (key, value) in pairs {
                map.raw_set(
                    frame_to_lua(lua, key, resp3)?,
                    frame_to_lua(lua, value, resp3)?,
                )?;
            }
            single("map", Value::Table(map))?
        }
        Frame::Map(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (key, value)) in pairs.iter().enumerate() {
                table.raw_seti(2 * i + 1, frame_to_lua(lua, key, resp3)?)?;
                table.raw_seti(2 * i + 2, frame_to_lua(lua, value, resp3)?)?;
            }
            Value::Table(table)
        }
        Frame::Double(d) if resp3 => single("double", Value::Number(*d))?,
        Frame::Double(d) => Value::String(lua.create_string(format_double_reply(*d))?),
        Frame::DoubleText(text) if resp3 => {
            single("double", Value::Number(text.parse().unwrap_or(f64::NAN)))?
        }
        Frame::DoubleText(text) => Value::String(lua.create_string(text)?),
        Frame::Boolean(b) if resp3 => Value::Boolean(*b),
        Frame::Boolean(b) => Value::Number(f64::from(u8::from(*b))),
    })
}

fn array(lua: &Lua, items: &[Frame], resp3: bool) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_seti(i + 1, frame_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(table))
}

/// A script's return value as the reply to its caller (`resp3` is the
/// script's protocol, set by `redis.setresp`).
pub(crate) fn lua_to_frame(value: &Value, resp3: bool) -> Frame {
    to_frame(value, resp3, 0)
}

fn to_frame(value: &Value, resp3: bool, depth: usize) -> Frame {
    if depth > DEPTH_MAX {
        return Frame::error("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Number(n) => Frame::Integer(number_to_integer(*n)),
        Value::Integer(n) => Frame::Integer(*n),
        Value::Table(table) => table_to_frame(table, resp3, depth),
        _ => Frame::Null,
    }
}

fn string_field(table: &Table, key: &str) -> Option<mlua::String> {
    match table.raw_get::<Value>(key) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn table_to_frame(table: &Table, resp3: bool, depth: usize) -> Frame {
    if let Some(err) = string_field(table, "err") {
        return Frame::Error(one_line(&err.as_bytes()));
    }
    if let Some(ok) = string_field(table, "ok") {
        let text = String::from_utf8_lossy(&ok.as_bytes()).replace(['\r', '\n'], " ");
        return Frame::SimpleOwned(text);
    }
    if let Ok(Value::Number(d)) = table.raw_get::<Value>("double") {
        return Frame::Double(d);
    }
    if let Some(big) = string_field(table, "big_number") {
        let text = String::from_utf8_lossy(&big.as_bytes()).replace(['\r', '\n'], " ");
        return Frame::Bulk(Bytes::from(text));
    }
    if let Ok(Value::Table(verbatim)) = table.raw_get::<Value>("verbatim_string")
        && string_field(&verbatim, "format").is_some()
        && let Some(text) = string_field(&verbatim, "string")
    {
        return Frame::Bulk(Bytes::copy_from_slice(&text.as_bytes()));
    }
    if let Ok(Value::Table(map)) = table.raw_get::<Value>("map") {
        let mut pairs = Vec::new();
        for (key, value) in map.pairs::<Value, Value>().flatten() {
            pairs.push((
                to_frame(&key, resp3, depth + 1),
                to_frame(&value, resp3, depth + 1),
            ));
        }
        return Frame::Map(pairs);
    }
    if let Ok(Value::Table(set)) = table.raw_get::<Value>("set") {
        let items = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(key, _)| to_frame(&key, resp3, depth + 1))
            .collect();
        return Frame::Set(items);
    }
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(value) => items.push(to_frame(&value, resp3, depth + 1)),
        }
    }
    Frame::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_c() {
        assert_eq!(format_g(1.0, 17), "1");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(3.5, 17), "3.5");
        assert_eq!(format_g(1e20, 17), "1e+20");
        assert_eq!(format_g(123456789012345678.0, 17), "1.2345678901234568e+17");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(-2.5, 14), "-2.5");
        assert_eq!(format_g(1.0 / 3.0, 14), "0.33333333333333");
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(-42.0, 14), "-42");
        assert_eq!(format_g(99_999_999_999_999.0, 14), "99999999999999");
        assert_eq!(format_g(999_999_999_999_999.0, 14), "1e+15");
        assert_eq!(format_g(12_345_678_901_234.0, 14), "12345678901234");
        assert_eq!(
            format_g(123_456_789_012_345_678.0, 17),
            "1.2345678901234568e+17"
        );
        assert_eq!(format_g(12_345.0, 3), "1.23e+04");
        assert_eq!(format_g(999.0, 3), "999");
    }

    #[test]
    fn numbers_truncate_like_a_c_cast() {
        assert_eq!(number_to_integer(3.99), 3);
        assert_eq!(number_to_integer(-3.99), -3);
        assert_eq!(number_to_integer(f64::NAN), i64::MIN);
        assert_eq!(number_to_integer(1e300), i64::MIN);
    }
}
