//! Request extractors whose rejections are JSON errors naming what is wrong, and parsers for
//! the query values the endpoints share.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// `Query<T>` with 400 JSON errors.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(format!("query: {}", e.body_text())))
    }
}

/// `Json<T>` with 400/413/415 JSON errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state).await.map(|j| ApiJson(j.0)).map_err(|e: JsonRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("request body larger than {} bytes", super::MAX_BODY_BYTES))
            } else {
                ApiError::BadRequest(format!("body: {}", e.body_text()))
            }
        })
    }
}

/// Parses an RFC 3339 time (`from`, `to`) into epoch milliseconds.
pub fn time_ms(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|e| ApiError::BadRequest(format!("{field}: '{s}' is not an RFC 3339 time ({e})")))
        })
        .transpose()
}

/// Checks an id-like filter value (`camera`, `line`).
pub fn id_param(field: &str, v: &Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.is_empty() || s.len() > 128 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            Err(ApiError::BadRequest(format!("{field}: '{s}' is not a valid id (letters, digits, '-', '_')")))
        }
        other => Ok(other.clone()),
    }
}

/// Checks `limit` (default `default`, 1..=1000).
pub fn limit(v: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match v.unwrap_or(default) {
        n @ 1..=1000 => Ok(n),
        n => Err(ApiError::BadRequest(format!("limit: {n} is outside 1..=1000"))),
    }
}
