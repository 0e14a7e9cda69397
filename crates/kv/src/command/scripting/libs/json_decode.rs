//! `cjson.decode`: lua-cjson 2.1.0's tokenizer and parser, with its
//! quirks — the input is a C string (a NUL byte ends it), numbers are
//! whatever `strtod` reads (hex, `inf`, `nan` and a leading `+` unless
//! `decode_invalid_numbers` is off), `null` becomes `cjson.null`, `\u`
//! escapes (surrogate pairs included) become UTF-8, and every error text
//! names the token and its 1-based position as lua-cjson does.
//!
//! The parser keeps open arrays and objects in [`super::Depths`] and a Rust
//! stack (no native recursion), and counts the Lua stack slots the C
//! parser would hold so that "Found too many nested data structures"
//! comes at the same depth as in Redis.

use mlua::{Lua, Table, Value};

use super::cjson::{Config, null};
use super::strtod::strtod;
use super::{C_STACK, Depths, LibResult, Raise};

/// A token (`json_token_t`); errors carry lua-cjson's description.
#[derive(Debug, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    /// How an error message names the token.
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

/// The input and the position in it (`json_parse_t`).
struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    decode_invalid_numbers: bool,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    /// `json_next_token`: the token and its 0-based index.
    fn next_token(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let ch = self.at(self.pos);
        let single = match ch {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(token) = single {
            self.pos += 1;
            return (token, index);
        }
        let rest = &self.data[self.pos.min(self.data.len())..];
        let token = match ch {
            0 => Token::End,
            b'"' => return self.string_token(),
            b'-' | b'0'..=b'9' => {
                if !self.decode_invalid_numbers && self.invalid_number() {
                    return (Token::Error("invalid number"), self.pos);
                }
                return self.number_token();
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                if rest.starts_with(b"true") {
                    self.pos += 4;
                    Token::Boolean(true)
                } else if rest.starts_with(b"false") {
                    self.pos += 5;
                    Token::Boolean(false)
                } else if rest.starts_with(b"null") {
                    self.pos += 4;
                    Token::Null
                } else if self.decode_invalid_numbers && self.invalid_number() {
                    return self.number_token();
                } else {
                    Token::Error("invalid token")
                }
            }
            _ => Token::Error("invalid token"),
        };
        (token, index)
    }

    /// `json_is_invalid_number`: forms `strtod` takes but JSON does not.
    fn invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let ch = self.at(p);
        if ch == b'0' {
            let next = self.at(p + 1);
            return next | 0x20 == b'x' || next.is_ascii_digit();
        }
        if ch <= b'9' {
            return false;
        }
        let rest = &self.data[p.min(self.data.len())..];
        let starts = |word: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(word);
        starts(b"inf") || starts(b"nan")
    }

    /// `json_next_number_token`.
    fn number_token(&mut self) -> (Token, usize) {
        let index = self.pos;
        match strtod(&self.data[self.pos..]) {
            Some((value, used)) => {
                self.pos += used;
                (Token::Number(value), index)
            }
            None => (Token::Error("invalid number"), index),
        }
    }

    /// `json_next_string_token`: errors point at the offending escape (or
    /// the end of the input).
    fn string_token(&mut self) -> (Token, usize) {
        let index = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let ch = self.at(self.pos);
            match ch {
                b'"' => break,
                0 => return (Token::Error("unexpected end of string"), self.pos),
                b'\\' => {
                    let decoded = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape(&mut out) {
                                continue;
                            }
                            return (Token::Error("invalid unicode escape code"), self.pos);
                        }
                        _ => return (Token::Error("invalid escape code"), self.pos),
                    };
                    out.push(decoded);
                    self.pos += 2;
                }
                _ => {
                    out.push(ch);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        (Token::Str(out), index)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, i| {
            let digit = (self.at(at + i) as char).to_digit(16)?;
            Some(acc << 4 | digit)
        })
    }

    /// `json_append_unicode_escape`: `\uXXXX` (a high surrogate must be
    /// followed by `\u` and a low one) as UTF-8; false when invalid.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut code) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if code & 0xF800 == 0xD800 {
            if code & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        match char::from_u32(code) {
            Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            // Unpaired surrogates cannot reach here; keep C's encoding.
            None => out.extend_from_slice(&[
                (code >> 12) as u8 | 0xE0,
                ((code >> 6) & 0x3F) as u8 | 0x80,
                (code & 0x3F) as u8 | 0x80,
            ]),
        }
        self.pos += len;
        true
    }
}

