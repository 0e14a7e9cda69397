//! Consistent hashing: the hash ring, virtual nodes and preference lists
//! (*System Design Interview*, vol. 1, ch. 5, "안정 해시 설계"; used by ch. 6,
//! the key-value store).
//!
//! # The problem
//!
//! Spread keys over `n` servers with `server = hash(key) % n` and every
//! change of `n` (a server added, a server crashed) sends almost every key to
//! a different server: a cache loses nearly all its hits at once, a database
//! must move nearly all its data. Consistent hashing moves only `k/n` keys on
//! average (`k` keys, `n` servers): the keys the new server takes over, or the
//! keys the departed server held. [`simulate`] measures exactly that.
//!
//! # The design
//!
//! - **The ring.** Hash values `0..2^64` form a circle. Servers and keys are
//!   hashed onto it with one uniform, platform-independent function, XXH3-64
//!   ([`hash`] says why and pins it). A key belongs to the first server
//!   clockwise from it, wrapping from `2^64 - 1` to `0`. A key exactly on a
//!   server's point belongs to that server.
//! - **Virtual nodes.** With one point per server the arcs between servers
//!   are wildly uneven (one server can own several times the mean), and a
//!   departing server dumps its whole arc on a single neighbour. So each
//!   server is placed at many points, virtual node `i` of server `s` at
//!   `hash("s#i")`: its load becomes a sum of many small arcs, whose spread
//!   shrinks like `1/sqrt(vnodes)` (the book quotes ~10% std-dev at 100 and
//!   ~5% at 200 virtual nodes; `hyperscale ring simulate` shows it), and a
//!   departing server's keys scatter over many neighbours.
//! - **Heterogeneity (다양성).** The virtual node count is per server: a
//!   machine with twice the capacity gets twice the virtual nodes and about
//!   twice the keys ([`Ring::ownership`] reports each server's exact share).
//! - **Preference lists.** For replication, [`Ring::preference_list`] walks
//!   clockwise collecting the first `N` *distinct physical* servers, skipping
//!   further virtual nodes of servers already chosen (Dynamo, ch. 6).
//!
//! The ring is a sorted `Vec` of 16-byte virtual nodes: a lookup is one binary
//! search, a membership change a re-sort. [`Ring`] is generic over the server
//! id (anything `Ord + Display`: names, integers, socket addresses), which is
//! hashed by its `Display` text, so a `Ring<String>` and a `Ring<&str>` with
//! the same names place keys identically, and callers can keep a rich id type
//! (address, capacity) without a side table.
//!
//! # Knobs and trade-offs
//!
//! - Virtual nodes per server: more means a more even load and smaller
//!   per-neighbour handoffs, at 16 bytes each and slower membership changes.
//!   100-200 is the usual choice; [`Limits`] caps servers and virtual nodes so
//!   memory stays bounded.
//! - The hash is fast but not cryptographic: keys chosen by an attacker can be
//!   aimed at one server. Systems that hash untrusted keys should hash them
//!   with a secret first (or authenticate clients, as ours do).
//! - Not implemented, by choice: jump hash (no arbitrary removals), Maglev
//!   tables (a lookup-table trade-off for load balancers), and bounded loads.
//!
//! ```
//! let mut ring = ring::Ring::new();
//! ring.add_server("cache-a", 100).unwrap();
//! ring.add_server("cache-b", 100).unwrap();
//! ring.add_server("cache-big", 200).unwrap(); // twice the capacity
//! let owner = ring.owner(b"user:42").unwrap();
//! let replicas = ring.preference_list(b"user:42", 2);
//! assert_eq!(replicas[0], owner);
//! assert_ne!(replicas[0], replicas[1]);
//! ```
#![warn(missing_docs)]

mod error;
pub mod hash;
mod replication;
mod ring;
pub mod simulate;

pub use error::RingError;
pub use hash::key_position;
pub use ring::{Limits, Ring};
