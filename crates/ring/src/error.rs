//! What can go wrong when changing a ring, and what to do about it.
//!
//! Lookups never fail (an empty ring answers `None`); only membership changes
//! can be refused, and a refused change leaves the ring exactly as it was.

use thiserror::Error;

/// A refused change to a [`Ring`](crate::Ring). The ring is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RingError {
    /// The server id is already on the ring.
    #[error(
        "server `{id}` is already on the ring: remove it first, or give the new server another id"
    )]
    DuplicateServer {
        /// The id, as displayed.
        id: String,
    },
    /// A server was given zero virtual nodes, so it could never own a key.
    #[error("server `{id}` was given 0 virtual nodes: every server needs at least 1")]
    ZeroVnodes {
        /// The id, as displayed.
        id: String,
    },
    /// A server asked for more virtual nodes than the ring's limit.
    #[error(
        "server `{id}` asks for {requested} virtual nodes, above the limit of {max}: \
         use fewer, or raise `Limits::vnodes_per_server_max`"
    )]
    TooManyVnodes {
        /// The id, as displayed.
        id: String,
        /// How many were asked for.
        requested: u32,
        /// The limit in force.
        max: u32,
    },
    /// Adding the server would put more virtual nodes on the ring than allowed.
    #[error(
        "adding server `{id}` would put {total} virtual nodes on the ring, above the limit of {max}: \
         use fewer virtual nodes per server, or raise `Limits::vnodes_total_max`"
    )]
    RingFull {
        /// The id, as displayed.
        id: String,
        /// The total the ring would reach.
        total: usize,
        /// The limit in force.
        max: usize,
    },
    /// The ring already holds its maximum number of servers.
    #[error(
        "cannot add server `{id}`: the ring already holds {max} servers; raise `Limits::servers_max`"
    )]
    TooManyServers {
        /// The id, as displayed.
        id: String,
        /// The limit in force.
        max: usize,
    },
    /// The server to remove (or resize) is not on the ring.
    #[error("server `{id}` is not on the ring")]
    UnknownServer {
        /// The id, as displayed.
        id: String,
    },
}
