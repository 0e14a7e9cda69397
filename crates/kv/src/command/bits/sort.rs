//! `SORT` and `SORT_RO`: the elements of a list, set or sorted set sorted
//! numerically or (`ALPHA`) as strings, optionally by other keys' values
//! (`BY weight_*`, `BY obj_*->field`), with `GET` patterns, `LIMIT`, `DESC`,
//! and `STORE` into a list, following Redis 7.0's `sortCommandGeneric`
//! step by step (its `LIMIT` clamping, its tie-break on the element bytes,
//! `strtod`'s number syntax, `BY nosort` keeping list and sorted-set order).
//!
//! Like Redis, it reads the whole collection: the work is O(n log n) in the
//! collection's size, which no client argument can inflate.

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;

use crate::command::members;
use crate::command::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, reply, syntax_error, wrong_type,
};
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::{Kind, Value};

pub(super) fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "sort",
            arity: -2,
            flags: WRITE | DENYOOM,
            keys: (1, 1, 1),
            group: "generic",
            summary: "Sorts the elements of a list, set or sorted set, optionally storing the result.",
            handler: sort,
        },
        Spec {
            name: "sort_ro",
            arity: -2,
            flags: READONLY,
            keys: (1, 1, 1),
            group: "generic",
            summary: "Sorts the elements of a list, set or sorted set (read-only).",
            handler: sort_ro,
        },
    ]
}

fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(sort_generic(ctx, args, false))
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply(sort_generic(ctx, args, true))
}

/// Parsed options.
#[derive(Default)]
struct Options {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Bytes>,
    by: Option<Bytes>,
    dont_sort: bool,
    gets: Vec<Bytes>,
}

