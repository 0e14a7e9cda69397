//! The placement service: the virtual cluster map (data nodes, their failure domains,
//! their state from heartbeats) and placement as a pure function of an object id and
//! the map.
//!
//! Why pure: the API node must find an object's copies again without storing where
//! they went, and a test must be able to check the spread. Placement ranks every member
//! by rendezvous hashing (highest `hash(object id, node name)` first), then reorders the
//! ranking round-robin over failure domains (the best node of each zone, then the
//! second best of each, ...), so consecutive copies or shards land in different zones
//! whenever there are enough zones. The result is a full ordering: the first `n` are an
//! object's `n` places, and the first 3 of 6 are the same nodes whether asked for 3 or
//! 6. It depends only on the members' names and zones, never on their state, so a down
//! node keeps its places (reads skip it, repair rewrites its share on return).
//!
//! Node states come from heartbeats: **up** while the last answered heartbeat is
//! younger than `suspect_after_ms`, **suspect** until `down_after_ms`, then **down**.
//! A failed call on the data path marks a node suspect at once.

use crate::ObjectId;

/// A data node in the cluster map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name (the address the API node reaches it at).
    pub name: String,
    /// Its failure domain (rack, host or data center).
    pub zone: String,
}

/// A node's state, from heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Heartbeats answered recently.
    Up,
    /// Missed heartbeats (or a failed call): tried last.
    Suspect,
    /// Missed heartbeats for `down_after_ms`: not tried.
    Down,
}

/// Heartbeat timing.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    /// Between heartbeats.
    pub interval_ms: u64,
    /// Without an answer this long a node is suspect.
    pub suspect_after_ms: u64,
    /// Without an answer this long a node is down.
    pub down_after_ms: u64,
    /// Down this long, a node's copies and shards are rebuilt on spares.
    pub repair_after_ms: u64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            interval_ms: 500,
            suspect_after_ms: 1_500,
            down_after_ms: 5_000,
            repair_after_ms: 30_000,
        }
    }
}

/// A node's state given when it last answered (`None`: never) and whether the data
/// path saw it fail since.
pub fn state(
    last_ok_ms: Option<u64>,
    failed_since: bool,
    now_ms: u64,
    hb: &Heartbeat,
) -> NodeState {
    let Some(ok) = last_ok_ms else {
        return NodeState::Down;
    };
    let age = now_ms.saturating_sub(ok);
    if age >= hb.down_after_ms {
        NodeState::Down
    } else if age >= hb.suspect_after_ms || failed_since {
        NodeState::Suspect
    } else {
        NodeState::Up
    }
}

/// A stable 64-bit hash of an object id and a node name (FNV-1a, then a mixer).
fn score(id: ObjectId, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.to_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finalizer: spreads FNV's weak high bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Every member's index, in `id`'s placement order: rendezvous ranking, interleaved
/// across zones. An object's `n` places are the first `n`.
pub fn place(id: ObjectId, members: &[Member]) -> Vec<usize> {
    let mut ranked: Vec<(u64, usize)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (score(id, &m.name), i))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    // Zones in the order of their best node; each zone's nodes in rank order.
    let mut zones: Vec<(&str, Vec<usize>)> = Vec::new();
    for (_, i) in ranked {
        let zone = members[i].zone.as_str();
        match zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, list)) => list.push(i),
            None => zones.push((zone, vec![i])),
        }
    }
    let mut out = Vec::with_capacity(members.len());
    let mut round = 0;
    while out.len() < members.len() {
        for (_, list) in &zones {
            if let Some(&i) = list.get(round) {
                out.push(i);
            }
        }
        round += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(zones: &[&str]) -> Vec<Member> {
        zones
            .iter()
            .enumerate()
            .map(|(i, z)| Member {
                name: format!("127.0.0.1:{}", 7000 + i),
                zone: (*z).to_string(),
            })
            .collect()
    }

    #[test]
    fn places_spread_over_zones_and_are_stable() {
        let m = members(&["a", "a", "b", "b", "c", "c"]);
        for _ in 0..500 {
            let id = ObjectId::generate();
            let p = place(id, &m);
            assert_eq!(p, place(id, &m), "placement is a pure function");
            let mut sorted = p.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..6).collect::<Vec<_>>(), "a permutation");
            let zones: std::collections::HashSet<_> = p[..3].iter().map(|&i| &m[i].zone).collect();
            assert_eq!(zones.len(), 3, "3 copies in 3 zones");
        }
    }

    #[test]
    fn placement_spreads_load() {
        let m = members(&["a", "b", "c", "d", "e", "f"]);
        let mut first = [0u32; 6];
        for _ in 0..6000 {
            first[place(ObjectId::generate(), &m)[0]] += 1;
        }
        for n in first {
            assert!((700..1300).contains(&n), "primary counts {first:?}");
        }
    }

    #[test]
    fn states_follow_missed_heartbeats() {
        let hb = Heartbeat::default();
        assert_eq!(state(None, false, 10_000, &hb), NodeState::Down);
        assert_eq!(state(Some(9_900), false, 10_000, &hb), NodeState::Up);
        assert_eq!(state(Some(9_900), true, 10_000, &hb), NodeState::Suspect);
        assert_eq!(state(Some(8_000), false, 10_000, &hb), NodeState::Suspect);
        assert_eq!(state(Some(4_000), false, 10_000, &hb), NodeState::Down);
    }
}
