//! The collection-version reserve: why a version is never handed out twice,
//! even across a restart with the clock set back.
//!
//! A collection's subkeys carry its version (see [`super::keys`]), and a
//! deleted collection's subkeys stay on disk until a compaction drops them
//! ([`super::garbage`]). A new collection under the same key must get a
//! version none of them carries, or it would see them as its own. Versions
//! come from the microsecond clock (`Keyspace::new_version`), and a clock
//! can step back across a restart (NTP, a restored VM). So the store keeps
//! a durable *reserve*: before a version above it is used, the reserve is
//! raised to that version plus [`RESERVE_AHEAD_US`], in the same commit-log
//! record as the write that uses the version; on open, versions start above
//! the reserve. That is one small write per minute of version time.
//!
//! ```text
//!  'v'  → reserve, u64 big-endian   (its own namespace: the garbage filter
//!                                    and the top-level scans never see it)
//! ```

use bytes::Bytes;

use super::{LsmEngine, keys, storage};
use crate::engine::EngineError;

/// How far ahead of a used version the reserve is raised (one minute of
/// the microsecond clock).
pub(super) const RESERVE_AHEAD_US: u64 = 60_000_000;

/// The reserve's encoding.
fn decode(raw: &[u8]) -> Result<u64, EngineError> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| storage(format!("a version reserve of {} bytes", raw.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The durable reserve of `db` (0 in a new store).
pub(super) fn read(db: &lsm::Db) -> Result<u64, EngineError> {
    match db.get(&[keys::RESERVE]).map_err(storage)? {
        Some(raw) => decode(&raw),
        None => Ok(0),
    }
}

impl LsmEngine {
    /// The reserve as the open batch leaves it: staged, else durable.
    fn staged_reserve(&self) -> u64 {
        match self.stage.subs.get(&[keys::RESERVE][..]) {
            Some(Some(raw)) => decode(raw).unwrap_or(self.version_reserve),
            _ => self.version_reserve,
        }
    }

    /// Raises the reserve (in the open batch) if `version` is above it.
    pub(super) fn stage_reserve(&mut self, version: u64) -> Result<(), EngineError> {
        if version <= self.staged_reserve() {
            return Ok(());
        }
        let reserve = version.saturating_add(RESERVE_AHEAD_US);
        let value = Bytes::copy_from_slice(&reserve.to_be_bytes());
        self.stage.stage_sub(vec![keys::RESERVE], Some(value));
        if self.stage.active {
            Ok(())
        } else {
            self.commit_stage()
        }
    }

    /// After a successful commit of the staged writes: a reserve among
    /// them is durable now (call before the stage is cleared).
    pub(super) fn note_committed_reserve(&mut self) {
        self.version_reserve = self.staged_reserve();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::RESERVE_AHEAD_US;
    use crate::config::FsyncPolicy;
    use crate::engine::Engine;
    use crate::engine::lsm::{LsmEngine, test_meta as meta};

    #[test]
    fn a_rolled_back_batch_takes_its_reserve_back_and_one_write_covers_many() {
        let dir = tempfile::tempdir().unwrap();
        let now = clock::now_us();
        {
            let mut engine = LsmEngine::open_engine(dir.path(), FsyncPolicy::No).unwrap();
            engine.begin_batch();
            engine.reserve_version(now).unwrap();
            assert_eq!(engine.batch_len(), 1);
            // Versions within the staged reserve need no second write.
            engine.reserve_version(now + 1_000).unwrap();
            assert_eq!(engine.batch_len(), 1);
            engine.rollback_batch(0);
            engine.commit_batch().unwrap();
            assert_eq!(engine.version_floor(), 0);
            engine.begin_batch();
            engine.reserve_version(now + 2_000).unwrap();
            engine
                .put(Bytes::from_static(b"k"), meta(now + 2_000, 1))
                .unwrap();
            engine.commit_batch().unwrap();
        }
        let engine = LsmEngine::open(dir.path(), FsyncPolicy::No).unwrap();
        assert_eq!(engine.version_floor(), now + 2_000 + RESERVE_AHEAD_US);
    }
}
