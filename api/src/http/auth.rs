//! API-key authentication and role checks.
//!
//! The key comes from `Authorization: Bearer <key>`, `X-Api-Key: <key>`, or — for the GET
//! endpoints browsers call without headers (`EventSource`, `<img>`) — a `key` query parameter.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;

use super::{ApiError, SharedState};
use crate::store::{ApiKey, Role};

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Ingest,
    Read,
    Workflow,
    ManageKeys,
}

impl Permission {
    fn allows(self, role: Role) -> bool {
        match self {
            Permission::Ingest => matches!(role, Role::Agent | Role::Admin),
            Permission::Read | Permission::Workflow => matches!(role, Role::Operator | Role::Admin),
            Permission::ManageKeys => role == Role::Admin,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest (role agent or admin)",
            Permission::Read => "read (role operator or admin)",
            Permission::Workflow => "acknowledge or resolve incidents (role operator or admin)",
            Permission::ManageKeys => "manage keys (role admin)",
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
}

impl Caller {
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if p.allows(self.key.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "key '{}' has role {}, which may not {}",
                self.key.name,
                self.key.role.as_str(),
                p.describe()
            )))
        }
    }

    /// Whether the caller may touch data of `site`.
    pub fn covers_site(&self, site: &str) -> bool {
        self.key.covers_site(site)
    }

    /// 403 naming the site when the caller's scope does not include it.
    pub fn require_site(&self, site: &str, what: &str) -> Result<(), ApiError> {
        if self.covers_site(site) {
            return Ok(());
        }
        let scope = self.key.sites.as_deref().unwrap_or_default().join(", ");
        Err(ApiError::Forbidden(format!(
            "{what} is for site '{site}', but key '{}' may act only for site(s) {scope}; nothing of this request was stored",
            self.key.name
        )))
    }

    /// Who did it, for the audit trail.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.key.name, self.key.key_id)
    }
}

fn key_from(parts: &Parts) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = header("authorization") {
        if let Some(k) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(k.trim().to_owned());
        }
    }
    if let Some(v) = header("x-api-key") {
        return Some(v.to_owned());
    }
    if parts.method == Method::GET {
        let query = parts.uri.query().unwrap_or("");
        for pair in query.split('&') {
            if let Some(v) = pair.strip_prefix("key=") {
                return Some(v.to_owned());
            }
        }
    }
    None
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let secret = key_from(parts).ok_or_else(|| {
            ApiError::Unauthorized("an API key is required: Authorization: Bearer <key> (create one with `ioc-api keys create`)".into())
        })?;
        let key = state
            .ingestor
            .store()
            .authenticate(&secret)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the API key is unknown or revoked".into()))?;
        Ok(Caller { key })
    }
}
