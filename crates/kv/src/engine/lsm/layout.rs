//! Where the store lives in the data directory, and the one-time migration
//! of a store written before key namespaces (see [`super::keys`]).
//!
//! Why a module: the first lsm engine stored raw user keys directly in
//! `<dir>`. Namespaced keys cannot be added in place: any byte string was a
//! valid raw key, so a raw key can equal a namespaced one (`"kfoo"` is both
//! the raw key "kfoo" and the namespaced key "foo"), and rewriting keys in the
//! same store could overwrite ones not yet rewritten. So the store now lives
//! in `<dir>/v2`, and an old store is copied into it:
//!
//! 1. `<dir>/v2` has a store (its `CURRENT`): use it (and delete the old
//!    store's files if a migration was interrupted after step 4).
//! 2. `<dir>/CURRENT` exists (an old store): open it (its lock keeps a second
//!    server out), copy every live key, with its expiry, into a fresh store
//!    in `<dir>/v2.tmp` (namespaced), flush that store and close both;
//! 3. rename `<dir>/v2.tmp` to `<dir>/v2` (atomic) and fsync `<dir>`;
//! 4. delete the old store's files.
//!
//! A crash before 3 leaves the old store untouched (the copy is redone); after
//! 3 the new one is complete. Otherwise a new store is created in `<dir>/v2`.

use std::path::{Path, PathBuf};

use super::{keys, storage};
use crate::engine::EngineError;

/// The store's directory inside the data directory.
pub(super) const STORE_DIR: &str = "v2";
/// Where a migration builds the store before renaming it to [`STORE_DIR`].
const MIGRATING_DIR: &str = "v2.tmp";
/// Keys copied per write batch during a migration.
const MIGRATE_BATCH: usize = 1024;

/// Returns the directory of the store to open under `dir`, migrating an
/// old store first (see the module docs). `options` are the store's.
pub(super) fn prepare(dir: &Path, options: &lsm::Options) -> Result<PathBuf, EngineError> {
    let store = dir.join(STORE_DIR);
    if store.join("CURRENT").exists() {
        if dir.join("CURRENT").exists() {
            remove_old_store(dir)?;
        }
        return Ok(store);
    }
    if dir.join("CURRENT").exists() {
        migrate(dir, options)?;
        remove_old_store(dir)?;
    }
    Ok(store)
}

/// Steps 2 and 3 of the module docs.
fn migrate(dir: &Path, options: &lsm::Options) -> Result<(), EngineError> {
    let old = lsm::Db::open(
        dir,
        lsm::Options {
            create_if_missing: false,
            sync: lsm::SyncPolicy::No,
            compaction_filter: None,
            ..options.clone()
        },
    )
    .map_err(|e| {
        storage(format!(
            "cannot open the store to migrate in {}: {e}",
            dir.display()
        ))
    })?;
    let tmp = dir.join(MIGRATING_DIR);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| storage(format!("{}: {e}", tmp.display())))?;
    }
    let new = lsm::Db::open(
        &tmp,
        lsm::Options {
            sync: lsm::SyncPolicy::No,
            compaction_filter: None,
            ..options.clone()
        },
    )
    .map_err(storage)?;
    let (mut batch, mut copied) = (lsm::WriteBatch::new(), 0u64);
    for item in old.scan(..).map_err(storage)? {
        let kv = item.map_err(storage)?;
        let key = keys::top(&kv.key);
        match kv.expires_at_ms {
            Some(at) => batch.put_with_expiry(&key, &kv.value, at),
            None => batch.put(&key, &kv.value),
        };
        copied += 1;
        if batch.len() >= MIGRATE_BATCH {
            new.write(&batch).map_err(storage)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        new.write(&batch).map_err(storage)?;
    }
    // Everything into fsynced tables and the manifest before the rename.
    new.flush().map_err(storage)?;
    drop(new);
    drop(old);
    let store = dir.join(STORE_DIR);
    std::fs::rename(&tmp, &store).map_err(|e| storage(format!("{}: {e}", store.display())))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage(format!("{}: {e}", dir.display())))?;
    tracing::info!(keys = copied, dir = %dir.display(), "migrated the lsm store to namespaced keys ({STORE_DIR}/)");
    Ok(())
}

/// Step 4: deletes the old store's files from `dir` (only the LSM's own
/// names; anything else in the directory stays), `CURRENT` last: while it
/// is there, the next open retries (step 1).
fn remove_old_store(dir: &Path) -> Result<(), EngineError> {
    let entries = std::fs::read_dir(dir).map_err(|e| storage(format!("{}: {e}", dir.display())))?;
    let mut doomed: Vec<(bool, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let lsm_file = matches!(name.as_str(), "CURRENT" | "CURRENT.tmp" | "LOCK")
            || name.starts_with("MANIFEST-")
            || name.ends_with(".sst")
            || name.ends_with(".log");
        if lsm_file && entry.file_type().is_ok_and(|t| t.is_file()) {
            doomed.push((name == "CURRENT", entry.path()));
        }
    }
    doomed.sort();
    for (_, path) in doomed {
        std::fs::remove_file(&path).map_err(|e| storage(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}
