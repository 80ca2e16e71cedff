//! Time-bucketed line counts, as JSON or CSV (reports, open-data sharing).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::{Caller, Permission};
use super::extract::{id_param, time_ms, ApiQuery};
use super::{ApiError, SharedState};
use crate::store::CountRow;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CountQuery {
    camera: Option<String>,
    line: Option<String>,
    /// Bucket size: 1m, 5m, 15m, 1h or 1d (default 15m).
    bucket: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// json (default) or csv.
    format: Option<String>,
}

fn bucket_ms(v: &Option<String>) -> Result<i64, ApiError> {
    Ok(match v.as_deref().unwrap_or("15m") {
        "1m" => 60_000,
        "5m" => 300_000,
        "15m" => 900_000,
        "1h" => 3_600_000,
        "1d" => 86_400_000,
        other => return Err(ApiError::BadRequest(format!("bucket: '{other}' is not one of 1m, 5m, 15m, 1h, 1d"))),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Line crossings per bucket, camera, line, direction and class.
#[utoipa::path(get, path = "/api/v1/counts", tag = "counts", params(CountQuery),
    responses((status = 200, body = Vec<CountRow>), (status = 200, content_type = "text/csv", body = String),
              (status = 400, body = super::ErrorBody)),
    security(("api_key" = [])))]
pub async fn counts(State(state): State<SharedState>, caller: Caller, ApiQuery(q): ApiQuery<CountQuery>) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let bucket = bucket_ms(&q.bucket)?;
    let camera = id_param("camera", &q.camera)?;
    let line = id_param("line", &q.line)?;
    let rows = state
        .ingestor
        .store()
        .counts(bucket, camera.as_deref(), line.as_deref(), time_ms("from", &q.from)?, time_ms("to", &q.to)?, caller.scope())
        .await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(rows).into_response()),
        "csv" => {
            let mut out = String::from("bucket_start,site_id,camera_id,line_id,direction,class,count\n");
            for r in &rows {
                let t = chrono::DateTime::from_timestamp_millis(r.bucket_start_ms).map(|t| t.to_rfc3339()).unwrap_or_default();
                out.push_str(&format!(
                    "{t},{},{},{},{},{},{}\n",
                    csv_field(&r.site_id),
                    csv_field(&r.camera_id),
                    csv_field(&r.line_id),
                    csv_field(&r.direction),
                    csv_field(&r.class),
                    r.count
                ));
            }
            Ok((
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"counts.csv\"")],
                out,
            )
                .into_response())
        }
        other => Err(ApiError::BadRequest(format!("format: '{other}' is not json or csv"))),
    }
}
