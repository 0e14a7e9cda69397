//! The integration tests of `gateway`, one binary: each module was a test binary
//! of its own; one link instead of 8 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod balancing;
mod bodies;
mod cache;
mod datacenters;
mod example;
mod failover;
mod head;
mod limits;
mod normalize;
mod ratelimit;
mod relay;
mod workers;
