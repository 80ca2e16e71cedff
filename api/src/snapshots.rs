//! Incident snapshots: JPEG files in a folder (the default store), indexed in the database.

use std::path::PathBuf;

use crate::store::{Store, StoreError};

/// Largest snapshot accepted.
pub const MAX_SNAPSHOT_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}")]
    Invalid(String),
    #[error("snapshot folder: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(SnapshotStore { dir })
    }

    /// Writes the JPEG (atomically) and records it; idempotent on `snapshot_id`.
    pub async fn save(&self, store: &Store, snapshot_id: &str, site: &str, camera: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
        let id = uuid::Uuid::parse_str(snapshot_id)
            .map_err(|_| SnapshotError::Invalid(format!("snapshot id '{snapshot_id}' is not a UUID")))?;
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::Invalid(format!("snapshot of {} bytes exceeds {MAX_SNAPSHOT_BYTES}", bytes.len())));
        }
        if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(SnapshotError::Invalid("snapshot is not a JPEG".into()));
        }
        let path = self.dir.join(format!("{id}.jpg"));
        let tmp = self.dir.join(format!("{id}.jpg.part"));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        store.put_snapshot(&id.to_string(), site, camera, "image/jpeg", bytes.len() as i64, &path.display().to_string()).await?;
        Ok(())
    }
}
