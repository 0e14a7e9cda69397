//! A CRDT stored as a sibling's value: how cluster mode carries counters,
//! sets and hashes without a second replication path.
//!
//! Why it exists: replication, hints, read repair and anti-entropy all move
//! a key's [`Siblings`] and join them. A CRDT state rides inside a
//! sibling's value (a reserved prefix, a type byte, the state), so all of
//! that carries it unchanged: an update at the coordinator joins every
//! sibling's state, applies the step, and writes the result with the
//! coordinator's whole context (replacing what it merged); updates through
//! two coordinators that did not see each other become two siblings, and
//! whoever reads joins their states ([`Crdt::of_siblings`]): the merge the
//! type defines, so no increment and no unobserved add is lost.
//!
//! Plain values starting with [`PREFIX`] are refused by `SET` in cluster
//! mode, so a stored string never passes for a CRDT.

use bytes::Bytes;

use super::{LwwMap, OrSet, PnCounter};
use crate::cluster::codec::{DecodeError, Reader};
use crate::cluster::siblings::Siblings;

/// The first bytes of every stored CRDT state.
pub const PREFIX: &[u8] = b"\0crdt\0";

/// A counter, a set or a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crdt {
    /// `INCR` and friends.
    Counter(PnCounter),
    /// `SADD` and friends.
    Set(OrSet),
    /// `HSET` and friends.
    Map(LwwMap),
}

/// The key holds a value of another kind (Redis's `WRONGTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

impl Crdt {
    /// The state as a sibling's value.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = PREFIX.to_vec();
        match self {
            Crdt::Counter(c) => {
                out.push(1);
                c.encode(&mut out);
            }
            Crdt::Set(s) => {
                out.push(2);
                s.encode(&mut out);
            }
            Crdt::Map(m) => {
                out.push(3);
                m.encode(&mut out);
            }
        }
        Bytes::from(out)
    }

    /// Reads a sibling's value: `Ok(None)` for a plain value.
    pub fn from_value(value: &[u8]) -> Result<Option<Crdt>, DecodeError> {
        let Some(rest) = value.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        let mut r = Reader::new(rest);
        let crdt = match r.byte()? {
            1 => Crdt::Counter(PnCounter::decode(&mut r)?),
            2 => Crdt::Set(OrSet::decode(&mut r)?),
            3 => Crdt::Map(LwwMap::decode(&mut r)?),
            _ => return Err(DecodeError::Invalid("unknown CRDT type")),
        };
        r.finish()?;
        Ok(Some(crdt))
    }

    /// Joins `other` of the same type; `WrongType` otherwise.
    pub fn join(&mut self, other: &Crdt) -> Result<(), WrongType> {
        match (self, other) {
            (Crdt::Counter(a), Crdt::Counter(b)) => a.join(b),
            (Crdt::Set(a), Crdt::Set(b)) => a.join(b),
            (Crdt::Map(a), Crdt::Map(b)) => a.join(b),
            _ => return Err(WrongType),
        }
        Ok(())
    }

    /// The join of every live sibling's state: `Ok(None)` if the key has
    /// no live sibling; `WrongType` if one holds a plain value (or an
    /// undecodable one) or the types differ.
    pub fn of_siblings(state: &Siblings) -> Result<Option<Crdt>, WrongType> {
        let mut merged: Option<Crdt> = None;
        for value in state.siblings().iter().filter_map(|s| s.value.as_ref()) {
            let crdt = Crdt::from_value(value).ok().flatten().ok_or(WrongType)?;
            match &mut merged {
                None => merged = Some(crdt),
                Some(m) => m.join(&crdt)?,
            }
        }
        Ok(merged)
    }

    /// Whether any live sibling holds a CRDT (a `GET` of a set is then a
    /// type error, of a counter its value).
    pub fn in_siblings(state: &Siblings) -> bool {
        state
            .siblings()
            .iter()
            .any(|s| s.value.as_ref().is_some_and(|v| v.starts_with(PREFIX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::hlc::Hlc;
    use crate::cluster::vector_clock::{Actor, Dot};

    #[test]
    fn every_type_round_trips_and_plain_values_are_not_crdts() {
        let mut counter = PnCounter::new();
        counter.add(Actor(1), 5).unwrap();
        counter.add(Actor(2), -3).unwrap();
        let mut set = OrSet::new();
        set.add(
            Bytes::from_static(b"a"),
            Dot {
                actor: Actor(1),
                counter: 2,
            },
            0,
        )
        .unwrap();
        set.add(
            Bytes::from_static(b"b"),
            Dot {
                actor: Actor(1),
                counter: 3,
            },
            0,
        )
        .unwrap();
        set.remove(b"a");
        let mut map = LwwMap::new();
        map.set(
            Bytes::from_static(b"f"),
            Some(Bytes::from_static(b"v")),
            Hlc(9),
            Actor(1),
        );
        map.set(Bytes::from_static(b"g"), None, Hlc(9), Actor(1));
        for crdt in [Crdt::Counter(counter), Crdt::Set(set), Crdt::Map(map)] {
            let bytes = crdt.to_bytes();
            assert_eq!(Crdt::from_value(&bytes).unwrap(), Some(crdt.clone()));
            // Truncated or extended, it is refused, never misread.
            assert!(Crdt::from_value(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(Crdt::from_value(&longer).is_err());
        }
        assert_eq!(Crdt::from_value(b"42").unwrap(), None);
        assert!(Crdt::from_value(b"\0crdt\0\x09").is_err());
        // A huge claimed count allocates nothing.
        assert!(Crdt::from_value(b"\0crdt\0\x01\xff\xff\xff\xff\x0f").is_err());
    }
}
