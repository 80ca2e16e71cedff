//! Key management (admin) and the audit trail.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Permission};
use super::extract::{limit, ApiJson, ApiQuery};
use super::{ApiError, SharedState};
use crate::store::{ApiKey, AuditRow, Role};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    /// Limit the key to these sites (default: every site). Required for role `agent`.
    #[serde(default)]
    pub sites: Option<Vec<String>>,
    /// With role `agent`: also make it the agent's MQTT credential with this user name
    /// (`name` must then be a valid agent name and `sites` exactly one site).
    #[serde(default)]
    pub mqtt: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret: shown once, stored only as a hash.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "admin", responses((status = 200, body = Vec<ApiKey>), (status = 403, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(State(state): State<SharedState>, caller: Caller) -> Result<Json<Vec<ApiKey>>, ApiError> {
    caller.require(Permission::ManageKeys)?;
    Ok(Json(state.ingestor.store().list_keys().await?))
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "admin", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Permission::ManageKeys)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest("name: must be 1–100 characters".into()));
    }
    let store = state.ingestor.store();
    let sites = body.sites.unwrap_or_default();
    crate::commands::check_sites("sites", &sites).map_err(ApiError::BadRequest)?;
    let (key, secret) = match (body.role, sites.as_slice(), body.mqtt) {
        (Role::Agent, [], _) => return Err(ApiError::BadRequest("sites: an agent key must be bound to its site".into())),
        (Role::Agent, [site], true) => {
            crate::commands::check_agent_name("name", name).map_err(ApiError::BadRequest)?;
            store.create_agent(name, site, &caller.actor()).await?
        }
        (_, _, true) => return Err(ApiError::BadRequest("mqtt: only an agent key bound to one site gets an MQTT credential".into())),
        (_, [], false) => store.create_key(name, body.role, &caller.actor()).await?,
        (_, sites, false) => store.create_scoped_key(name, body.role, sites, &caller.actor()).await?,
    };
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "admin", responses((status = 204), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke(State(state): State<SharedState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require(Permission::ManageKeys)?;
    if state.ingestor.store().revoke_key(&id, &caller.actor()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no live key {id}")))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<u32>,
}

/// Every mutation (incident workflow, users, keys, sign-ins), newest first; `actor` names the
/// user ("user alice") or the key ("key name (id)"). A caller limited to some sites sees only
/// the entries about its sites' incidents.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditQuery), responses((status = 200, body = Vec<AuditRow>)),
    security(("api_key" = [])))]
pub async fn audit(State(state): State<SharedState>, caller: Caller, ApiQuery(q): ApiQuery<AuditQuery>) -> Result<Json<Vec<AuditRow>>, ApiError> {
    caller.require(Permission::Read)?;
    Ok(Json(state.ingestor.store().audit_log(limit(q.limit, 100)?, caller.scope()).await?))
}
