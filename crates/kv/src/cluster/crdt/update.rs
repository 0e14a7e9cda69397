//! The CRDT commands' updates as the coordinator applies them: `INCRBY`,
//! `SADD`, `SREM`, `HSET`, `HDEL`, each a step on the key's merged state
//! that returns the integer Redis replies with.
//!
//! Why it exists: an update must be applied where the key's dots and the
//! node's actor are (the coordinator, atomically with its own state), not
//! by a client that read and writes back: two connections on one node
//! reading 5 would both write "actor A added 6" and lose a step. So the
//! replica state machine receives the update itself ([`Update`]), and this
//! module is the decision, apart from I/O.

use bytes::Bytes;

use super::value::{Crdt, WrongType};
use super::{LwwMap, OrSet, PnCounter};
use crate::cluster::codec::{DecodeError, Reader, put_bytes, put_varint};
use crate::cluster::hlc::Hlc;
use crate::cluster::vector_clock::{Actor, Dot};

/// The most members or fields one update may carry.
pub const ITEMS_MAX: usize = 1024;

/// The largest encoded state a CRDT key may grow to: half of what a
/// replica accepts as a value (`cluster::wire::Limits`), so a state always
/// travels; a step that would pass it is refused.
pub const STATE_BYTES_MAX: usize = 4 << 20;

/// One command's step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `INCRBY` (`DECRBY`: negative).
    Add(i64),
    /// `SADD members...`
    SetAdd(Vec<Bytes>),
    /// `SREM members...`
    SetRemove(Vec<Bytes>),
    /// `HSET field value ...`
    MapSet(Vec<(Bytes, Bytes)>),
    /// `HDEL fields...`
    MapDelete(Vec<Bytes>),
}

/// Why an update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The key holds another kind of value.
    #[error(transparent)]
    WrongType(#[from] WrongType),
    /// The counter would leave `i64`.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// The state would pass [`STATE_BYTES_MAX`].
    #[error("ERR the key's value would pass 4 MiB, the most cluster mode keeps per key")]
    TooLarge,
}

/// What the coordinator supplies to a step.
pub struct Stamp<'a> {
    /// This node's actor.
    pub actor: Actor,
    /// Mints a fresh dot (a set tag per added member).
    pub next_dot: &'a mut dyn FnMut() -> Dot,
    /// The write's hybrid timestamp (map registers).
    pub hlc: Hlc,
    /// Now, for clock entries.
    pub now_ms: u64,
}

impl Update {
    /// Applies the step to `current` (the key's merged state, `None` if
    /// absent): the new state and Redis's integer reply.
    pub fn apply(
        &self,
        current: Option<Crdt>,
        stamp: &mut Stamp<'_>,
    ) -> Result<(Crdt, i64), Refused> {
        match (self, current) {
            (Update::Add(delta), None) => add(PnCounter::new(), *delta, stamp),
            (Update::Add(delta), Some(Crdt::Counter(c))) => add(c, *delta, stamp),
            (Update::SetAdd(m) | Update::SetRemove(m), None) => set(OrSet::new(), self, m, stamp),
            (Update::SetAdd(m) | Update::SetRemove(m), Some(Crdt::Set(s))) => {
                set(s, self, m, stamp)
            }
            (Update::MapSet(_) | Update::MapDelete(_), None) => Ok(map(LwwMap::new(), self, stamp)),
            (Update::MapSet(_) | Update::MapDelete(_), Some(Crdt::Map(m))) => {
                Ok(map(m, self, stamp))
            }
            _ => Err(WrongType.into()),
        }
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let list = |out: &mut Vec<u8>, tag: u8, items: &[Bytes]| {
            out.push(tag);
            put_varint(out, items.len() as u64);
            for i in items {
                put_bytes(out, i);
            }
        };
        match self {
            Update::Add(delta) => {
                out.push(1);
                out.extend_from_slice(&delta.to_be_bytes());
            }
            Update::SetAdd(m) => list(out, 2, m),
            Update::SetRemove(m) => list(out, 3, m),
            Update::MapSet(pairs) => {
                out.push(4);
                put_varint(out, pairs.len() as u64);
                for (f, v) in pairs {
                    put_bytes(out, f);
                    put_bytes(out, v);
                }
            }
            Update::MapDelete(f) => list(out, 5, f),
        }
    }

    /// Reads the wire form; items longer than `item_max` bytes or more
    /// than [`ITEMS_MAX`] are refused.
    pub fn decode(r: &mut Reader<'_>, item_max: usize) -> Result<Update, DecodeError> {
        let item = |r: &mut Reader<'_>| -> Result<Bytes, DecodeError> {
            Ok(Bytes::copy_from_slice(r.bytes("update item", item_max)?))
        };
        let tag = r.byte()?;
        if tag == 1 {
            let mut be = [0u8; 8];
            for b in &mut be {
                *b = r.byte()?;
            }
            return Ok(Update::Add(i64::from_be_bytes(be)));
        }
        let count = r.count("update items", ITEMS_MAX)?;
        let mut items = Vec::with_capacity(count.min(r.remaining()));
        let mut pairs = Vec::new();
        for _ in 0..count {
            if tag == 4 {
                pairs.push((item(r)?, item(r)?));
            } else {
                items.push(item(r)?);
            }
        }
        Ok(match tag {
            2 => Update::SetAdd(items),
            3 => Update::SetRemove(items),
            4 => Update::MapSet(pairs),
            5 => Update::MapDelete(items),
            _ => return Err(DecodeError::Invalid("unknown CRDT update")),
        })
    }
}

fn add(mut c: PnCounter, delta: i64, stamp: &Stamp<'_>) -> Result<(Crdt, i64), Refused> {
    let value = c.add(stamp.actor, delta).map_err(|_| Refused::Overflow)?;
    Ok((Crdt::Counter(c), value))
}

fn set(
    mut s: OrSet,
    update: &Update,
    members: &[Bytes],
    stamp: &mut Stamp<'_>,
) -> Result<(Crdt, i64), Refused> {
    let mut changed = 0;
    for m in members {
        if matches!(update, Update::SetAdd(_)) {
            let fresh = !s.contains(m);
            // A fresh dot is never stale; re-adding refreshes the tag.
            if s.add(m.clone(), (stamp.next_dot)(), stamp.now_ms).is_ok() && fresh {
                changed += 1;
            }
        } else if s.remove(m) {
            changed += 1;
        }
    }
    Ok((Crdt::Set(s), changed))
}

fn map(mut m: LwwMap, update: &Update, stamp: &Stamp<'_>) -> (Crdt, i64) {
    let mut changed = 0;
    match update {
        Update::MapSet(pairs) => {
            for (f, v) in pairs {
                let fresh = m.get(f).is_none();
                if m.set(f.clone(), Some(v.clone()), stamp.hlc, stamp.actor) && fresh {
                    changed += 1;
                }
            }
        }
        Update::MapDelete(fields) => {
            for f in fields {
                if m.get(f).is_some() && m.set(f.clone(), None, stamp.hlc, stamp.actor) {
                    changed += 1;
                }
            }
        }
        _ => {}
    }
    (Crdt::Map(m), changed)
}
