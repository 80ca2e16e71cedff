//! API keys: random secrets shown once, stored as SHA-256 hashes, each with a role and an
//! optional site scope. An agent's key is bound to one site and is also its MQTT credential
//! (user name + the same secret), so one secret works for MQTT and HTTP ingest.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{get, incidents::audit, now_ms, Store, StoreError};

/// What a key or a user may do. `agent` ingests only (keys only); `viewer` reads; `operator`
/// also runs the incident workflow (acknowledge, resolve); `admin` also manages users, agents
/// and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "viewer" => Some(Role::Viewer),
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
    /// The sites this key may touch; `None`: every site.
    pub sites: Option<Vec<String>>,
    /// For agent keys: the MQTT user name (the password is the key's secret).
    pub mqtt_username: Option<String>,
}

impl ApiKey {
    /// Whether this key may read or write data of `site`.
    pub fn covers_site(&self, site: &str) -> bool {
        super::covers_site(self.sites.as_deref(), site)
    }
}

/// A live agent's broker credential, as the broker's password and ACL files need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUser {
    pub username: String,
    /// Mosquitto password-file hash (`$7$…`).
    pub hash: String,
    pub site: String,
}

pub fn hash_key(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// Creates a key for every site; returns its record and the secret (shown once, never
    /// stored).
    pub async fn create_key(&self, name: &str, role: Role, actor: &str) -> Result<(ApiKey, String), StoreError> {
        self.insert_key(name, role, None, None, actor).await
    }

    /// Creates a key limited to `sites`.
    pub async fn create_scoped_key(&self, name: &str, role: Role, sites: &[String], actor: &str) -> Result<(ApiKey, String), StoreError> {
        self.insert_key(name, role, Some(sites), None, actor).await
    }

    /// Creates an agent's credential: an `agent` key bound to `site` whose secret is also its
    /// MQTT password, with MQTT user name `name` (unique among live agents).
    pub async fn create_agent(&self, name: &str, site: &str, actor: &str) -> Result<(ApiKey, String), StoreError> {
        self.insert_key(name, Role::Agent, Some(&[site.to_owned()]), Some(name), actor).await
    }

    async fn insert_key(
        &self,
        name: &str,
        role: Role,
        sites: Option<&[String]>,
        mqtt_username: Option<&str>,
        actor: &str,
    ) -> Result<(ApiKey, String), StoreError> {
        let key_id = random_hex(6)?;
        let secret = format!("rsk_{key_id}_{}", random_hex(24)?);
        let created = now_ms();
        let mqtt_hash = match mqtt_username {
            Some(_) => Some(crate::broker_auth::mosquitto_hash(&secret).map_err(|e| StoreError::Corrupt(e.to_string()))?),
            None => None,
        };
        let sites_text = sites.map(|s| s.join(","));
        let mut tx = self.pool.begin().await?;
        if let Some(user) = mqtt_username {
            let taken = sqlx::query("SELECT key_id FROM api_keys WHERE mqtt_username = $1 AND revoked_ms IS NULL")
                .bind(user.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!("a live agent named '{user}' exists already (revoke it first)")));
            }
        }
        sqlx::query(
            "INSERT INTO api_keys (key_id, name, role, key_hash, created_ms, sites, mqtt_username, mqtt_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key_id.clone())
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(hash_key(&secret))
        .bind(created)
        .bind(sites_text.clone())
        .bind(mqtt_username.map(str::to_owned))
        .bind(mqtt_hash)
        .execute(&mut *tx)
        .await?;
        let scope = sites_text.map_or_else(|| "all sites".to_owned(), |s| format!("sites {s}"));
        audit(&mut tx, actor, "key.create", &key_id, Some(&format!("{name} ({}, {scope})", role.as_str()))).await?;
        tx.commit().await?;
        let key = ApiKey {
            key_id,
            name: name.to_owned(),
            role,
            created_ms: created,
            revoked_ms: None,
            sites: sites.map(<[String]>::to_vec),
            mqtt_username: mqtt_username.map(str::to_owned),
        };
        Ok((key, secret))
    }

    /// Every live agent's broker credential, ordered by user name.
    pub async fn broker_users(&self) -> Result<Vec<BrokerUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT mqtt_username, mqtt_hash, sites FROM api_keys \
             WHERE mqtt_username IS NOT NULL AND revoked_ms IS NULL ORDER BY mqtt_username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BrokerUser {
                    username: get(r, "mqtt_username")?,
                    hash: get::<Option<String>>(r, "mqtt_hash")?.unwrap_or_default(),
                    site: get::<Option<String>>(r, "sites")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Changes whenever a key is created or revoked (the broker's files are rewritten then).
    pub async fn keys_version(&self) -> Result<(i64, i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(created_ms), 0) AS c, COALESCE(MAX(revoked_ms), 0) AS r FROM api_keys",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((get(&row, "n")?, get(&row, "c")?, get(&row, "r")?))
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
        sites: super::parse_sites(get(r, "sites")?),
        mqtt_username: get(r, "mqtt_username")?,
    })
}
