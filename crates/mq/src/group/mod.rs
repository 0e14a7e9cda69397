//! Consumer groups: the coordinator ([`coordinator`]) runs the rebalance
//! state machine ([`state`]) for each group, and committed offsets live in
//! the state store ([`offsets`]).
//!
//! The notes' "state store" holds two things: which consumer reads which
//! partition (here: in memory, rebuilt by a rebalance after a restart, as
//! Kafka's coordinator rebuilds it when it loads a group) and each group's
//! committed offset per partition (here: durable, see [`offsets`]; in a
//! cluster, replicated as records of `__consumer_offsets`, see
//! [`offsets_log`]).

pub mod coordinator;
pub mod offsets;
pub mod offsets_log;
pub mod state;

pub use coordinator::Coordinator;
pub use offsets::OffsetStore;
