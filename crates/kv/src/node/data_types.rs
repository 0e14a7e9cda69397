//! Riak's data types over RESP: the counter, set and hash commands a
//! cluster node serves, each a CRDT so concurrent use never loses an
//! update (see `cluster::crdt`).
//!
//! Why it exists: these commands read-modify-write, which a quorum of
//! replicas accepting writes concurrently would turn into lost updates.
//! Updates go to the key's coordinator as one `Op::Update` (applied there
//! to the join of the key's siblings); reads are ordinary quorum reads
//! whose siblings are joined here.
//!
//! | command | type | reply |
//! |---|---|---|
//! | `INCR`, `DECR`, `INCRBY key n`, `DECRBY key n` | PN-counter | the new value as the coordinator sees it |
//! | `SADD key m...`, `SREM key m...` | observed-remove set (add wins) | members added / removed |
//! | `SMEMBERS`, `SISMEMBER key m`, `SCARD` | | a quorum read (`R`) |
//! | `HSET key f v [f v ...]`, `HDEL key f...` | map of LWW registers | fields added / removed |
//! | `HGET key f`, `HGETALL` | | a quorum read (`R`) |
//!
//! A counter reads back with `GET` (its value as a string); a set or hash
//! under `GET` is `WRONGTYPE`, and so is `INCR` of a key written by `SET`
//! (a plain string is not a counter in cluster mode). The value a step
//! answers is what the coordinator's replica held plus the step: with
//! `W` < `N` a concurrent step elsewhere is merged later, never lost.

use bytes::Bytes;

use super::resp::{ask, read, wrong_args};
use crate::cluster::crdt::update::ITEMS_MAX;
use crate::cluster::crdt::{Crdt, Update};
use crate::cluster::replica::{Answer, Op};
use crate::protocol::Frame;

use super::resp::Shared;

/// Whether `name` is one of this module's commands.
pub(super) fn handles(name: &str) -> bool {
    matches!(
        name,
        "INCR"
            | "DECR"
            | "INCRBY"
            | "DECRBY"
            | "SADD"
            | "SREM"
            | "SMEMBERS"
            | "SISMEMBER"
            | "SCARD"
            | "HSET"
            | "HDEL"
            | "HGET"
            | "HGETALL"
    )
}

fn integer(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Runs one of the commands [`handles`] names.
pub(super) async fn run(shared: &Shared, name: &str, args: &[Bytes]) -> Frame {
    let n = args.len();
    let update = match (name, n) {
        ("INCR", 2) => Update::Add(1),
        ("DECR", 2) => Update::Add(-1),
        ("INCRBY" | "DECRBY", 3) => {
            let Some(by) = integer(&args[2]) else {
                return Frame::error("ERR value is not an integer or out of range");
            };
            match (name, by.checked_neg()) {
                ("INCRBY", _) => Update::Add(by),
                (_, Some(neg)) => Update::Add(neg),
                (_, None) => return Frame::error("ERR decrement would overflow"),
            }
        }
        ("SADD", 3..) => Update::SetAdd(args[2..].to_vec()),
        ("SREM", 3..) => Update::SetRemove(args[2..].to_vec()),
        ("HSET", 4..) if n.is_multiple_of(2) => {
            let pairs = args[2..].chunks(2).map(|p| (p[0].clone(), p[1].clone()));
            Update::MapSet(pairs.collect())
        }
        ("HDEL", 3..) => Update::MapDelete(args[2..].to_vec()),
        ("SMEMBERS" | "SCARD" | "HGETALL", 2) | ("SISMEMBER" | "HGET", 3) => {
            return query(shared, name, args).await;
        }
        _ => return wrong_args(name),
    };
    let items = match &update {
        Update::SetAdd(v) | Update::SetRemove(v) | Update::MapDelete(v) => v.len(),
        Update::MapSet(v) => v.len(),
        Update::Add(_) => 1,
    };
    if items > ITEMS_MAX {
        return Frame::error(format!(
            "ERR at most {ITEMS_MAX} members or fields per command in cluster mode"
        ));
    }
    let op = Op::Update {
        key: args[1].clone(),
        update,
    };
    match ask(shared, op).await {
        Ok(Answer::Updated(reply)) => Frame::Integer(reply),
        Ok(_) => Frame::error("ERR unexpected answer to an update"),
        Err(e) => e,
    }
}

/// A read command: a quorum read, the siblings joined.
async fn query(shared: &Shared, name: &str, args: &[Bytes]) -> Frame {
    let state = match read(shared, &args[1]).await {
        Ok(state) => state,
        Err(e) => return e,
    };
    let crdt = match Crdt::of_siblings(&state) {
        Ok(crdt) => crdt,
        Err(e) => return Frame::error(e.to_string()),
    };
    match (name, crdt) {
        ("SMEMBERS" | "HGETALL", None) => Frame::Array(Vec::new()),
        ("SCARD" | "SISMEMBER", None) => Frame::Integer(0),
        ("HGET", None) => Frame::Null,
        ("SMEMBERS", Some(Crdt::Set(s))) => {
            Frame::Array(s.members().map(|m| Frame::Bulk(m.clone())).collect())
        }
        ("SCARD", Some(Crdt::Set(s))) => Frame::Integer(s.len() as i64),
        ("SISMEMBER", Some(Crdt::Set(s))) => Frame::Integer(i64::from(s.contains(&args[2]))),
        ("HGET", Some(Crdt::Map(m))) => Frame::optional(m.get(&args[2]).cloned()),
        ("HGETALL", Some(Crdt::Map(m))) => Frame::Array(
            m.iter()
                .flat_map(|(f, v)| [Frame::Bulk(f.clone()), Frame::Bulk(v.clone())])
                .collect(),
        ),
        _ => Frame::error(crate::cluster::crdt::value::WrongType.to_string()),
    }
}

/// `GET` of a key holding CRDT states: a counter's value, else `WRONGTYPE`.
pub(super) fn get_value(state: &crate::cluster::siblings::Siblings) -> Frame {
    match Crdt::of_siblings(state) {
        Ok(Some(Crdt::Counter(c))) => Frame::bulk(c.value().to_string()),
        Ok(None) => Frame::Null,
        _ => Frame::error(crate::cluster::crdt::value::WrongType.to_string()),
    }
}
