//! `COPY` and `OBJECT`: a key's value duplicated, and a key's value
//! described the way Redis describes it.
//!
//! `OBJECT ENCODING` reports the encoding Redis 7.0 would use for the value
//! at its default thresholds (`int`/`embstr`/`raw` strings; `listpack` or
//! `hashtable` hashes, `intset` or `hashtable` sets, `listpack` or
//! `skiplist` sorted sets, `quicklist` lists, `stream`), computed from the
//! value rather than remembered: tools that branch on it see what they
//! expect, though a collection that grew past a threshold and shrank back
//! reports the small encoding here and the big one in Redis.
//!
//! `OBJECT IDLETIME` is the seconds since the key was last read or written,
//! from the memory engine's per-key LRU stamps (see `engine::memory`'s
//! `access` module, shared small integers included). The lsm engine keeps
//! no stamps, so there every key reads as just used (`0`): a stamp per key
//! on disk would turn every read into a write, and one in memory would grow
//! with a keyspace that is meant to outgrow memory.

use bytes::Bytes;

use crate::command::{
    Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, int_arg, is, printable, reply, syntax_error,
};
use crate::config::EvictionPolicy;
use crate::engine::SubRange;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;
use crate::value::{Kind, Value};

pub(super) fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "copy",
            arity: -3,
            flags: WRITE | DENYOOM,
            keys: (1, 2, 1),
            group: "generic",
            summary: "Copies the value of a key to a new key.",
            handler: copy,
        },
        Spec {
            name: "object",
            arity: -2,
            flags: READONLY,
            keys: (2, 2, 1),
            group: "generic",
            summary: "Inspects a key's value (ENCODING, FREQ, IDLETIME, REFCOUNT).",
            handler: object,
        },
    ]
}

fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let mut replace = false;
        let mut j = 3;
        while j < args.len() {
            if is(&args[j], "replace") {
                replace = true;
            } else if is(&args[j], "db") && j + 1 < args.len() {
                let db = int_arg(&args[j + 1])?;
                if !(i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&db) {
                    return Err(crate::command::not_integer());
                }
                if db != 0 {
                    return Err(Frame::error("ERR DB index is out of range"));
                }
                j += 1;
            } else {
                return Err(syntax_error());
            }
            j += 1;
        }
        let (src, dst) = (&args[1], &args[2]);
        if src == dst {
            return Err(Frame::error(
                "ERR source and destination objects are the same",
            ));
        }
        let now = ctx.now_ms;
        let Some(entry) = ctx.ks().get(src, now).map_err(engine_error)? else {
            return Ok(Frame::Integer(0));
        };
        if ctx.ks().lookup(dst, now).map_err(engine_error)?.is_some() {
            if !replace {
                return Ok(Frame::Integer(0));
            }
            ctx.ks().remove(dst, now).map_err(engine_error)?;
        }
        match entry.value {
            Value::String(_) => ctx.ks().put(dst.clone(), entry).map_err(engine_error)?,
            Value::Collection(meta) => {
                let source = Collection {
                    key: src.clone(),
                    meta,
                    expire_at_ms: entry.expire_at_ms,
                };
                ctx.ks()
                    .copy_collection(&source, dst.clone(), entry.expire_at_ms)
                    .map_err(engine_error)?;
            }
        }
        Ok(Frame::Integer(1))
    })())
}

const HELP: [&str; 15] = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Redis's `OBJ_SHARED_REFCOUNT`: the refcount of a shared integer.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis shares the integers 0..10000 (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;

fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let sub = &args[1];
        let known = ["encoding", "freq", "idletime", "refcount", "help"];
        let Some(name) = known.into_iter().find(|name| is(sub, name)) else {
            return Err(Frame::error(format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                printable(sub, 128)
            )));
        };
        let arity = if name == "help" { 2 } else { 3 };
        if args.len() != arity {
            return Err(Frame::error(format!(
                "ERR wrong number of arguments for 'object|{name}' command"
            )));
        }
        if name == "help" {
            return Ok(Frame::Array(
                HELP.iter().map(|l| Frame::Simple(l)).collect(),
            ));
        }
        // As in Redis, looking at a key is not an access to it.
        let now = ctx.now_ms;
        let found = ctx.ks().lookup_untouched(&args[2], now);
        let Some(entry) = found.map_err(engine_error)? else {
            return Ok(Frame::Null);
        };
        let (maxmemory, policy) = {
            let config = ctx.state.config.read();
            (config.maxmemory, config.maxmemory_policy)
        };
        let lfu = policy == EvictionPolicy::AllKeysLfu;
        let lfu_note = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
        Ok(match name {
            "encoding" => Frame::bulk(encoding(ctx, &args[2], entry.value)?),
            "refcount" => {
                let lru_or_lfu = !matches!(
                    policy,
                    EvictionPolicy::NoEviction
                        | EvictionPolicy::AllKeysFifo
                        | EvictionPolicy::VolatileTtl
                );
                let shared = match &entry.value {
                    Value::String(bytes) => {
                        (maxmemory == 0 || !lru_or_lfu)
                            && bytes.len() <= 20
                            && parse_i64_strict(bytes)
                                .is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
                    }
                    Value::Collection(_) => false,
                };
                Frame::Integer(if shared { SHARED_REFCOUNT } else { 1 })
            }
            "freq" if !lfu => {
                return Err(Frame::error(format!(
                    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. {lfu_note}"
                )));
            }
            "freq" => Frame::Integer(i64::from(
                ctx.ks().engine_mut().lfu_counter(&args[2]).unwrap_or(0),
            )),
            _ if lfu => {
                return Err(Frame::error(format!(
                    "ERR An LFU maxmemory policy is selected, idle time not tracked. {lfu_note}"
                )));
            }
            // An engine without access stamps (lsm) reports every key as
            // just used.
            _ => Frame::Integer(
                ctx.ks()
                    .engine_mut()
                    .idle_seconds(&args[2])
                    .map_or(0, |s| s as i64),
            ),
        })
    })())
}

/// The encoding Redis 7.0 would report (see the module docs).
fn encoding(ctx: &mut Ctx<'_>, key: &Bytes, value: Value) -> Result<&'static str, Frame> {
    let meta = match value {
        Value::String(bytes) => {
            return Ok(if bytes.len() <= 20 && parse_i64_strict(&bytes).is_some() {
                "int"
            } else if bytes.len() <= 44 && !bytes.starts_with(b"HYLL") {
                // (a HyperLogLog is built in place, hence raw, in Redis too)
                "embstr"
            } else {
                "raw"
            });
        }
        Value::Collection(meta) => meta,
    };
    let kind = meta.kind;
    let len = meta.len;
    let c = Collection {
        key: key.clone(),
        meta,
        expire_at_ms: None,
    };
    // Redis 7.0's defaults: `hash-max-listpack-entries 512`,
    // `zset-max-listpack-entries 128`, `*-max-listpack-value 64`,
    // `set-max-intset-entries 512`; lists are always quicklists.
    let fits = |subs: &[(Bytes, Bytes)], skip: usize| {
        subs.iter()
            .all(|(sub, value)| sub.len().saturating_sub(skip) <= 64 && value.len() <= 64)
    };
    Ok(match kind {
        Kind::List => "quicklist",
        Kind::Stream => "stream",
        Kind::Hash if len <= 512 && fits(&subkeys(ctx, &c, b"", 512)?, 0) => "listpack",
        Kind::Hash => "hashtable",
        // A sorted set's members are its `m`-prefixed subkeys (zset::store).
        Kind::ZSet if len <= 128 && fits(&subkeys(ctx, &c, b"m", 128)?, 1) => "listpack",
        Kind::ZSet => "skiplist",
        Kind::Set if len <= 512 => {
            let members = subkeys(ctx, &c, b"", 512)?;
            let integers = members
                .iter()
                .all(|(member, _)| member.len() <= 20 && parse_i64_strict(member).is_some());
            if integers { "intset" } else { "hashtable" }
        }
        Kind::Set => "hashtable",
    })
}

/// Up to `limit` subkeys of `c` starting with `prefix`.
fn subkeys(
    ctx: &mut Ctx<'_>,
    c: &Collection,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<(Bytes, Bytes)>, Frame> {
    let upper = crate::engine::prefix_end(prefix);
    let range = SubRange {
        lower: std::ops::Bound::Included(prefix),
        upper: upper
            .as_deref()
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
        reverse: false,
        limit,
    };
    let mut out = Vec::new();
    ctx.ks()
        .sub_range(c, &range, &mut out)
        .map_err(engine_error)?;
    Ok(out)
}
