//! `GET /api/v1/stream`: Server-Sent Events of new events (same filters as the event list;
//! a caller limited to some sites gets only theirs). Browsers authenticate with the session
//! cookie (`EventSource` sends it), machines with the key header.
//! Each client reads from a bounded broadcast; one that falls behind skips ahead and gets a
//! `lagged` event with the number it missed — ingest never waits for it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::auth::{Caller, Permission};
use super::events::parse_types;
use super::extract::{id_param, ApiQuery};
use super::{ApiError, SharedState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    camera: Option<String>,
    site: Option<String>,
    /// Comma-separated event types.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Incident kind (with type=incident).
    incident_kind: Option<String>,
}

/// Live events as `text/event-stream`; each SSE `event:` is the event type, `data:` the event JSON.
#[utoipa::path(get, path = "/api/v1/stream", tag = "events", params(StreamQuery),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 400, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn stream(
    State(state): State<SharedState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(Permission::Read)?;
    let camera = id_param("camera", &q.camera)?;
    let site = id_param("site", &q.site)?;
    let kinds = parse_types(&q.kind)?;
    let incident_kind = q.incident_kind.clone();
    let scope = caller.sites.clone();
    let rx = state.ingestor.subscribe();
    let mut stopping = state.http_stopping.clone();
    let stream = BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
            Ok(e) => {
                let wanted = crate::store::covers_site(scope.as_deref(), &e.site_id)
                    && camera.as_ref().is_none_or(|c| *c == e.camera_id)
                    && site.as_ref().is_none_or(|s| *s == e.site_id)
                    && (kinds.is_empty() || kinds.contains(&e.kind))
                    && incident_kind.as_ref().is_none_or(|k| e.incident_kind.as_ref() == Some(k));
                wanted.then(|| Ok(SseEvent::default().event(e.kind.as_str()).data(&*e.json)))
            }
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(SseEvent::default().event("lagged").data(n.to_string()))),
        };
        std::future::ready(out)
    });
    // Ends when the server stops, so an open dashboard does not hold the shutdown up.
    let stream = stream.take_until(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
