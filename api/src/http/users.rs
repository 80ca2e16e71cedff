//! User management over HTTP (admin for every site): list, create, disable. The same as
//! `ioc-api users …`; passwords are accepted only in the request body.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::auth::{Caller, Permission};
use super::extract::ApiJson;
use super::{ApiError, SharedState};
use crate::store::{Role, User};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// viewer, operator or admin.
    pub role: Role,
    /// Limit the user to these sites (default: every site).
    #[serde(default)]
    pub sites: Option<Vec<String>>,
    /// At least 8 characters; stored only as an Argon2id hash.
    pub password: String,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "admin", responses((status = 200, body = Vec<User>), (status = 403, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(State(state): State<SharedState>, caller: Caller) -> Result<Json<Vec<User>>, ApiError> {
    caller.require(Permission::ManageKeys)?;
    Ok(Json(state.ingestor.store().list_users().await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 409, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(State(state): State<SharedState>, caller: Caller, ApiJson(body): ApiJson<NewUser>) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require(Permission::ManageKeys)?;
    if let Some(sites) = &body.sites {
        crate::commands::check_sites("sites", sites).map_err(ApiError::BadRequest)?;
    }
    let user = state.ingestor.store().create_user(body.name.trim(), body.role, body.sites.as_deref(), &body.password, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Disables a user: their sessions end at once.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "admin", responses((status = 204), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn disable(State(state): State<SharedState>, caller: Caller, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require(Permission::ManageKeys)?;
    if state.ingestor.store().disable_user(&name, &caller.actor()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no enabled user {name}")))
    }
}
