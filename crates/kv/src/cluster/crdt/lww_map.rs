//! A map of last-writer-wins registers: `HSET`, `HDEL` and `HGET` on
//! replicas that accept writes concurrently.
//!
//! Each field is its own register holding a value (or a delete marker),
//! stamped with a hybrid timestamp and the writing actor. A merge keeps,
//! per field, the register with the greater `(timestamp, actor)`; that is
//! a total order, so the merge is a join and every replica picks the same
//! winner. Unlike one LWW value for the whole hash, concurrent writes to
//! *different* fields all survive; two concurrent writes to the same field
//! keep the later one (by hybrid clock), which is the documented loss of
//! this type (a hash field that must keep both belongs in a set or in a
//! sibling-keeping value).
//!
//! `HDEL` writes a delete marker rather than dropping the field, or a
//! replica that missed the delete would bring the field back on the next
//! merge. Markers are kept until a collection policy knows every replica
//! has them (not built yet: see the cluster's "What comes next").

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::cluster::codec::{DecodeError, Reader, put_bytes, put_varint};
use crate::cluster::hlc::Hlc;
use crate::cluster::vector_clock::Actor;

/// One field's register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// When it was written.
    pub hlc: Hlc,
    /// Who wrote it (breaks timestamp ties).
    pub actor: Actor,
    /// The value; `None` after `HDEL`.
    pub value: Option<Bytes>,
}

impl Register {
    /// The merge order: timestamp, then actor, then value (the last only
    /// matters if one actor reused a timestamp, which a hybrid clock never
    /// does, but every replica must still pick the same).
    fn rank(&self) -> (Hlc, Actor, &Option<Bytes>) {
        (self.hlc, self.actor, &self.value)
    }
}

/// Field → last-writer-wins register.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LwwMap {
    fields: BTreeMap<Bytes, Register>,
}

impl LwwMap {
    /// An empty map.
    pub fn new() -> LwwMap {
        LwwMap::default()
    }

    /// Writes `field` (`None`: deletes it) at `hlc` as `actor`. A write
    /// older than the register it meets loses, as it would in a merge;
    /// returns whether it took effect.
    pub fn set(&mut self, field: Bytes, value: Option<Bytes>, hlc: Hlc, actor: Actor) -> bool {
        let register = Register { hlc, actor, value };
        match self.fields.get(&field) {
            Some(current) if current.rank() >= register.rank() => false,
            _ => {
                self.fields.insert(field, register);
                true
            }
        }
    }

    /// The value of `field`, if present and not deleted.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.fields.get(field).and_then(|r| r.value.as_ref())
    }

    /// The live fields and values, in field order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.fields
            .iter()
            .filter_map(|(f, r)| r.value.as_ref().map(|v| (f, v)))
    }

    /// How many live fields there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no field is live.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Merges another replica's map: per field, the greater register.
    pub fn join(&mut self, other: &LwwMap) {
        for (field, theirs) in &other.fields {
            self.set(
                field.clone(),
                theirs.value.clone(),
                theirs.hlc,
                theirs.actor,
            );
        }
    }
}

impl LwwMap {
    /// The number of fields written or deleted (deleted ones are kept as
    /// markers so an older write arriving late cannot revive them).
    pub fn registers(&self) -> usize {
        self.fields.len()
    }

    /// Appends the compact form: per field, its register.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.fields.len() as u64);
        for (field, reg) in &self.fields {
            put_bytes(out, field);
            put_varint(out, reg.hlc.0);
            put_varint(out, reg.actor.0);
            match &reg.value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    put_bytes(out, v);
                }
            }
        }
    }

    /// Reads one map, refusing unsorted fields and lying counts.
    pub fn decode(r: &mut Reader<'_>) -> Result<LwwMap, DecodeError> {
        let count = r.count("map fields", r.remaining() / 4)?;
        let mut fields = BTreeMap::new();
        let mut last: Option<Bytes> = None;
        for _ in 0..count {
            let field = Bytes::copy_from_slice(r.bytes("map field", usize::MAX)?);
            if last.as_ref().is_some_and(|l| *l >= field) {
                return Err(DecodeError::Invalid("map fields not ascending"));
            }
            let hlc = Hlc(r.varint()?);
            let actor = Actor(r.varint()?);
            let value = match r.byte()? {
                0 => None,
                1 => Some(Bytes::copy_from_slice(r.bytes("map value", usize::MAX)?)),
                _ => return Err(DecodeError::Invalid("unknown map value tag")),
            };
            last = Some(field.clone());
            fields.insert(field, Register { hlc, actor, value });
        }
        Ok(LwwMap { fields })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn maps() -> impl Strategy<Value = LwwMap> {
        prop::collection::vec((0u8..4, prop::option::of(0u8..3), 0u64..5, 0u64..3), 0..12).prop_map(
            |writes| {
                let mut map = LwwMap::new();
                for (field, value, at, actor) in writes {
                    map.set(
                        Bytes::from(vec![field]),
                        value.map(|v| Bytes::from(vec![v])),
                        Hlc(at),
                        Actor(actor),
                    );
                }
                map
            },
        )
    }

    #[test]
    fn different_fields_both_survive_and_the_later_write_wins_a_field() {
        let mut a = LwwMap::new();
        let mut b = LwwMap::new();
        a.set("name".into(), Some("ada".into()), Hlc(1), Actor(1));
        b.set("born".into(), Some("1815".into()), Hlc(2), Actor(2));
        b.set("name".into(), Some("lovelace".into()), Hlc(3), Actor(2));
        a.join(&b);
        assert_eq!(a.get(b"name").map(|v| &v[..]), Some(&b"lovelace"[..]));
        assert_eq!(a.len(), 2);
        // A delete is a write: a replica that missed it cannot revive the field.
        let stale = a.clone();
        assert!(a.set("born".into(), None, Hlc(4), Actor(1)));
        a.join(&stale);
        assert_eq!(a.get(b"born"), None);
        assert_eq!(a.len(), 1);
        assert!(!a.set("name".into(), Some("old".into()), Hlc(0), Actor(9)));
    }

    proptest! {
        #[test]
        fn merge_laws(a in maps(), b in maps(), c in maps()) {
            crate::cluster::crdt::check_lattice_laws(&a, &b, &c, LwwMap::join)?;
        }
    }
}
