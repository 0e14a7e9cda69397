//! The integration tests of `shortener`, one binary: each module was a test binary
//! of its own; one link instead of 3 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod api;
mod expiry;
mod front;
mod url_rules;
