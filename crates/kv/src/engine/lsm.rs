//! The durable engine, on the `lsm` crate.
//!
//! (Waiting for the `lsm` crate's `Db`; until then opening it reports that
//! the engine is not available, so `--engine memory` is the way to run.)

use std::path::Path;

use super::{Engine, EngineError};
use crate::config::FsyncPolicy;

/// The LSM-backed engine.
#[derive(Debug)]
pub struct LsmEngine {
    _private: (),
}

impl LsmEngine {
    /// Opens (or creates) the store under `dir`.
    pub fn open(_dir: &Path, _fsync: FsyncPolicy) -> Result<Box<dyn Engine>, EngineError> {
        Err(EngineError::Unsupported(
            "the lsm engine is not available in this build yet; start with --engine memory",
        ))
    }
}
