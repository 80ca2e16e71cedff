//! `POST /api/v1/events` (agents pushing over HTTP) and `GET /api/v1/events` (query).

use axum::extract::State;
use axum::Json;
use roadsight_events::{EventType, ObjectClass};
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Permission};
use super::extract::{id_param, limit, time_ms, ApiJson, ApiQuery};
use super::{ApiError, SharedState};
use crate::ingest::{parse_event, IngestError};
use crate::store::{EventFilter, IngestOutcome};

/// Ingests a batch of events (a JSON array, or one event object). All-or-nothing: if any
/// event is invalid, none is stored and the error names its index and field. Idempotent on
/// `event_id`: re-sent events count as duplicates.
#[utoipa::path(post, path = "/api/v1/events", tag = "events",
    request_body(content = Object, description = "An event (wire schema v1) or an array of events"),
    responses((status = 200, body = IngestOutcome), (status = 400, body = super::ErrorBody),
              (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 413, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn ingest(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<IngestOutcome>, ApiError> {
    caller.require(Permission::Ingest)?;
    let items = match body {
        serde_json::Value::Array(items) => items,
        obj @ serde_json::Value::Object(_) => vec![obj],
        _ => return Err(ApiError::BadRequest("body: expected an event object or an array of events".into())),
    };
    if items.len() > 10_000 {
        return Err(ApiError::BadRequest(format!("body: {} events in one batch; at most 10000", items.len())));
    }
    let events = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_event(&v).map_err(|e| ApiError::BadRequest(format!("events[{i}]: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, e) in events.iter().enumerate() {
        caller.require_site(&e.site_id, &format!("events[{i}]"))?;
    }
    let outcome = state.ingestor.ingest(events, "http").await.map_err(|e| match e {
        IngestError::Invalid(m) => ApiError::BadRequest(m.to_string()),
        IngestError::Store(s) => s.into(),
    })?;
    Ok(Json(outcome))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Camera id.
    camera: Option<String>,
    site: Option<String>,
    /// Comma-separated event types (line_crossing, zone_enter, zone_exit, incident, counts, camera_status).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Object class (car, motorcycle, bus, truck, bicycle, person).
    class: Option<String>,
    /// RFC 3339, inclusive.
    from: Option<String>,
    /// RFC 3339, exclusive.
    to: Option<String>,
    /// 1..=1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub fn parse_types(v: &Option<String>) -> Result<Vec<EventType>, ApiError> {
    let Some(s) = v else { return Ok(Vec::new()) };
    s.split(',')
        .map(|t| {
            EventType::ALL.into_iter().find(|k| k.as_str() == t.trim()).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::BadRequest(format!("type: unknown event type '{t}' (known: {})", known.join(", ")))
            })
        })
        .collect()
}

fn parse_cursor(c: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("cursor: '{c}' is not a cursor from this API"));
    let (ms, id) = c.split_once('_').ok_or_else(bad)?;
    let ms = ms.parse().map_err(|_| bad())?;
    uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((ms, id.to_owned()))
}

/// Lists events, newest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    caller.require(Permission::Read)?;
    let class = match &q.class {
        Some(c) => Some(
            ObjectClass::ALL
                .into_iter()
                .find(|k| k.as_str() == c)
                .ok_or_else(|| ApiError::BadRequest(format!("class: unknown class '{c}'")))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let filter = EventFilter {
        site_id: id_param("site", &q.site)?,
        camera_id: id_param("camera", &q.camera)?,
        kinds: parse_types(&q.kind)?,
        class,
        from_ms: time_ms("from", &q.from)?,
        to_ms: time_ms("to", &q.to)?,
        before: q.cursor.as_deref().map(parse_cursor).transpose()?,
        limit: limit(q.limit, 100)?,
        scope: caller.sites.clone(),
    };
    let rows = state.ingestor.store().list_events(&filter).await?;
    let next_cursor = (rows.len() == filter.limit as usize)
        .then(|| rows.last())
        .flatten()
        .and_then(|r| {
            let ms = chrono::DateTime::parse_from_rfc3339(r.event["occurred_at"].as_str()?).ok()?.timestamp_millis();
            Some(format!("{ms}_{}", r.event["event_id"].as_str()?))
        });
    Ok(Json(EventPage { events: rows.into_iter().map(|r| r.event).collect(), next_cursor }))
}