fn parse_error(expected: &str, (token, index): &(Token, usize)) -> Raise {
    Raise::error(format!(
        "Expected {expected} but found {} at character {}",
        token.name(),
        index + 1
    ))
}

/// An open array or object.
enum Open {
    /// The next element's index.
    Array(i64),
    /// The key of the value being parsed.
    Object(Vec<u8>),
}

impl Open {
    /// Lua stack slots C holds for it while parsing inside (table; table
    /// and key).
    fn slots(&self) -> usize {
        match self {
            Open::Array(_) => 1,
            Open::Object(_) => 2,
        }
    }
}

/// `cjson.decode(text)`.
pub(super) fn decode(lua: &Lua, config: &Config, input: &[u8]) -> LibResult<Value> {
    if input.len() >= 2 && (input[0] == 0 || input[1] == 0) {
        return Err(Raise::error(
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    let data = match input.iter().position(|&c| c == 0) {
        Some(end) => &input[..end],
        None => input,
    };
    let mut parser = Parser {
        data,
        pos: 0,
        decode_invalid_numbers: config.decode_invalid_numbers,
    };
    let mut tables = Depths::new(lua);
    let mut open: Vec<Open> = Vec::new();
    let mut current: Option<Table> = None;
    // Slots the C parser would use: the argument, then per open level.
    let mut slots = 1usize;
    let mut token = parser.next_token();
    let result = 'value: loop {
        // A value starts at `token`; `complete` is it once known.
        let mut complete = match &token.0 {
            Token::Str(s) => Value::String(lua.create_string(s)?),
            Token::Number(n) => Value::Number(*n),
            Token::Boolean(b) => Value::Boolean(*b),
            Token::Null => null(),
            Token::ObjBegin | Token::ArrBegin => {
                let object = token.0 == Token::ObjBegin;
                let depth = open.len() + 1;
                let need = if object { 3 } else { 2 };
                if depth > config.decode_max_depth as usize || slots + need > C_STACK {
                    return Err(Raise::error(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        parser.pos
                    )));
                }
                let table = lua.create_table()?;
                token = parser.next_token();
                let empty = token.0 == if object { Token::ObjEnd } else { Token::ArrEnd };
                if empty {
                    Value::Table(table)
                } else {
                    let level = if object {
                        Open::Object(object_key(&mut parser, &mut token)?)
                    } else {
                        Open::Array(1)
                    };
                    slots += level.slots();
                    open.push(level);
                    tables.set(depth, Value::Table(table.clone()))?;
                    current = Some(table);
                    continue 'value;
                }
            }
            _ => return Err(parse_error("value", &token)),
        };
        // Store the complete value in its parent; close parents that end.
        loop {
            let Some(level) = open.last_mut() else {
                break 'value complete;
            };
            let table = current.as_ref().expect("an open table");
            let (end, what) = match level {
                Open::Array(index) => {
                    table.raw_set(*index, complete)?;
                    *index += 1;
                    (Token::ArrEnd, "comma or array end")
                }
                Open::Object(key) => {
                    table.raw_set(lua.create_string(&key)?, complete)?;
                    (Token::ObjEnd, "comma or object end")
                }
            };
            token = parser.next_token();
            if token.0 == end {
                let level = open.pop().expect("a level");
                slots -= level.slots();
                complete = tables.take(open.len() + 1)?;
                current = match open.len() {
                    0 => None,
                    depth => Some(tables.get(depth)?),
                };
                continue;
            }
            if token.0 != Token::Comma {
                return Err(parse_error(what, &token));
            }
            token = parser.next_token();
            if let Some(Open::Object(key)) = open.last_mut() {
                *key = object_key(&mut parser, &mut token)?;
            }
            continue 'value;
        }
    };
    let end = parser.next_token();
    if end.0 != Token::End {
        return Err(parse_error("the end", &end));
    }
    Ok(result)
}

/// An object's key at `token`, then its colon; leaves `token` at the value.
fn object_key(parser: &mut Parser<'_>, token: &mut (Token, usize)) -> LibResult<Vec<u8>> {
    let key = match std::mem::replace(&mut token.0, Token::End) {
        Token::Str(key) => key,
        other => {
            token.0 = other;
            return Err(parse_error("object key string", token));
        }
    };
    *token = parser.next_token();
    if token.0 != Token::Colon {
        return Err(parse_error("colon", token));
    }
    *token = parser.next_token();
    Ok(key)
}
