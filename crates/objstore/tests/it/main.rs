//! The integration tests of `objstore`, one binary (see ARCHITECTURE.md, "Tests").
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod basic;
mod cluster;
mod corruption;
mod crash;
mod gc;
mod model;
mod recovery;
mod s3_meta;
mod support;
mod wire;
