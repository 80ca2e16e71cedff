//! The HTTP API under `/api/v1` (JSON), the live stream, the dashboard and operations
//! endpoints. Every error is JSON `{"error": {"code", "message"}}` with a 4xx/5xx status.

mod auth;
mod cameras;
mod clips;
mod counts;
mod docs;
mod events;
mod extract;
mod incidents;
mod keys;
pub mod listener;
pub mod security;
pub mod tls;
pub mod session;
mod stream;
pub mod throttle;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::BoxError;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::ingest::Ingestor;
use crate::snapshots::SnapshotStore;
use crate::store::{SessionPolicy, StoreError};
use throttle::LoginThrottle;

pub use auth::{Caller, Principal};

pub struct AppState {
    pub ingestor: Ingestor,
    pub snapshots: SnapshotStore,
    pub clips: crate::clips::ClipStore,
    /// This server terminates TLS itself (`--tls-cert`): responses carry HSTS.
    pub tls: bool,
    /// Turns true when the HTTP server starts stopping: live streams end then.
    pub http_stopping: tokio::sync::watch::Receiver<bool>,
    pub sessions: SessionPolicy,
    pub throttle: LoginThrottle,
}

pub type SharedState = Arc<AppState>;

/// Largest JSON request body accepted.
pub const MAX_BODY_BYTES: usize = 2 << 20;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(String),
    RequestTimeout(String),
    /// 429 with `Retry-After` (seconds).
    TooManyRequests { message: String, retry_after_secs: u64 },
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// bad_request, unauthorized, forbidden, not_found, conflict, payload_too_large,
    /// request_timeout, too_many_requests, internal.
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            ApiError::RequestTimeout(m) => (StatusCode::REQUEST_TIMEOUT, "request_timeout", m),
            ApiError::TooManyRequests { message, retry_after_secs } => {
                let body = Json(ErrorBody { error: ErrorDetail { code: "too_many_requests".into(), message } });
                return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry_after_secs.to_string())], body).into_response();
            }
            ApiError::Internal(m) => {
                tracing::error!("internal error: {m}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error (see the server log)".to_owned())
            }
        };
        (status, Json(ErrorBody { error: ErrorDetail { code: code.into(), message } })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

/// What the listener serves: the routes, each request bounded by `request_timeout` (408 JSON;
/// a live stream only until its response starts), every response with the security headers.
pub fn app(state: SharedState, request_timeout: Duration) -> Router {
    let tls = state.tls;
    let timed = router(state).layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                ApiError::RequestTimeout(format!("the request took longer than {} s", request_timeout.as_secs()))
            }))
            .layer(tower::timeout::TimeoutLayer::new(request_timeout)),
    );
    security::apply(timed, tls)
}

pub fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/events", post(events::ingest).get(events::list))
        .route("/incidents", get(incidents::list))
        .route("/incidents/{id}", get(incidents::detail))
        .route("/incidents/{id}/acknowledge", post(incidents::acknowledge))
        .route("/incidents/{id}/resolve", post(incidents::resolve))
        .route(
            "/snapshots/{id}",
            get(incidents::snapshot)
                .put(incidents::upload_snapshot)
                .layer(DefaultBodyLimit::max(crate::snapshots::MAX_SNAPSHOT_BYTES)),
        )
        .route(
            "/clips/{id}",
            get(clips::clip).put(clips::upload_clip).layer(DefaultBodyLimit::max(roadsight_events::clip::MAX_BYTES as usize)),
        )
        .route("/cameras", get(cameras::list))
        .route("/cameras/{site}/{camera}", get(cameras::detail))
        .route("/gaps", get(cameras::gaps))
        .route("/counts", get(counts::counts))
        .route("/stream", get(stream::stream))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", axum::routing::delete(keys::revoke))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{name}", axum::routing::delete(users::disable))
        .route("/audit", get(keys::audit))
        .route("/session", get(session::whoami).post(session::login).delete(session::logout))
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::page))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/", get(dashboard))
        .route("/assets/app.js", get(asset_js))
        .route("/assets/style.css", get(asset_css))
        .route("/assets/docs.js", get(docs::script))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint (see /api/v1/docs)".into())
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../../assets/dashboard.html"))
}

async fn asset_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../assets/app.js"))
}

async fn asset_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../assets/style.css"))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
}

async fn health(State(state): State<SharedState>) -> (StatusCode, Json<Health>) {
    match state.ingestor.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ok", database: "ok" })),
        Err(e) => {
            tracing::error!("health: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "degraded", database: "unreachable" }))
        }
    }
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.ingestor.metrics().render(),
    )
}
