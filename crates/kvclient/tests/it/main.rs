//! The integration tests of `kvclient`, one binary: each module was a test binary
//! of its own; one link instead of 1 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod remote;
mod replicated;
