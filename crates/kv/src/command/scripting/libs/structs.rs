//! `struct`: Roberto Ierusalimschy's lua-struct (0.2, with Redis's fixes)
//! as Redis 7.0 vendors it (`lua_struct.c`): `pack(fmt, ...)`,
//! `unpack(fmt, data [, pos])`, `size(fmt)`.
//!
//! The format language: `>` big and `<` little endian (little is native),
//! `![n]` maximum alignment (default 8), `x` a zero byte, `b B h H l L T`
//! (1, 1, 2, 2, 8, 8, 8 bytes), `i[n] I[n]` (`n` up to 32, default 4),
//! `f d`, `c[n]` (`c0`: the whole string when packing, the previous number
//! as the length when unpacking), `s` (zero-terminated), spaces ignored.
//! The C code's number conversions are kept as x86 performs them (a double
//! past the integer range packs as `INT64_MIN` or 0, integers wider than 8
//! bytes hold 8 bytes of value), as are its argument numbers in errors.
//! Counts (`c2000000000`) are checked against the data before anything is
//! copied, so a format cannot make a large allocation.

use mlua::{Lua, MultiValue, Table, Value};

use super::{
    C_STACK, LibResult, MAX_REF_RESULTS, Raise, budget, check_number, check_string, fit_results,
    function, opt_integer, to_number,
};
use crate::command::scripting::convert::number_to_integer;

/// Widest `i`/`I` (`MAXINTSIZE`).
const MAX_INT_SIZE: usize = 32;
/// Default `!` alignment: the alignment of a double on x86-64.
const MAX_ALIGN: usize = 8;

/// Endianness and alignment (`Header`).
struct Header {
    big: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            big: false,
            align: 1,
        }
    }
}

/// The format string and the position in it.
struct Format<'a> {
    fmt: &'a [u8],
    at: usize,
}

