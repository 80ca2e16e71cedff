//! The OpenAPI document (generated from the handlers with utoipa, plus the wire-contract event
//! schema from `roadsight-events`) and a human-readable page rendered from it.

use axum::response::Html;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{cameras, counts, events, incidents, keys, session, stream, users};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Roadsight IOC API", description = "Traffic events from edge agents: ingest, query, live stream, incidents workflow. \
Machines authenticate with `Authorization: Bearer <key>` or `X-Api-Key: <key>`; people sign in (`POST /api/v1/session`) \
and send the session cookie, plus `X-Requested-With: roadsight` on requests that change something. Never a secret in a URL. \
Roles: agent (ingest), viewer (read), operator (read, acknowledge, resolve), admin (everything: users, agents, keys). \
A key or user limited to some sites sees only those sites; another site's object is 404. The event wire schema is `Event`."),
    paths(events::ingest, events::list, stream::stream, incidents::list, incidents::detail, incidents::acknowledge,
          incidents::resolve, incidents::snapshot, incidents::upload_snapshot, super::clips::clip, super::clips::upload_clip, cameras::list, cameras::gaps, counts::counts,
          cameras::detail, keys::list, keys::create, keys::revoke, keys::audit, session::login, session::logout, session::whoami,
          users::list, users::create, users::disable),
    components(schemas(super::ErrorBody, super::ErrorDetail, crate::store::IngestOutcome, events::EventPage,
                       crate::store::IncidentRow, incidents::WorkflowNote, crate::store::CameraRow, crate::store::GapRow,
                       crate::store::CountRow, crate::store::ApiKey, crate::store::Role, keys::NewKey, keys::CreatedKey,
                       crate::store::AuditRow, session::Login, session::Whoami, users::NewUser, crate::store::User)),
    modifiers(&Security)
)]
struct ApiDoc;

/// The OpenAPI document as JSON, with the wire-contract schemas under `components.schemas`.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let event_schema: serde_json::Value =
        serde_json::from_str(&roadsight_events::EVENT_SCHEMA_JSON.replace("#/$defs/", "#/components/schemas/")).unwrap_or_default();
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(|s| s.as_object_mut()) {
        if let Some(defs) = event_schema.get("$defs").and_then(|d| d.as_object()) {
            for (k, v) in defs {
                schemas.insert(k.clone(), v.clone());
            }
        }
        let mut event = event_schema.clone();
        if let Some(o) = event.as_object_mut() {
            o.remove("$defs");
            o.remove("$schema");
        }
        schemas.insert("Event".into(), event);
    }
    doc
}

pub async fn openapi() -> Json<serde_json::Value> {
    Json(document())
}

pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}

/// The docs page's script (a file of its own: the Content-Security-Policy allows no inline script).
pub async fn script() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../assets/docs.js"))
}
