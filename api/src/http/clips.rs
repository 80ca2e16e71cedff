//! Evidence clips: served with HTTP range requests (a `<video>` element seeks by range), and
//! uploaded whole by agents that deliver over HTTP (the MQTT path sends chunks).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::auth::{Caller, Permission};
use super::extract::ApiQuery;
use super::{ApiError, SharedState};
use crate::clips::ClipError;

fn clip_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id).map(|u| u.to_string()).map_err(|_| ApiError::BadRequest(format!("id: '{id}' is not a UUID")))
}

/// An incident's evidence clip (MP4; `Range` requests answered with 206). Only a clip whose
/// bytes hash to what its incident's event promised is served; another site's is "not found".
#[utoipa::path(get, path = "/api/v1/clips/{id}", tag = "incidents",
    responses((status = 200, content_type = "video/mp4", body = Vec<u8>), (status = 206, content_type = "video/mp4", body = Vec<u8>),
        (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn clip(State(state): State<SharedState>, caller: Caller, Path(id): Path<String>, request: Request) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let id = clip_id(&id)?;
    let path = state
        .ingestor
        .store()
        .servable_clip(&id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no clip {id}")))?;
    let served = tower_http::services::ServeFile::new(&path)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::Internal(format!("clip file {path}: {e}")))?;
    Ok(served.map(axum::body::Body::new).into_response())
}

/// Agents upload an evidence clip whole (HTTP alternative to the MQTT chunk topics).
#[utoipa::path(put, path = "/api/v1/clips/{id}", tag = "incidents", params(super::incidents::MediaQuery),
    request_body(content = Vec<u8>, content_type = "video/mp4"),
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 413, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn upload_clip(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<super::incidents::MediaQuery>,
    body: Bytes,
) -> Result<axum::http::StatusCode, ApiError> {
    let (site, camera) = q.target(&caller, "the clip")?;
    state.clips.save(state.ingestor.store(), &id, &site, &camera, &body).await.map_err(|e| match e {
        ClipError::Invalid(m) => ApiError::BadRequest(m),
        other => ApiError::Internal(other.to_string()),
    })?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
