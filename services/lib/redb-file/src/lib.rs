//! A redb file that comes back after a failed write.
//!
//! After an I/O error (a full disk above all) redb refuses every later operation on
//! the same `Database` until the file is opened again. The embedded queue and the
//! embedded store each have one writer thread; when a write fails (or the storage
//! engine panics), the writer marks the file broken and calls [`RedbFile::reopen`]
//! before its next batch, so the component works again by itself once space returns.
//! Readers take the current handle with [`RedbFile::get`] for one short read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

/// How often a broken file is reopened, at most.
pub const REOPEN_EVERY: Duration = Duration::from_millis(500);
/// How long a reopen waits for readers to let go of the old handle.
const READERS_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ReopenError {
    #[error("{path}: still in use by a reader; it will be reopened later")]
    InUse { path: String },
    #[error("{path}: {source}")]
    Open { path: String, source: redb::DatabaseError },
}

pub struct RedbFile {
    path: PathBuf,
    /// `None` while the file is being reopened.
    db: RwLock<Option<Arc<Database>>>,
    last_reopen: Mutex<Option<Instant>>,
}

impl RedbFile {
    /// Opens (or creates) the file, creating its directory.
    pub fn open(path: &Path) -> Result<RedbFile, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let db = Database::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(RedbFile { path: path.to_path_buf(), db: RwLock::new(Some(Arc::new(db))), last_reopen: Mutex::new(None) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database, or `None` while it is being reopened. Hold it briefly: a
    /// reopen waits for every handle to be dropped.
    pub fn get(&self) -> Option<Arc<Database>> {
        self.db.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Opens the file again: drops the current handle once no reader holds it, then
    /// opens a fresh one. Called by the writer thread only; paced to [`REOPEN_EVERY`].
    pub fn reopen(&self) -> Result<Arc<Database>, ReopenError> {
        {
            let mut last = self.last_reopen.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(since) = last.map(|at| at.elapsed())
                && since < REOPEN_EVERY
            {
                std::thread::sleep(REOPEN_EVERY - since);
            }
            *last = Some(Instant::now());
        }
        let path = self.path.display().to_string();
        let old = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut old) = old {
            let deadline = Instant::now() + READERS_GRACE;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(still_shared);
                        return Err(ReopenError::InUse { path });
                    }
                }
            }
        }
        let db = Arc::new(Database::create(&self.path).map_err(|source| ReopenError::Open { path: path.clone(), source })?);
        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(db.clone());
        tracing::info!(path, "storage file reopened after a failed write");
        Ok(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");

    #[test]
    fn reopen_keeps_what_was_committed_and_waits_for_readers() {
        let dir = tempfile::tempdir().unwrap();
        let file = RedbFile::open(&dir.path().join("sub/x.redb")).unwrap();
        let db = file.get().unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(1, 7).unwrap();
        txn.commit().unwrap();
        let reader = file.get().unwrap();
        drop(db);
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(reader);
        });
        let db = file.reopen().unwrap();
        released.join().unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(T).unwrap().get(1).unwrap().unwrap().value(), 7);
    }
}
