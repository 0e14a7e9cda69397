//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis 7.0 vendors it
//! (`lua_cmsgpack.c`): `pack(...)`, `unpack(s)`, `unpack_one(s, offset)`,
//! `unpack_limit(s, limit, offset)`.
//!
//! Hand-written rather than rmp: the encoding choices are lua-cmsgpack's,
//! not a general serializer's — a number is an integer when it converts to
//! `int64_t` exactly, else a 32-bit float when that is exact, else a
//! double; strings use `fixstr`/`str8`/`str16`/`str32` (never `bin`); a
//! table is an array only when its keys are exactly 1..n (`int`-sized),
//! else a map in Lua's `next` order; tables nested 16 deep become nil.
//! Decoding takes only what lua-cmsgpack takes (no `bin`/`ext`), reads
//! `uint64` through a signed integer, and fails with its error texts.
//!
//! Encoding recurses (at most 16 levels). Decoding keeps open arrays and
//! maps in [`super::Depths`] (lua-cmsgpack has no depth limit of its own:
//! Lua's C stack stops it), counting the C code's stack slots to fail with
//! its "stack overflow (...)" where it fails.

use mlua::{Lua, MultiValue, Table, Value};

use super::{
    C_STACK, Depths, LibResult, MAX_REF_RESULTS, Raise, budget, check_integer, check_string,
    fit_results, function, number_of, opt_integer,
};
use crate::command::scripting::convert::number_to_integer;

/// Tables nested this deep are packed as nil (`LUACMSGPACK_MAX_NESTING`).
const MAX_NESTING: usize = 16;

/// What `mp_decode_to_lua_type`'s stack check reports.
const TOO_MANY: &str = "too many return values at once; use unpack_one or unpack_limit instead.";

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("pack", function(lua, pack)?)?;
    table.set(
        "unpack",
        function(lua, |lua, args| {
            let nargs = args.len();
            unpack(lua, &args, nargs, 0, 0)
        })?,
    )?;
    table.set(
        "unpack_one",
        function(lua, |lua, args| {
            let offset = opt_integer(lua, &args, 2, 0)?;
            unpack(lua, &args, 1, 1, offset)
        })?,
    )?;
    table.set(
        "unpack_limit",
        function(lua, |lua, args| {
            let limit = check_integer(lua, &args, 2)?;
            let offset = opt_integer(lua, &args, 3, 0)?;
            unpack(lua, &args, 1, limit, offset)
        })?,
    )?;
    table.set("_NAME", "cmsgpack")?;
    table.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    table.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    table.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(table)
}

/// `mp_pack`: every argument encoded, concatenated.
fn pack(lua: &Lua, args: Vec<Value>) -> LibResult<MultiValue> {
    let nargs = args.len();
    if nargs == 0 {
        return Err(Raise::Arg(0, "MessagePack pack needs input.".into()));
    }
    if nargs + nargs > C_STACK {
        return Err(Raise::Arg(
            0,
            "Too many arguments for MessagePack pack.".into(),
        ));
    }
    let mut encoder = Encoder {
        out: Vec::new(),
        limit: budget(lua),
    };
    for (i, value) in args.iter().enumerate() {
        // The arguments, the strings packed so far, then this copy.
        if nargs + i + 1 > C_STACK {
            return Err(Raise::stack_overflow("in function mp_check"));
        }
        encoder.value(value, 0, nargs + i + 1)?;
    }
    Ok(MultiValue::from_vec(vec![Value::String(
        lua.create_string(&encoder.out)?,
    )]))
}

struct Encoder {
    out: Vec<u8>,
    limit: usize,
}

