//! Camera registry (fed by events and `camera_status`) and sequence gaps (missing data).

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use super::auth::{Caller, Permission};
use super::extract::{id_param, ApiQuery};
use super::{ApiError, SharedState};
use crate::store::{CameraRow, GapRow};

/// Every camera that has sent an event: health, last seen, fps, location, missing events.
#[utoipa::path(get, path = "/api/v1/cameras", tag = "cameras",
    responses((status = 200, body = Vec<CameraRow>), (status = 401, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(State(state): State<SharedState>, caller: Caller) -> Result<Json<Vec<CameraRow>>, ApiError> {
    caller.require(Permission::Read)?;
    Ok(Json(state.ingestor.store().list_cameras(caller.scope()).await?))
}

/// One camera (404 for another site's camera when the caller is limited to some sites).
#[utoipa::path(get, path = "/api/v1/cameras/{site}/{camera}", tag = "cameras",
    responses((status = 200, body = CameraRow), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn detail(
    State(state): State<SharedState>,
    caller: Caller,
    Path((site, camera)): Path<(String, String)>,
) -> Result<Json<CameraRow>, ApiError> {
    caller.require(Permission::Read)?;
    let site = id_param("site", &Some(site))?.unwrap_or_default();
    let camera = id_param("camera", &Some(camera))?.unwrap_or_default();
    state
        .ingestor
        .store()
        .camera(&site, &camera, caller.scope())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no camera {camera} at site {site}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GapQuery {
    camera: Option<String>,
}

/// Ranges of per-camera `seq` numbers never received: the IOC is missing these events.
#[utoipa::path(get, path = "/api/v1/gaps", tag = "cameras", params(GapQuery),
    responses((status = 200, body = Vec<GapRow>), (status = 400, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn gaps(State(state): State<SharedState>, caller: Caller, ApiQuery(q): ApiQuery<GapQuery>) -> Result<Json<Vec<GapRow>>, ApiError> {
    caller.require(Permission::Read)?;
    let camera = id_param("camera", &q.camera)?;
    Ok(Json(state.ingestor.store().list_gaps(camera.as_deref(), caller.scope()).await?))
}
