//! API keys: random secrets shown once, stored as SHA-256 hashes, each with a role.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{get, incidents::audit, now_ms, Store, StoreError};

/// What a key may do. `agent` ingests only; `operator` reads and runs the incident workflow;
/// `admin` also manages keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

pub fn hash_key(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// Creates a key; returns its record and the secret (shown once, never stored).
    pub async fn create_key(&self, name: &str, role: Role, actor: &str) -> Result<(ApiKey, String), StoreError> {
        let key_id = random_hex(6)?;
        let secret = format!("rsk_{key_id}_{}", random_hex(24)?);
        let created = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO api_keys (key_id, name, role, key_hash, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(key_id.clone())
            .bind(name.to_owned())
            .bind(role.as_str())
            .bind(hash_key(&secret))
            .bind(created)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, actor, "key.create", &key_id, Some(&format!("{name} ({})", role.as_str()))).await?;
        tx.commit().await?;
        Ok((ApiKey { key_id, name: name.to_owned(), role, created_ms: created, revoked_ms: None }, secret))
    }

    /// The live key whose secret this is.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_ms IS NULL")
            .bind(hash_key(secret))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_key).transpose()
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_ms").fetch_all(&self.pool).await?;
        rows.iter().map(row_to_key).collect()
    }

    pub async fn revoke_key(&self, key_id: &str, actor: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE key_id = $2 AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(key_id.to_owned())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        audit(&mut tx, actor, "key.revoke", key_id, None).await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn row_to_key(r: &sqlx::any::AnyRow) -> Result<ApiKey, StoreError> {
    let role: String = get(r, "role")?;
    Ok(ApiKey {
        key_id: get(r, "key_id")?,
        name: get(r, "name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        created_ms: get(r, "created_ms")?,
        revoked_ms: get(r, "revoked_ms")?,
    })
}
