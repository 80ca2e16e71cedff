//! Incidents: list, detail, the operator workflow (acknowledge, resolve), snapshots.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use roadsight_events::IncidentKind;
use serde::Deserialize;

use super::auth::{Caller, Permission};
use super::extract::{id_param, limit, time_ms, ApiJson, ApiQuery};
use super::{ApiError, SharedState};
use crate::snapshots::SnapshotError;
use crate::store::{IncidentFilter, IncidentRow};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    camera: Option<String>,
    /// stopped_vehicle, wrong_way, congestion, speeding, red_light, no_stopping, lane_restriction.
    kind: Option<String>,
    /// open (agent still reports it), unresolved, acknowledged, resolved, started, updated, ended.
    state: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

const STATES: [&str; 7] = ["open", "unresolved", "acknowledged", "resolved", "started", "updated", "ended"];

fn one_of(field: &str, v: &Option<String>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if !allowed.contains(&s.as_str()) => {
            Err(ApiError::BadRequest(format!("{field}: unknown value '{s}' (allowed: {})", allowed.join(", "))))
        }
        other => Ok(other.clone()),
    }
}

/// Lists incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentQuery),
    responses((status = 200, body = Vec<IncidentRow>), (status = 400, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Json<Vec<IncidentRow>>, ApiError> {
    caller.require(Permission::Read)?;
    let f = IncidentFilter {
        camera_id: id_param("camera", &q.camera)?,
        kind: one_of("kind", &q.kind, &IncidentKind::ALL.map(IncidentKind::as_str))?,
        state: one_of("state", &q.state, &STATES)?,
        from_ms: time_ms("from", &q.from)?,
        to_ms: time_ms("to", &q.to)?,
        limit: limit(q.limit, 100)?,
        scope: caller.sites.clone(),
    };
    Ok(Json(state.ingestor.store().list_incidents(&f).await?))
}

fn incident_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id).map(|u| u.to_string()).map_err(|_| ApiError::BadRequest(format!("id: '{id}' is not a UUID")))
}

/// One incident; `snapshot_id` (when `snapshot_available`) is served at `/api/v1/snapshots/{id}`.
/// Another site's incident is "not found" for a caller limited to some sites.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    responses((status = 200, body = IncidentRow), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn detail(State(state): State<SharedState>, caller: Caller, Path(id): Path<String>) -> Result<Json<IncidentRow>, ApiError> {
    caller.require(Permission::Read)?;
    let id = incident_id(&id)?;
    state.ingestor.store().get_incident(&id, caller.scope()).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowNote {
    /// What the operator did or saw (required, ≤ 2000 characters).
    pub note: String,
}

async fn workflow(
    state: SharedState,
    caller: Caller,
    id: String,
    note: String,
    step: crate::store::Workflow,
) -> Result<Json<IncidentRow>, ApiError> {
    caller.require(Permission::Workflow)?;
    let id = incident_id(&id)?;
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(ApiError::BadRequest("note: must be 1–2000 characters".into()));
    }
    state
        .ingestor
        .store()
        .incident_workflow(&id, step, &caller.actor(), note, caller.scope())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))
}

/// An operator acknowledges an incident (audited).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/acknowledge", tag = "incidents", request_body = WorkflowNote,
    responses((status = 200, body = IncidentRow), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn acknowledge(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WorkflowNote>,
) -> Result<Json<IncidentRow>, ApiError> {
    workflow(state, caller, id, body.note, crate::store::Workflow::Acknowledge).await
}

/// An operator resolves an incident (audited; also acknowledges it if needed).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", tag = "incidents", request_body = WorkflowNote,
    responses((status = 200, body = IncidentRow), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn resolve(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WorkflowNote>,
) -> Result<Json<IncidentRow>, ApiError> {
    workflow(state, caller, id, body.note, crate::store::Workflow::Resolve).await
}

/// A snapshot JPEG.
#[utoipa::path(get, path = "/api/v1/snapshots/{id}", tag = "incidents",
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn snapshot(State(state): State<SharedState>, caller: Caller, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = incident_id(&id)?;
    let (content_type, path) =
        state.ingestor.store().snapshot(&id, caller.scope()).await?.ok_or_else(|| ApiError::NotFound(format!("no snapshot {id}")))?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| ApiError::Internal(format!("snapshot file {path}: {e}")))?;
    Ok(([(header::CONTENT_TYPE, content_type)], bytes))
}

/// Whose media an agent uploads (a snapshot, a clip): checked ids, within the caller's sites.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MediaQuery {
    site: String,
    camera: String,
}

impl MediaQuery {
    /// (site, camera) for an agent allowed to ingest `what` for that site.
    pub fn target(self, caller: &Caller, what: &str) -> Result<(String, String), ApiError> {
        caller.require(Permission::Ingest)?;
        let site = id_param("site", &Some(self.site))?.unwrap_or_default();
        let camera = id_param("camera", &Some(self.camera))?.unwrap_or_default();
        caller.require_site(&site, what)?;
        Ok((site, camera))
    }
}

/// Agents upload a snapshot JPEG (HTTP alternative to the MQTT snapshot topic).
#[utoipa::path(put, path = "/api/v1/snapshots/{id}", tag = "incidents", params(MediaQuery),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 413, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn upload_snapshot(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MediaQuery>,
    body: Bytes,
) -> Result<axum::http::StatusCode, ApiError> {
    let (site, camera) = q.target(&caller, "the snapshot")?;
    state.snapshots.save(state.ingestor.store(), &id, &site, &camera, &body).await.map_err(|e| match e {
        SnapshotError::Invalid(m) => ApiError::BadRequest(m),
        other => ApiError::Internal(other.to_string()),
    })?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
