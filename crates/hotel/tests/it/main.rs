//! The integration tests of `hotel`, one binary. PostgreSQL tests start one
//! throwaway cluster for the whole binary (`postgres.rs`) and fail loudly
//! when PostgreSQL is not installed: `scripts/test` installs it.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod postgres;
mod support;

mod api;
mod archive;
mod cache;
mod model_check;
mod page;
mod race;
mod saga;
mod sharding;
