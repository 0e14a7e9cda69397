//! The integration tests of `kv`, one binary: each module was a test binary
//! of its own; one link instead of 18 keeps CI's disk and build time small.
// Tests may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

mod blocking;
mod diff_bits;
mod diff_client;
mod diff_geo;
mod diff_hash_set;
mod diff_hll;
mod diff_idle;
mod diff_list;
mod diff_lua_libs;
mod diff_lua_libs_pack;
mod diff_notify;
mod diff_scripting;
mod diff_stream;
mod diff_strings;
mod diff_zset;
mod lsm_engine;
mod protocol;
mod rdb_interop;
mod redis_client;
mod redis_client_lists;
mod redis_client_session;
mod replication;
mod scripting_busy;
mod sentinel;