impl Format<'_> {
    fn next_option(&mut self) -> Option<u8> {
        let opt = *self.fmt.get(self.at).filter(|&&c| c != 0)?;
        self.at += 1;
        Some(opt)
    }

    /// `getnum`: digits after an option, or `default`.
    fn number(&mut self, default: usize) -> LibResult<usize> {
        if !self.fmt.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while let Some(&c) = self.fmt.get(self.at).filter(|c| c.is_ascii_digit()) {
            let digit = i32::from(c - b'0');
            if a > i32::MAX / 10 || a * 10 > i32::MAX - digit {
                return Err(Raise::error("integral size overflow"));
            }
            a = a * 10 + digit;
            self.at += 1;
        }
        Ok(a as usize)
    }

    /// `optsize`: the size of an option (0 for the others).
    fn size(&mut self, opt: u8) -> LibResult<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(Raise::error(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// `controloptions`: endianness, alignment, spaces; anything else is
    /// an invalid option (argument #1).
    fn control(&mut self, opt: u8, header: &mut Header) -> LibResult<()> {
        match opt {
            b' ' => {}
            b'>' => header.big = true,
            b'<' => header.big = false,
            b'!' => {
                let align = self.number(MAX_ALIGN)?;
                if !align.is_power_of_two() {
                    return Err(Raise::error(format!(
                        "alignment {align} is not a power of 2"
                    )));
                }
                header.align = align;
            }
            _ => {
                let mut message = b"invalid format option '".to_vec();
                message.extend_from_slice(&[opt, b'\'']);
                return Err(Raise::Arg(1, String::from_utf8_lossy(&message).into()));
            }
        }
        Ok(())
    }
}

/// `gettoalign`: padding before an option of `size` at `len`.
fn to_align(len: u64, header: &Header, opt: u8, size: usize) -> u64 {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(header.align) as u64;
    (size - (len & (size - 1))) & (size - 1)
}

/// C's `(unsigned long)` of a double on x86-64 (NaN and negatives through
/// the signed conversion, 2^64 and up to 0).
fn c_unsigned(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || n < TWO_63 {
        number_to_integer(n) as u64
    } else if n < 2.0 * TWO_63 {
        n as u64
    } else {
        0
    }
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("pack", function(lua, pack)?)?;
    table.set("unpack", function(lua, unpack)?)?;
    table.set("size", function(lua, size)?)?;
    Ok(table)
}

/// `b_pack`.
fn pack(lua: &Lua, mut args: Vec<Value>) -> LibResult<MultiValue> {
    let fmt = check_string(lua, &args, 1)?;
    // C pushes a nil after the arguments: reading one argument too many
    // finds it ("got nil"); it stops the reading, so the buffer pieces
    // above it are never reached.
    args.push(Value::Nil);
    let fmt = fmt.as_bytes();
    let mut format = Format { fmt: &fmt, at: 0 };
    let mut header = Header::default();
    let limit = budget(lua);
    let mut out: Vec<u8> = Vec::new();
    let mut n = 2;
    while let Some(opt) = format.next_option() {
        let mut size = format.size(opt)?;
        let pad = to_align(out.len() as u64, &header, opt, size);
        out.resize(out.len() + pad as usize, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let number = check_number(lua, &args, n)?;
                n += 1;
                let mut value = if number < 0.0 {
                    number_to_integer(number) as u64
                } else {
                    c_unsigned(number)
                };
                let mut bytes = vec![0u8; size];
                for i in 0..size {
                    let slot = if header.big { size - 1 - i } else { i };
                    bytes[slot] = value as u8;
                    value >>= 8;
                }
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(lua, &args, n)? as f32;
                n += 1;
                out.extend_from_slice(&if header.big {
                    f.to_be_bytes()
                } else {
                    f.to_le_bytes()
                });
            }
            b'd' => {
                let d = check_number(lua, &args, n)?;
                n += 1;
                out.extend_from_slice(&if header.big {
                    d.to_be_bytes()
                } else {
                    d.to_le_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_string(lua, &args, n)?;
                n += 1;
                let s = s.as_bytes();
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // C has already moved to the next argument.
                    return Err(Raise::Arg(n, "string too short".into()));
                }
                if out.len().saturating_add(size) > limit {
                    return Err(Raise::memory());
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => format.control(opt, &mut header)?,
        }
        if out.len() > limit {
            return Err(Raise::memory());
        }
    }
    Ok(MultiValue::from_vec(vec![Value::String(
        lua.create_string(&out)?,
    )]))
}

/// `b_unpack`: the values, then the position after them.
fn unpack(lua: &Lua, args: Vec<Value>) -> LibResult<MultiValue> {
    let fmt = check_string(lua, &args, 1)?;
    let data = check_string(lua, &args, 2)?;
    let start = opt_integer(lua, &args, 3, 1)?;
    if start == 0 {
        return Err(Raise::Arg(3, "offset must be 1 or greater".into()));
    }
    let (fmt, data) = (fmt.as_bytes(), data.as_bytes());
    let ld = data.len() as u64;
    // size_t arithmetic: a negative offset wraps around, as in C.
    let mut pos = (start as u64).wrapping_sub(1);
    let mut format = Format { fmt: &fmt, at: 0 };
    let mut header = Header::default();
    let mut results: Vec<Value> = Vec::new();
    let mut refs = 0usize;
    let too_short = || Raise::Arg(2, "data string too short".into());
    while let Some(opt) = format.next_option() {
        let mut size = format.size(opt)? as u64;
        pos = pos.wrapping_add(to_align(pos, &header, opt, size as usize));
        if !(size <= ld && pos <= ld - size) {
            return Err(too_short());
        }
        if args.len() + results.len() + 2 > C_STACK {
            return Err(Raise::stack_overflow("too many results"));
        }
        let at = pos as usize;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[at..at + size as usize];
                let mut value: u64 = 0;
                for i in 0..bytes.len() {
                    let byte = if header.big {
                        bytes[i]
                    } else {
                        bytes[bytes.len() - 1 - i]
                    };
                    value = (value << 8) | u64::from(byte);
                }
                let number = if opt.is_ascii_lowercase() {
                    // The C shift count wraps mod 64 (x86), sizes past 8 included.
                    let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
                    if value & mask != 0 {
                        value |= mask;
                    }
                    value as i64 as f64
                } else {
                    value as f64
                };
                results.push(Value::Number(number));
            }
            b'x' => {}
            b'f' => {
                let raw: [u8; 4] = data[at..at + 4].try_into().expect("4 bytes");
                let f = if header.big {
                    f32::from_be_bytes(raw)
                } else {
                    f32::from_le_bytes(raw)
                };
                results.push(Value::Number(f64::from(f)));
            }
            b'd' => {
                let raw: [u8; 8] = data[at..at + 8].try_into().expect("8 bytes");
                let d = if header.big {
                    f64::from_be_bytes(raw)
                } else {
                    f64::from_le_bytes(raw)
                };
                results.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    let previous = match results.last() {
                        Some(value) => to_number(lua, value)?,
                        None => None,
                    };
                    let Some(previous) = previous else {
                        return Err(Raise::error("format 'c0' needs a previous size"));
                    };
                    size = c_unsigned(previous);
                    if let Some(Value::String(_)) = results.pop() {
                        refs -= 1;
                    }
                    if !(size <= ld && pos <= ld - size) {
                        return Err(too_short());
                    }
                }
                let at = pos as usize;
                refs += 1;
                if refs > MAX_REF_RESULTS {
                    return Err(Raise::stack_overflow("too many results"));
                }
                let bytes = &data[at..at + size as usize];
                results.push(Value::String(lua.create_string(bytes)?));
            }
            b's' => {
                let Some(end) = data[at..].iter().position(|&c| c == 0) else {
                    return Err(Raise::error("unfinished string in data"));
                };
                size = end as u64 + 1;
                refs += 1;
                if refs > MAX_REF_RESULTS {
                    return Err(Raise::stack_overflow("too many results"));
                }
                results.push(Value::String(lua.create_string(&data[at..at + end])?));
            }
            _ => format.control(opt, &mut header)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    fit_results(args.len(), results.len(), "too many results")?;
    Ok(MultiValue::from_vec(results))
}

/// `b_size`: the packed size of a fixed-size format.
fn size(lua: &Lua, args: Vec<Value>) -> LibResult<MultiValue> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let mut format = Format { fmt: &fmt, at: 0 };
    let mut header = Header::default();
    let mut pos: u64 = 0;
    while let Some(opt) = format.next_option() {
        let size = format.size(opt)?;
        pos = pos.wrapping_add(to_align(pos, &header, opt, size));
        if opt == b's' {
            return Err(Raise::Arg(1, "option 's' has no fixed size".into()));
        }
        if opt == b'c' && size == 0 {
            return Err(Raise::Arg(1, "option 'c0' has no fixed size".into()));
        }
        if !opt.is_ascii_alphanumeric() {
            format.control(opt, &mut header)?;
        }
        pos = pos.wrapping_add(size as u64);
    }
    Ok(MultiValue::from_vec(vec![Value::Number(pos as i64 as f64)]))
}
