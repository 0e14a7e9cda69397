//! The integration tests of `lsm`, one binary: each module was a test binary
//! of its own; one link instead of 6 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod basic;
mod corruption;
mod crash;
mod full_disk;
mod group_commit;
mod model;
