//! Unique IDs for distributed systems: the book's chapter 7, "분산 시스템을
//! 위한 유일 ID 생성기 설계" (designing a unique ID generator in distributed
//! systems), built as Twitter's snowflake.
//!
//! # The problem
//! A single database's `auto_increment` cannot serve many servers in many
//! datacenters. The notes weigh four answers:
//!
//! | approach | size | sorts by time | numeric | coordination |
//! |---|---|---|---|---|
//! | multi-master, step K | 64 | no | yes | K fixed up front; resizing renumbers |
//! | UUID | 128 | v4 no, v7 yes | no | none |
//! | ticket server | 64 | yes | yes | every ID is a round trip to one server (SPOF) |
//! | snowflake | 64 | yes (to the ms) | yes | a machine id per generator, once |
//!
//! `hyperscale id compare` (module [`compare`]) measures those columns here
//! by generating IDs each way.
//!
//! # The design: snowflake
//! A 64-bit ID is `sign (1) | timestamp (41) | datacenter (5) | machine (5) |
//! sequence (12)`: milliseconds since a chosen epoch, then who made it, then a
//! per-millisecond counter. Time first makes IDs sort by creation time; the
//! node bits make generators independent (no coordination per ID); the
//! counter allows 4,096 IDs per millisecond per generator (4.096 M/s).
//!
//! - [`layout`]: the widths are a value, not constants (the notes' "optimize
//!   each section's length"), checked to sum to 63.
//! - [`snowflake`]: the generator. Lock-free: one `AtomicU64` holds the last
//!   `(millisecond, sequence)` and moves only forward by compare-exchange, so
//!   IDs are strictly increasing on every thread. When the 4,096 are used up it
//!   waits for the next millisecond; when the wall clock steps back it waits
//!   if the step is small (`backward_wait_ms_max`, default 5 ms) and otherwise
//!   refuses with an error — never a duplicate.
//! - [`clock`]: time behind a trait, so tests replay backward steps and
//!   exhaustion deterministically with a [`ManualClock`].
//! - [`lease`]: machine ids from config, or leased from a key-value store
//!   (`SET NX PX`, renewed at ttl/3) so two live generators never share one —
//!   the collision the notes warn about. A generator that loses its lease stops
//!   issuing with a clear error.
//! - [`machine`]: how a server claims its machine id before issuing any ID:
//!   leased, fixed by the operator (`--machine-id`), or by default the lowest
//!   id whose lock file no other process on the host holds; printed at startup.
//! - [`decode`]: an ID back into time (ISO-8601 UTC), datacenter, machine,
//!   sequence.
//! - [`base62`]: IDs as short text, the URL shortener's codes.
//! - [`http`]: `GET /api/v1/ids?count=N` for callers in other languages;
//!   [`system`] runs it inside `hyperscale up` with metrics and health.
//!
//! # Knobs and trade-offs
//! - `epoch_ms`: later epoch = longer life (41 bits last 69.7 years).
//! - `layout`: fewer sequence bits and more timestamp bits for long-lived,
//!   low-rate systems; more machine bits for large fleets.
//! - `backward_wait_ms_max`: availability (wait out NTP corrections) against
//!   latency (a call may block that long).
//! - Clock sync (the notes' wrap-up): IDs from *different* generators sort
//!   only as well as their clocks agree; run NTP. One generator's IDs are
//!   strictly increasing regardless.
#![warn(missing_docs)]

pub mod base62;
pub mod clock;
pub mod compare;
pub mod decode;
pub mod http;
pub mod layout;
pub mod lease;
pub mod machine;
pub mod snowflake;
pub mod system;
pub mod utc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decode::{Decoded, decode};
pub use layout::{Layout, LayoutError, Parts};
pub use lease::{Lease, LeaseConfig, LeaseError, LeaseStore, MemoryLeaseStore, RespLeaseStore};
pub use snowflake::{
    EPOCH_MS_DEFAULT, EPOCH_MS_TWITTER, GenerateError, Generator, GeneratorConfig,
};