fn parse(args: &[Bytes], read_only: bool) -> Result<Options, Frame> {
    let mut o = Options {
        limit_count: -1,
        ..Options::default()
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let word = &args[j];
        if is(word, "asc") {
            o.desc = false;
        } else if is(word, "desc") {
            o.desc = true;
        } else if is(word, "alpha") {
            o.alpha = true;
        } else if is(word, "limit") && left >= 2 {
            o.limit_start = int_arg(&args[j + 1])?;
            o.limit_count = int_arg(&args[j + 2])?;
            j += 2;
        } else if !read_only && is(word, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(word, "by") && left >= 1 {
            let pattern = args[j + 1].clone();
            // A pattern without `*` names no key per element: no sorting
            // (and, as in Redis, a later `BY` does not undo it).
            if !c_str(&pattern).contains(&b'*') {
                o.dont_sort = true;
            }
            o.by = Some(pattern);
            j += 1;
        } else if is(word, "get") && left >= 1 {
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    Ok(o)
}

/// The bytes a C string function sees (up to the first NUL).
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| &bytes[..n])
}

/// One element with what it sorts by.
struct Item {
    element: Bytes,
    score: f64,
    by: Option<Bytes>,
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> Result<Frame, Frame> {
    let mut o = parse(args, read_only)?;
    let (kind, mut elements) = load(ctx, &args[1])?;
    if o.dont_sort && kind == Some(Kind::Set) && o.store.is_some() {
        // A set has no order of its own: a stored result must not depend
        // on it, so it is sorted as strings.
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = elements.len() as i64;
    let mut start = o.limit_start.max(0).min(len);
    let count = o.limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    let ordered = matches!(kind, Some(Kind::List) | Some(Kind::ZSet));
    if o.dont_sort && ordered && o.desc {
        elements.reverse();
    }
    let mut items = Vec::with_capacity(elements.len());
    let mut conversion_error = false;
    for element in elements {
        let mut item = Item {
            element,
            score: 0.0,
            by: None,
        };
        if !o.dont_sort {
            let by = match &o.by {
                Some(pattern) => lookup_by_pattern(ctx, pattern, &item.element)?,
                None => Some(item.element.clone()),
            };
            if let Some(by) = by {
                if o.alpha {
                    if o.by.is_some() {
                        item.by = Some(by);
                    }
                } else {
                    match strtod(&by) {
                        Some(score) => item.score = score,
                        None => conversion_error = true,
                    }
                }
            }
        }
        items.push(item);
    }
    if !o.dont_sort {
        let (alpha, by_pattern, store) = (o.alpha, o.by.is_some(), o.store.is_some());
        items.sort_by(|a, b| {
            let cmp = compare(a, b, alpha, by_pattern, store);
            if o.desc { cmp.reverse() } else { cmp }
        });
    }
    if conversion_error {
        return Err(Frame::error(
            "ERR One or more scores can't be converted into double",
        ));
    }
    let chosen = if end >= start {
        &items[start as usize..=end as usize]
    } else {
        &items[..0]
    };
    let mut out = Vec::with_capacity(chosen.len() * o.gets.len().max(1));
    for item in chosen {
        if o.gets.is_empty() {
            out.push(Some(item.element.clone()));
        }
        for pattern in &o.gets {
            out.push(lookup_by_pattern(ctx, pattern, &item.element)?);
        }
    }
    match &o.store {
        None => Ok(Frame::Array(out.into_iter().map(Frame::optional).collect())),
        Some(dest) => {
            let values: Vec<Bytes> = out.into_iter().map(Option::unwrap_or_default).collect();
            if values.is_empty() {
                crate::command::delete_as_del(ctx, dest)?;
            } else {
                crate::command::list::store(ctx, dest, &values)?;
            }
            Ok(Frame::Integer(values.len() as i64))
        }
    }
}

/// Redis's `sortCompare` (before `DESC` reverses it).
fn compare(a: &Item, b: &Item, alpha: bool, by_pattern: bool, store: bool) -> Ordering {
    if !alpha {
        return if a.score > b.score {
            Ordering::Greater
        } else if a.score < b.score {
            Ordering::Less
        } else {
            a.element.cmp(&b.element)
        };
    }
    if by_pattern {
        return match (&a.by, &b.by) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if store => x.cmp(y),
            (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
        };
    }
    if store {
        a.element.cmp(&b.element)
    } else {
        // `strcoll` in the C/C.UTF-8 locale: byte order up to a NUL.
        c_str(&a.element).cmp(c_str(&b.element))
    }
}

/// The elements of the list, set or sorted set at `key` (none if absent):
/// list order, member order, score order.
fn load(ctx: &mut Ctx<'_>, key: &Bytes) -> Result<(Option<Kind>, Vec<Bytes>), Frame> {
    let now = ctx.now_ms;
    let Some(entry) = ctx.ks().get(key, now).map_err(engine_error)? else {
        return Ok((None, Vec::new()));
    };
    let meta = match entry.value {
        Value::Collection(meta) if matches!(meta.kind, Kind::List | Kind::Set | Kind::ZSet) => meta,
        _ => return Err(wrong_type()),
    };
    let kind = meta.kind;
    let c = Collection {
        key: key.clone(),
        meta,
        expire_at_ms: entry.expire_at_ms,
    };
    let ks = ctx.ks();
    let elements = match kind {
        Kind::List => members::all(ks, &c)?.into_iter().map(|(_, v)| v).collect(),
        Kind::Set => members::all(ks, &c)?.into_iter().map(|(k, _)| k).collect(),
        _ => {
            // The score index: `s` + 8 score bytes + member (see zset::store).
            let mut out = Vec::new();
            members::for_each_page(ks, &c, Bound::Included(b"s"), |_, page| {
                for (sub, _) in page {
                    if sub.first() != Some(&b's') {
                        return Ok(false);
                    }
                    out.push(sub.slice(9.min(sub.len())..));
                }
                Ok(true)
            })?;
            out
        }
    };
    Ok((Some(kind), elements))
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element and the key read, as a string, or
/// with `->field` as a hash field. `None` when there is nothing there.
fn lookup_by_pattern(
    ctx: &mut Ctx<'_>,
    pattern: &[u8],
    element: &Bytes,
) -> Result<Option<Bytes>, Frame> {
    let text = c_str(pattern);
    if text == b"#" {
        return Ok(Some(element.clone()));
    }
    let Some(star) = text.iter().position(|&b| b == b'*') else {
        return Ok(None);
    };
    let arrow = text[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|at| star + 1 + at)
        .filter(|&at| at + 2 < text.len());
    let (postfix, field) = match arrow {
        Some(at) => (&pattern[star + 1..at], Some(&pattern[at + 2..])),
        None => (&pattern[star + 1..], None),
    };
    let mut key = Vec::with_capacity(star + element.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(postfix);
    let now = ctx.now_ms;
    let Some(entry) = ctx.ks().get(&key, now).map_err(engine_error)? else {
        return Ok(None);
    };
    match (entry.value, field) {
        (Value::String(bytes), None) => Ok(Some(bytes)),
        (Value::Collection(meta), Some(field)) if meta.kind == Kind::Hash => {
            let hash = Collection {
                key: Bytes::from(key),
                meta,
                expire_at_ms: entry.expire_at_ms,
            };
            ctx.ks().sub_get(&hash, field).map_err(engine_error)
        }
        _ => Ok(None),
    }
}

/// C's `strtod` as `SORT` uses it: the whole string (up to a NUL) must be
/// a number (leading white space allowed; `inf`, hex floats accepted);
/// `None` for garbage, NaN, or a result out of range (`ERANGE`).
fn strtod(bytes: &[u8]) -> Option<f64> {
    let s = c_str(bytes);
    let mut i = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let negative = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let rest = &s[i..];
    let lower: Vec<u8> = rest.iter().take(8).map(u8::to_ascii_lowercase).collect();
    let sign = if negative { -1.0 } else { 1.0 };
    let (value, used) = if lower.starts_with(b"infinity") {
        (f64::INFINITY, 8)
    } else if lower.starts_with(b"inf") {
        (f64::INFINITY, 3)
    } else if lower.starts_with(b"nan") {
        return None;
    } else if (lower.starts_with(b"0x"))
        && rest
            .get(2)
            .is_some_and(|b| b.is_ascii_hexdigit() || *b == b'.')
    {
        hex_float(rest)?
    } else {
        let digits = |from: usize| {
            rest[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let int = digits(0);
        let mut end = int;
        let mut frac = 0;
        if rest.get(end) == Some(&b'.') {
            frac = digits(end + 1);
            end += 1 + frac;
        }
        if int + frac == 0 {
            // No conversion: strtod points back at the very start.
            return (s.is_empty()).then_some(0.0);
        }
        if matches!(rest.get(end), Some(b'e' | b'E')) {
            let mut e = end + 1;
            if matches!(rest.get(e), Some(b'+' | b'-')) {
                e += 1;
            }
            let exp = digits(e);
            if exp > 0 {
                end = e + exp;
            }
        }
        let text = std::str::from_utf8(&rest[..end]).ok()?;
        let value: f64 = text.parse().ok()?;
        let nonzero = rest[..int + frac + usize::from(frac > 0)]
            .iter()
            .any(|b| matches!(b, b'1'..=b'9'));
        if value.is_infinite() || (nonzero && (value == 0.0 || value.is_subnormal())) {
            return None; // ERANGE
        }
        (value, end)
    };
    (i + used == s.len()).then_some(sign * value)
}

/// A hexadecimal float (`0x1.8p3`) at the start of `rest`: its value and
/// length.
fn hex_float(rest: &[u8]) -> Option<(f64, usize)> {
    let mut i = 2;
    let mut value = 0f64;
    let mut any = false;
    while let Some(d) = rest.get(i).and_then(|b| (*b as char).to_digit(16)) {
        value = value * 16.0 + f64::from(d);
        any = true;
        i += 1;
    }
    if rest.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 1.0 / 16.0;
        while let Some(d) = rest.get(i).and_then(|b| (*b as char).to_digit(16)) {
            value += f64::from(d) * scale;
            scale /= 16.0;
            any = true;
            i += 1;
        }
    }
    if !any {
        return Some((0.0, 1)); // just the "0"
    }
    if matches!(rest.get(i), Some(b'p' | b'P')) {
        let mut e = i + 1;
        let negative = rest.get(e) == Some(&b'-');
        if matches!(rest.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let digits = rest[e..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            let exp: i32 = std::str::from_utf8(&rest[e..e + digits])
                .ok()?
                .parse()
                .unwrap_or(i32::MAX);
            value *= 2f64.powi(if negative { -exp } else { exp });
            i = e + digits;
        }
    }
    if value.is_infinite() {
        return None;
    }
    Some((value, i))
}

#[cfg(test)]
mod tests {
    use super::strtod;

    #[test]
    fn strtod_accepts_what_c_accepts() {
        for (text, value) in [
            ("1", 1.0),
            (" 2.5", 2.5),
            ("-3", -3.0),
            ("+4e1", 40.0),
            ("5.", 5.0),
            (".5", 0.5),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("0x10", 16.0),
            ("", 0.0),
        ] {
            assert_eq!(strtod(text.as_bytes()), Some(value), "{text}");
        }
        for bad in [
            "x", " ", "1 ", "nan", "1e400", "1e-400", "1.5.5", "--1", "0x", "1e", "-",
        ] {
            assert_eq!(strtod(bad.as_bytes()), None, "{bad}");
        }
    }
}
