//! Evidence clips: MP4 files in the data folder, assembled from an agent's chunk messages
//! (`roadsight/v1/{site}/{camera}/clips/{clip_id}/{index}/{count}`, any order, any repeats) or
//! uploaded whole over HTTP, indexed in the database with their SHA-256, and kept per camera
//! within a byte budget (the oldest go first).
//!
//! Trust: a chunk's site comes from its topic (the broker lets an agent write only its own
//! site's topics) or from the HTTP caller's scope; a clip is served only for an incident of the
//! same site whose event promised exactly the SHA-256 of the assembled file.

use std::path::{Path, PathBuf};

use roadsight_events::clip;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{0}")]
    Invalid(String),
    #[error("clip folder: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A clip now complete and recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembled {
    pub clip_id: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Which chunk a message carries (from its topic).
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub clip_id: &'a str,
    pub site: &'a str,
    pub camera: &'a str,
    pub index: u32,
    pub count: u32,
}

#[derive(Clone)]
pub struct ClipStore {
    dir: PathBuf,
    /// Bytes of clips kept per camera.
    budget_per_camera: u64,
}

fn invalid(msg: impl Into<String>) -> ClipError {
    ClipError::Invalid(msg.into())
}

impl ClipStore {
    pub fn new(dir: PathBuf, budget_per_camera: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join(".parts"))?;
        Ok(ClipStore { dir, budget_per_camera })
    }

    fn parts_dir(&self, id: &uuid::Uuid, count: u32) -> PathBuf {
        // The count is part of the folder: chunks that disagree on it never mix.
        self.dir.join(".parts").join(format!("{id}.{count}"))
    }

    /// Stores chunk `index` of `count`; when it completes the clip, assembles and records it.
    /// Idempotent: a chunk of a clip already recorded changes nothing.
    pub async fn save_chunk(&self, store: &Store, chunk: Chunk<'_>, data: &[u8]) -> Result<Option<Assembled>, ClipError> {
        let Chunk { clip_id, site, camera, index, count } = chunk;
        let id = parse_id(clip_id)?;
        if count == 0 || count > clip::MAX_CHUNKS {
            return Err(invalid(format!("clip of {count} chunks: expected 1..={}", clip::MAX_CHUNKS)));
        }
        if index >= count {
            return Err(invalid(format!("chunk {index} of a clip of {count} chunks")));
        }
        let last = index + 1 == count;
        if data.is_empty() || data.len() > clip::CHUNK_BYTES || (!last && data.len() != clip::CHUNK_BYTES) {
            return Err(invalid(format!(
                "chunk {index} of {count} holds {} bytes: every chunk but the last holds exactly {}",
                data.len(),
                clip::CHUNK_BYTES
            )));
        }
        if store.clip_exists(&id.to_string()).await? {
            return Ok(None);
        }
        let parts = self.parts_dir(&id, count);
        tokio::fs::create_dir_all(&parts).await?;
        write_atomic(&parts.join(index.to_string()), data).await?;
        let mut present = 0;
        let mut entries = tokio::fs::read_dir(&parts).await?;
        while let Some(e) = entries.next_entry().await? {
            present += u32::from(e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok_and(|i| i < count)));
        }
        if present < count {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(count as usize * clip::CHUNK_BYTES);
        for i in 0..count {
            bytes.extend_from_slice(&tokio::fs::read(parts.join(i.to_string())).await?);
        }
        let assembled = self.save(store, &id.to_string(), site, camera, &bytes).await;
        let _ = tokio::fs::remove_dir_all(&parts).await;
        assembled.map(Some)
    }

    /// Stores a whole clip (HTTP upload, or the assembled chunks) and records it; applies the
    /// camera's budget. Idempotent on `clip_id`.
    pub async fn save(&self, store: &Store, clip_id: &str, site: &str, camera: &str, bytes: &[u8]) -> Result<Assembled, ClipError> {
        let id = parse_id(clip_id)?.to_string();
        if bytes.len() as u64 > clip::MAX_BYTES {
            return Err(invalid(format!("clip of {} bytes exceeds {}", bytes.len(), clip::MAX_BYTES)));
        }
        if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
            return Err(invalid("clip is not an MP4 file (no ftyp box)"));
        }
        let sha256: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let path = self.dir.join(format!("{id}.mp4"));
        write_atomic(&path, bytes).await?;
        store.put_clip(&id, site, camera, bytes.len() as i64, &sha256, &path.display().to_string()).await?;
        if let Some(promised) = store.promised_clip_sha256(&id).await? {
            if promised != sha256 {
                tracing::warn!(clip = %id, site, camera, "clip's SHA-256 {sha256} differs from its incident's {promised}: not served");
            }
        }
        for old in store.clips_over_budget(site, camera, self.budget_per_camera as i64).await? {
            let _ = tokio::fs::remove_file(&old).await;
        }
        Ok(Assembled { clip_id: id, bytes: bytes.len() as u64, sha256 })
    }
}

fn parse_id(clip_id: &str) -> Result<uuid::Uuid, ClipError> {
    uuid::Uuid::parse_str(clip_id).map_err(|_| invalid(format!("clip id '{clip_id}' is not a UUID")))
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
