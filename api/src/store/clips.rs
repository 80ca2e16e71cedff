//! Evidence clips: the index of the MP4 files, which incident promised which SHA-256, and
//! each camera's byte budget.

use super::query::{build, Filter, Value};
use super::{get, now_ms, Store, StoreError};

impl Store {
    pub async fn clip_exists(&self, clip_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM clips WHERE clip_id = $1").bind(clip_id.to_owned()).fetch_optional(&self.pool).await?;
        Ok(row.is_some())
    }

    /// Records a clip file (idempotent on `clip_id`: the first one stays).
    pub async fn put_clip(&self, clip_id: &str, site: &str, camera: &str, bytes: i64, sha256: &str, path: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clips (clip_id, site_id, camera_id, bytes, sha256, path, received_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (clip_id) DO NOTHING",
        )
        .bind(clip_id.to_owned())
        .bind(site.to_owned())
        .bind(camera.to_owned())
        .bind(bytes)
        .bind(sha256.to_owned())
        .bind(path.to_owned())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The SHA-256 an incident event promised for this clip, once that event is stored.
    pub async fn promised_clip_sha256(&self, clip_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT clip_sha256 FROM incidents WHERE clip_id = $1")
            .bind(clip_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "clip_sha256")).transpose()
    }

    /// Forgets a camera's oldest clips beyond `budget` bytes (the newest is always kept);
    /// returns their file paths, to delete.
    pub async fn clips_over_budget(&self, site: &str, camera: &str, budget: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT clip_id, bytes, path FROM clips WHERE site_id = $1 AND camera_id = $2 ORDER BY received_ms DESC, clip_id DESC")
            .bind(site.to_owned())
            .bind(camera.to_owned())
            .fetch_all(&self.pool)
            .await?;
        let mut total = 0i64;
        let mut gone = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            total += get::<i64>(r, "bytes")?;
            if i > 0 && total > budget {
                let id: String = get(r, "clip_id")?;
                sqlx::query("DELETE FROM clips WHERE clip_id = $1").bind(id).execute(&self.pool).await?;
                gone.push(get(r, "path")?);
            }
        }
        Ok(gone)
    }

    /// The file of a clip that may be served to a caller of `scope`: recorded for a site in
    /// scope, and promised — with this very SHA-256 — by an incident of the same site.
    pub async fn servable_clip(&self, clip_id: &str, scope: Option<&[String]>) -> Result<Option<String>, StoreError> {
        let mut q = Filter::default();
        q.push("c.clip_id", "=", Value::Text(clip_id.to_owned()));
        q.push_sites("c.site_id", scope);
        let sql = format!(
            "SELECT c.path FROM clips c JOIN incidents i ON i.clip_id = c.clip_id AND i.clip_sha256 = c.sha256 \
             AND i.site_id = c.site_id {}",
            q.where_clause()
        );
        let row = build(sql, q)?.fetch_optional(&self.pool).await?;
        row.map(|r| get(&r, "path")).transpose()
    }
}
