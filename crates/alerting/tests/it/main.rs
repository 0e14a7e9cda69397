//! The integration tests of `alerting`, one binary (see ARCHITECTURE.md, "Tests").
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod am;
mod pipeline;
mod promtool;
mod rules;
mod support;