impl Encoder {
    fn put(&mut self, bytes: &[u8]) -> LibResult<()> {
        if self.out.len().saturating_add(bytes.len()) > self.limit {
            return Err(Raise::memory());
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// `mp_encode_lua_type` of `value` at nesting `level`, with `slots`
    /// Lua stack slots in use (the value on top).
    fn value(&mut self, value: &Value, level: usize, slots: usize) -> LibResult<()> {
        match value {
            Value::String(s) => self.bytes(&s.as_bytes()),
            Value::Boolean(b) => self.put(&[if *b { 0xc3 } else { 0xc2 }]),
            Value::Table(t) if level < MAX_NESTING => self.table(t, level, slots),
            other => match number_of(other) {
                Some(n) => self.number(n),
                None => self.put(&[0xc0]),
            },
        }
    }

    fn bytes(&mut self, s: &[u8]) -> LibResult<()> {
        let len = s.len();
        let mut header = Vec::with_capacity(5);
        if len < 32 {
            header.push(0xa0 | len as u8);
        } else if len <= 0xff {
            header.extend_from_slice(&[0xd9, len as u8]);
        } else if len <= 0xffff {
            header.push(0xda);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            header.push(0xdb);
            header.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self.put(&header)?;
        self.put(s)
    }

    /// `mp_encode_lua_number`: an integer when `(int64_t)n == n`.
    fn number(&mut self, n: f64) -> LibResult<()> {
        let as_int = number_to_i64(n);
        if !n.is_infinite() && as_int as f64 == n {
            return self.integer(as_int);
        }
        let f = n as f32;
        if f64::from(f) == n {
            let mut b = vec![0xca];
            b.extend_from_slice(&f.to_be_bytes());
            self.put(&b)
        } else {
            let mut b = vec![0xcb];
            b.extend_from_slice(&n.to_be_bytes());
            self.put(&b)
        }
    }

    fn integer(&mut self, n: i64) -> LibResult<()> {
        let mut b = Vec::with_capacity(9);
        if n >= 0 {
            if n <= 127 {
                b.push(n as u8);
            } else if n <= 0xff {
                b.extend_from_slice(&[0xcc, n as u8]);
            } else if n <= 0xffff {
                b.push(0xcd);
                b.extend_from_slice(&(n as u16).to_be_bytes());
            } else if n <= 0xffff_ffff {
                b.push(0xce);
                b.extend_from_slice(&(n as u32).to_be_bytes());
            } else {
                b.push(0xcf);
                b.extend_from_slice(&(n as u64).to_be_bytes());
            }
        } else if n >= -32 {
            b.push(n as i8 as u8);
        } else if n >= -128 {
            b.extend_from_slice(&[0xd0, n as i8 as u8]);
        } else if n >= -32768 {
            b.push(0xd1);
            b.extend_from_slice(&(n as i16).to_be_bytes());
        } else if n >= -2_147_483_648 {
            b.push(0xd2);
            b.extend_from_slice(&(n as i32).to_be_bytes());
        } else {
            b.push(0xd3);
            b.extend_from_slice(&n.to_be_bytes());
        }
        self.put(&b)
    }

    fn table(&mut self, table: &Table, level: usize, slots: usize) -> LibResult<()> {
        // table_is_an_array: keys exactly 1..n, each `(int)k == k`.
        if slots + 2 > C_STACK {
            return Err(Raise::stack_overflow("in function table_is_an_array"));
        }
        let (mut count, mut max, mut array) = (0u64, 0i64, true);
        table.for_each::<Value, Value>(|key, _| {
            match number_of(&key) {
                Some(n) if array && n > 0.0 && n == f64::from(c_int(n)) => {
                    max = max.max(n as i64);
                    count += 1;
                }
                _ => array = false,
            }
            Ok(())
        })?;
        if array && max as u64 == count {
            if slots + 1 > C_STACK {
                return Err(Raise::stack_overflow(
                    "in function mp_encode_lua_table_as_array",
                ));
            }
            self.header(count, 0x90, 0xdc)?;
            for j in 1..=count {
                let element: Value = table.raw_get(j)?;
                self.value(&element, level + 1, slots + 1)?;
            }
            return Ok(());
        }
        if slots + 3 > C_STACK {
            return Err(Raise::stack_overflow(
                "in function mp_encode_lua_table_as_map",
            ));
        }
        let mut len = 0u64;
        table.for_each::<Value, Value>(|_, _| {
            len += 1;
            Ok(())
        })?;
        self.header(len, 0x80, 0xde)?;
        let mut failure = None;
        let walked = table.for_each::<Value, Value>(|key, value| {
            let encoded = self
                .value(&key, level + 1, slots + 3)
                .and_then(|()| self.value(&value, level + 1, slots + 2));
            encoded.map_err(|raise| {
                failure = Some(raise);
                mlua::Error::runtime("stop")
            })
        });
        match failure {
            Some(raise) => Err(raise),
            None => Ok(walked?),
        }
    }

    /// An array or map header: `fix | n`, 16-bit or 32-bit length.
    fn header(&mut self, n: u64, fix: u8, wide: u8) -> LibResult<()> {
        if n <= 15 {
            self.put(&[fix | n as u8])
        } else if n <= 0xffff {
            let mut b = vec![wide];
            b.extend_from_slice(&(n as u16).to_be_bytes());
            self.put(&b)
        } else {
            let mut b = vec![wide + 1];
            b.extend_from_slice(&(n as u32).to_be_bytes());
            self.put(&b)
        }
    }
}

/// C's `(int64_t)` of a double on x86: out of range (or NaN) gives `INT64_MIN`.
fn number_to_i64(n: f64) -> i64 {
    number_to_integer(n)
}

/// C's `(int)` of a double on x86: out of range (or NaN) gives `INT_MIN`.
fn c_int(n: f64) -> i32 {
    if n > -2_147_483_649.0 && n < 2_147_483_648.0 {
        n as i32
    } else {
        i32::MIN
    }
}

/// An open array or map while decoding; its table is in the decoder's `tables`.
enum Open {
    Array {
        left: u64,
        index: i64,
        base: usize,
    },
    Map {
        left: u64,
        /// The key is decoded (and in the decoder's `keys`).
        keyed: bool,
        base: usize,
    },
}

/// `mp_unpack_full`: decodes from `offset` up to `limit` values (all when
/// both are 0); `nargs` is how many arguments C still has on its stack
/// (`unpack_one` and `unpack_limit` drop all but the first).
fn unpack(
    lua: &Lua,
    args: &[Value],
    nargs: usize,
    limit: i64,
    offset: i64,
) -> LibResult<MultiValue> {
    let input = check_string(lua, args, 1)?;
    let input = input.as_bytes();
    let len = input.len();
    if offset < 0 || limit < 0 {
        return Err(Raise::error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    if offset as u64 > len as u64 {
        return Err(Raise::error(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut decoder = Decoder {
        lua,
        data: &input[offset as usize..],
        pos: 0,
        tables: Depths::new(lua),
        keys: Depths::new(lua),
    };
    let mut values = Vec::new();
    let mut refs = 0usize;
    let mut count: i64 = 0;
    while decoder.pos < decoder.data.len() && count < limit {
        let value = decoder.value(nargs + values.len())?;
        if matches!(value, Value::String(_) | Value::Table(_)) {
            refs += 1;
            if refs > MAX_REF_RESULTS {
                return Err(Raise::stack_overflow(TOO_MANY));
            }
        }
        values.push(value);
        count += 1;
    }
    if !decode_all {
        if nargs + values.len() + 1 > C_STACK {
            return Err(Raise::stack_overflow("in function mp_unpack_full"));
        }
        let left = decoder.data.len() - decoder.pos;
        let next = if left == 0 { -1.0 } else { (len - left) as f64 };
        values.insert(0, Value::Number(next));
    }
    fit_results(args.len(), values.len(), TOO_MANY)?;
    Ok(MultiValue::from_vec(values))
}

struct Decoder<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    /// Open tables by depth.
    tables: Depths<'a>,
    /// Each open map's pending key, by depth.
    keys: Depths<'a>,
}

/// A big-endian unsigned number.
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| acc << 8 | u64::from(b))
}

/// Lua's own errors for keys `lua_settable` refuses.
fn check_key(key: &Value) -> LibResult<()> {
    match key {
        Value::Nil => Err(Raise::Plain("table index is nil".into())),
        Value::Number(n) if n.is_nan() => Err(Raise::Plain("table index is NaN".into())),
        _ => Ok(()),
    }
}

impl Decoder<'_> {
    fn need(&self, n: usize) -> LibResult<()> {
        if self.data.len() - self.pos < n {
            return Err(Raise::error("Missing bytes in input."));
        }
        Ok(())
    }

    /// Reads a string of `n` bytes after a `skip`-byte header.
    fn string(&mut self, skip: usize, n: usize) -> LibResult<Value> {
        self.need(skip.saturating_add(n))?;
        let start = self.pos + skip;
        let value = Value::String(self.lua.create_string(&self.data[start..start + n])?);
        self.pos = start + n;
        Ok(value)
    }

    /// One complete value (`mp_decode_to_lua_type`), nested ones included;
    /// `slots` is the C stack height below it.
    fn value(&mut self, slots: usize) -> LibResult<Value> {
        let mut open: Vec<Open> = Vec::new();
        let mut slots = slots;
        loop {
            self.need(1)?;
            if slots + 1 > C_STACK {
                return Err(Raise::stack_overflow(TOO_MANY));
            }
            let byte = self.data[self.pos];
            let scalar = match byte {
                0xcc => self.fixed(2, |b| be(b) as f64)?,
                0xd0 => self.fixed(2, |b| f64::from(b[0] as i8))?,
                0xcd => self.fixed(3, |b| be(b) as f64)?,
                0xd1 => self.fixed(3, |b| f64::from(be(b) as u16 as i16))?,
                0xce => self.fixed(5, |b| be(b) as f64)?,
                0xd2 => self.fixed(5, |b| f64::from(be(b) as u32 as i32))?,
                // uint64 goes through lua_Integer: 2^63 and up wrap negative.
                0xcf | 0xd3 => self.fixed(9, |b| be(b) as i64 as f64)?,
                0xc0 => {
                    self.pos += 1;
                    Value::Nil
                }
                0xc2 | 0xc3 => {
                    self.pos += 1;
                    Value::Boolean(byte == 0xc3)
                }
                0xca => self.fixed(5, |b| f64::from(f32::from_bits(be(b) as u32)))?,
                0xcb => self.fixed(9, |b| f64::from_bits(be(b)))?,
                0xd9 => {
                    self.need(2)?;
                    self.string(2, be(&self.data[self.pos + 1..self.pos + 2]) as usize)?
                }
                0xda => {
                    self.need(3)?;
                    self.string(3, be(&self.data[self.pos + 1..self.pos + 3]) as usize)?
                }
                0xdb => {
                    self.need(5)?;
                    let n = be(&self.data[self.pos + 1..self.pos + 5]) as usize;
                    self.pos += 5;
                    self.string(0, n)?
                }
                0xa0..=0xbf => self.string(1, usize::from(byte & 0x1f))?,
                0x00..=0x7f => self.fixed(1, |_| f64::from(byte))?,
                0xe0..=0xff => self.fixed(1, |_| f64::from(byte as i8))?,
                0xdc | 0xdd | 0xde | 0xdf | 0x80..=0x9f => {
                    let (skip, left) = match byte {
                        0xdc | 0xde => (3, self.be_checked(3)?),
                        0xdd | 0xdf => (5, self.be_checked(5)?),
                        _ => (1, u64::from(byte & 0x0f)),
                    };
                    self.pos += skip;
                    let map = matches!(byte, 0xde | 0xdf | 0x80..=0x8f);
                    let table = self.lua.create_table()?;
                    // The table is on the stack, then checked for one more.
                    if !map && slots + 2 > C_STACK {
                        return Err(Raise::stack_overflow("in function mp_decode_to_lua_array"));
                    }
                    let base = slots;
                    if left > 0 {
                        let depth = open.len() + 1;
                        self.tables.set(depth, Value::Table(table))?;
                        open.push(if map {
                            Open::Map {
                                left,
                                keyed: false,
                                base,
                            }
                        } else {
                            Open::Array {
                                left,
                                index: 1,
                                base,
                            }
                        });
                        slots = base + if map { 1 } else { 2 };
                        continue;
                    }
                    Value::Table(table)
                }
                _ => return Err(Raise::error("Bad data format in input.")),
            };
            // Store the value in its parent, closing parents that are full.
            let mut value = scalar;
            loop {
                let depth = open.len();
                let Some(level) = open.last_mut() else {
                    return Ok(value);
                };
                let parent: Table = self.tables.get(depth)?;
                let full = match level {
                    Open::Array { left, index, base } => {
                        parent.raw_set(*index, value)?;
                        *index += 1;
                        *left -= 1;
                        slots = *base + 2;
                        *left == 0
                    }
                    Open::Map { left, keyed, base } => {
                        if *keyed {
                            let key = self.keys.take(depth)?;
                            check_key(&key)?;
                            parent.raw_set(key, value)?;
                            *keyed = false;
                            *left -= 1;
                            slots = *base + 1;
                            *left == 0
                        } else {
                            self.keys.set(depth, value)?;
                            *keyed = true;
                            slots = *base + 2;
                            false
                        }
                    }
                };
                if !full {
                    break;
                }
                open.pop();
                self.tables.set(depth, Value::Nil)?;
                value = Value::Table(parent);
            }
        }
    }

    /// A fixed-size number of `n` bytes with its type byte (`mp_cur_need`,
    /// then `read` of the bytes after the type).
    fn fixed(&mut self, n: usize, read: impl Fn(&[u8]) -> f64) -> LibResult<Value> {
        self.need(n)?;
        let value = read(&self.data[self.pos + 1..self.pos + n]);
        self.pos += n;
        Ok(Value::Number(value))
    }

    /// A big-endian length after the type byte, `n - 1` bytes, after
    /// checking that the header is there.
    fn be_checked(&self, n: usize) -> LibResult<u64> {
        self.need(n)?;
        Ok(be(&self.data[self.pos + 1..self.pos + n]))
    }
}
