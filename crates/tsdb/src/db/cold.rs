//! The I/O of the cold tier inside the database: moving a block out and
//! deleting blocks wherever their chunks are.
//!
//! Why a module: the order of the steps is what makes a move crash-safe (see
//! [`crate::cold`]); it lives in one place, beside the block list it swaps.

use std::sync::Arc;

use super::Inner;
use crate::block::Block;
use crate::cold::ColdTier;
use crate::error::Result;
use crate::wal::sync_dir;

impl Inner {
    /// Moves block `id` to cold storage: upload and verify, mark, swap the
    /// open block for one reading the store, then remove the local chunks.
    pub(super) fn move_cold(&self, id: &str) -> Result<()> {
        let Some(tier) = &self.cold else {
            return Ok(());
        };
        let Some(local) = self.find(&[id.to_string()]).pop() else {
            return Ok(());
        };
        if local.meta().cold {
            return Ok(());
        }
        let dir = local.dir().to_path_buf();
        // 1. Until the marker is durable, a crash leaves the block local.
        tier.upload(&dir, id)?;
        tier.write_marker(&dir)?;
        // 2. Queries from now on read the store; those in flight keep the
        //    local file open (an unlinked file stays readable).
        let cold = Arc::new(Block::open_in(&dir, Some(tier))?);
        {
            let mut blocks = self.blocks.write();
            for b in blocks.iter_mut() {
                if b.meta().id == id && b.meta().resolution_ms == cold.meta().resolution_ms {
                    *b = cold.clone();
                }
            }
        }
        // 3. `open_in` (adopt) already removed the local chunks; make it durable.
        debug_assert!(!dir.join("chunks").exists());
        sync_dir(&dir)
    }
}

/// Deletes a block: the local directory (crash-safely), then its objects if
/// it is cold. A failure to delete the objects is logged, not returned: the
/// block is already gone, the objects are unreferenced garbage.
pub(super) fn delete_block(b: &Block, cold: Option<&Arc<ColdTier>>) -> Result<()> {
    crate::block::delete_dir(b.dir())?;
    if let (true, Some(tier)) = (b.meta().cold, cold)
        && let Err(e) = tier.delete(&b.meta().id)
    {
        tracing::warn!(block = %b.meta().id, error = %e, "cold objects of a deleted block were not deleted");
    }
    Ok(())
}
