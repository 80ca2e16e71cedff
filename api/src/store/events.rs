//! Events: idempotent ingest (with the camera registry, sequence gaps and incidents updated in
//! the same transaction), filtered listing with cursors, time-bucketed counts.

use std::time::Instant;

use roadsight_events::{Event, EventBody, EventType};
use serde::Serialize;
use sqlx::{Any, Transaction};

use super::query::{build, Filter, Value};
use super::{get, incidents, now_ms, Store, StoreError};

/// What one ingest call did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct IngestOutcome {
    /// Events stored now.
    pub accepted: u64,
    /// Events already stored (same `event_id`): ignored.
    pub duplicates: u64,
}

/// An event as stored, with the time it was received.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub received_ms: i64,
    pub event: serde_json::Value,
}

#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub site_id: Option<String>,
    pub camera_id: Option<String>,
    pub kinds: Vec<EventType>,
    pub class: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Continue after this (occurred_ms, event_id), newest first.
    pub before: Option<(i64, String)>,
    pub limit: u32,
    /// The caller's sites (`None`: every site).
    pub scope: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraRow {
    pub site_id: String,
    pub camera_id: String,
    pub agent_id: String,
    pub name: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub road: Option<String>,
    /// connecting, running, retrying, stopped (or unknown before a status arrives).
    pub state: String,
    pub reason: Option<String>,
    pub fps: Option<f64>,
    pub last_seen_ms: i64,
    pub max_seq: i64,
    pub received: i64,
    /// Sequence numbers never received (missing data).
    pub missing: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GapRow {
    pub site_id: String,
    pub camera_id: String,
    pub from_seq: i64,
    pub to_seq: i64,
    pub detected_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CountRow {
    pub bucket_start_ms: i64,
    pub site_id: String,
    pub camera_id: String,
    pub line_id: String,
    pub direction: String,
    pub class: String,
    pub count: i64,
}

/// (class, line_id, zone_id, direction, incident_id): the columns queries filter on.
type BodyColumns = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

fn body_columns(e: &Event) -> BodyColumns {
    match &e.body {
        EventBody::LineCrossing(l) => {
            (Some(l.object.class.as_str().into()), Some(l.line_id.clone()), None, Some(l.direction.clone()), None)
        }
        EventBody::ZoneEnter(z) | EventBody::ZoneExit(z) => {
            (Some(z.object.class.as_str().into()), None, Some(z.zone_id.clone()), None, None)
        }
        EventBody::Incident(i) => (
            i.object.as_ref().map(|o| o.class.as_str().into()),
            None,
            i.zone_id.clone(),
            None,
            Some(i.incident_id.to_string()),
        ),
        EventBody::Counts(_) | EventBody::CameraStatus(_) | EventBody::SignalPhase(_) => (None, None, None, None, None),
    }
}

impl Store {
    /// Stores events exactly once each (keyed by `event_id`), in one transaction, and updates
    /// what derives from them. Returns only after the commit.
    /// Also returns, per event, whether it was new.
    pub async fn ingest(&self, events: &[Event]) -> Result<(IngestOutcome, Vec<bool>), StoreError> {
        let started = Instant::now();
        let received = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut outcome = IngestOutcome::default();
        let mut fresh = Vec::with_capacity(events.len());
        lock_cameras(&mut tx, events, received).await?;
        for e in events {
            let (class, line_id, zone_id, direction, incident_id) = body_columns(e);
            let payload = serde_json::to_string(e).map_err(|err| StoreError::Corrupt(err.to_string()))?;
            let inserted = sqlx::query(
                "INSERT INTO events (event_id, seq, site_id, camera_id, agent_id, type, occurred_ms, received_ms, \
                 class, line_id, zone_id, direction, incident_id, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(e.event_id.to_string())
            .bind(e.seq as i64)
            .bind(e.site_id.clone())
            .bind(e.camera_id.clone())
            .bind(e.agent_id.clone())
            .bind(e.kind().as_str())
            .bind(e.occurred_at.timestamp_millis())
            .bind(received)
            .bind(class)
            .bind(line_id)
            .bind(zone_id)
            .bind(direction)
            .bind(incident_id)
            .bind(payload)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            fresh.push(inserted == 1);
            if inserted == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.accepted += 1;
            update_camera(&mut tx, e, received).await?;
            if let EventBody::Incident(i) = &e.body {
                incidents::apply(&mut tx, e, i).await?;
            }
        }
        tx.commit().await?;
        self.observe(started);
        Ok((outcome, fresh))
    }

    pub async fn list_events(&self, f: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let started = Instant::now();
        let mut q = Filter::default();
        q.push_sites("site_id", f.scope.as_deref());
        if let Some(s) = &f.site_id {
            q.push("site_id", "=", Value::Text(s.clone()));
        }
        if let Some(c) = &f.camera_id {
            q.push("camera_id", "=", Value::Text(c.clone()));
        }
        if !f.kinds.is_empty() {
            q.push_in("type", f.kinds.iter().map(|k| Value::Text(k.as_str().into())).collect());
        }
        if let Some(c) = &f.class {
            q.push("class", "=", Value::Text(c.clone()));
        }
        if let Some(t) = f.from_ms {
            q.push("occurred_ms", ">=", Value::Int(t));
        }
        if let Some(t) = f.to_ms {
            q.push("occurred_ms", "<", Value::Int(t));
        }
        if let Some((ms, id)) = &f.before {
            q.push_pair(
                "(occurred_ms < {a} OR (occurred_ms = {a} AND event_id < {b}))",
                Value::Int(*ms),
                Value::Text(id.clone()),
            );
        }
        let limit = q.bind(Value::Int(f.limit as i64));
        let sql = format!(
            "SELECT received_ms, payload FROM events {} ORDER BY occurred_ms DESC, event_id DESC LIMIT {limit}",
            q.where_clause()
        );
        let rows = build(sql, q)?.fetch_all(&self.pool).await?;
        self.observe(started);
        rows.iter()
            .map(|r| {
                let payload: String = get(r, "payload")?;
                Ok(StoredEvent {
                    received_ms: get(r, "received_ms")?,
                    event: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// The cameras of the caller's sites (`scope`; `None`: every site).
    pub async fn list_cameras(&self, scope: Option<&[String]>) -> Result<Vec<CameraRow>, StoreError> {
        let mut q = Filter::default();
        q.push_sites("c.site_id", scope);
        self.cameras_where(q).await
    }

    /// One camera, if it exists within `scope`.
    pub async fn camera(&self, site_id: &str, camera_id: &str, scope: Option<&[String]>) -> Result<Option<CameraRow>, StoreError> {
        let mut q = Filter::default();
        q.push_sites("c.site_id", scope);
        q.push("c.site_id", "=", Value::Text(site_id.into()));
        q.push("c.camera_id", "=", Value::Text(camera_id.into()));
        Ok(self.cameras_where(q).await?.pop())
    }

    async fn cameras_where(&self, q: Filter) -> Result<Vec<CameraRow>, StoreError> {
        // PostgreSQL's SUM of BIGINT is NUMERIC, which `sqlx::Any` cannot decode: cast it back.
        let sql = format!(
            "SELECT c.*, (SELECT CAST(COALESCE(SUM(g.to_seq - g.from_seq + 1), 0) AS BIGINT) FROM seq_gaps g \
             WHERE g.site_id = c.site_id AND g.camera_id = c.camera_id) AS missing \
             FROM cameras c {} ORDER BY c.site_id, c.camera_id",
            q.where_clause()
        );
        let rows = build(sql, q)?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(CameraRow {
                    site_id: get(r, "site_id")?,
                    camera_id: get(r, "camera_id")?,
                    agent_id: get(r, "agent_id")?,
                    name: get(r, "name")?,
                    lat: get(r, "lat")?,
                    lon: get(r, "lon")?,
                    road: get(r, "road")?,
                    state: get(r, "state")?,
                    reason: get(r, "reason")?,
                    fps: get(r, "fps")?,
                    last_seen_ms: get(r, "last_seen_ms")?,
                    max_seq: get(r, "max_seq")?,
                    received: get(r, "received")?,
                    missing: get(r, "missing")?,
                })
            })
            .collect()
    }

    pub async fn list_gaps(&self, camera_id: Option<&str>, scope: Option<&[String]>) -> Result<Vec<GapRow>, StoreError> {
        let mut q = Filter::default();
        q.push_sites("site_id", scope);
        if let Some(c) = camera_id {
            q.push("camera_id", "=", Value::Text(c.into()));
        }
        let sql = format!("SELECT * FROM seq_gaps {} ORDER BY site_id, camera_id, from_seq", q.where_clause());
        let rows = build(sql, q)?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(GapRow {
                    site_id: get(r, "site_id")?,
                    camera_id: get(r, "camera_id")?,
                    from_seq: get(r, "from_seq")?,
                    to_seq: get(r, "to_seq")?,
                    detected_ms: get(r, "detected_ms")?,
                })
            })
            .collect()
    }

    /// Line crossings summed per time bucket, camera, line, direction and class.
    pub async fn counts(
        &self,
        bucket_ms: i64,
        camera_id: Option<&str>,
        line_id: Option<&str>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        scope: Option<&[String]>,
    ) -> Result<Vec<CountRow>, StoreError> {
        let started = Instant::now();
        let mut q = Filter::default();
        let bucket = q.bind(Value::Int(bucket_ms));
        q.push("type", "=", Value::Text("line_crossing".into()));
        q.push_sites("site_id", scope);
        if let Some(c) = camera_id {
            q.push("camera_id", "=", Value::Text(c.into()));
        }
        if let Some(l) = line_id {
            q.push("line_id", "=", Value::Text(l.into()));
        }
        if let Some(t) = from_ms {
            q.push("occurred_ms", ">=", Value::Int(t));
        }
        if let Some(t) = to_ms {
            q.push("occurred_ms", "<", Value::Int(t));
        }
        // Integer division floors for the non-negative epoch times stored here (both back-ends).
        let sql = format!(
            "SELECT (occurred_ms / {bucket}) * {bucket} AS bucket_start_ms, site_id, camera_id, line_id, direction, class, \
             COUNT(*) AS n FROM events {} \
             GROUP BY (occurred_ms / {bucket}) * {bucket}, site_id, camera_id, line_id, direction, class \
             ORDER BY bucket_start_ms, site_id, camera_id, line_id, direction, class",
            q.where_clause()
        );
        let rows = build(sql, q)?.fetch_all(&self.pool).await?;
        self.observe(started);
        rows.iter()
            .map(|r| {
                Ok(CountRow {
                    bucket_start_ms: get(r, "bucket_start_ms")?,
                    site_id: get(r, "site_id")?,
                    camera_id: get(r, "camera_id")?,
                    line_id: get(r, "line_id")?,
                    direction: get(r, "direction")?,
                    class: get(r, "class")?,
                    count: get(r, "n")?,
                })
            })
            .collect()
    }

    /// Number of events stored (for metrics and tests).
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(&self.pool).await?;
        get(&row, "n")
    }
}

/// Creates the cameras of a batch that are new and locks every camera row the batch touches,
/// in one global order, before any event is written. Concurrent batches for one camera (HTTP
/// and MQTT, several replicas) then run one after the other instead of racing on `max_seq`
/// and the gap table (PostgreSQL: duplicate-key errors and false gaps); the fixed order and
/// "cameras before events" keep two batches from deadlocking (a shared event implies a
/// shared camera, which is locked first).
async fn lock_cameras(tx: &mut Transaction<'static, Any>, events: &[Event], received: i64) -> Result<(), StoreError> {
    let mut cameras: Vec<(&str, &str, &str)> =
        events.iter().map(|e| (e.site_id.as_str(), e.camera_id.as_str(), e.agent_id.as_str())).collect();
    cameras.sort_unstable();
    cameras.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
    for (site, camera, agent) in cameras {
        sqlx::query(
            "INSERT INTO cameras (site_id, camera_id, agent_id, state, last_seen_ms, max_seq, received) \
             VALUES ($1, $2, $3, 'unknown', $4, 0, 0) ON CONFLICT (site_id, camera_id) DO NOTHING",
        )
        .bind(site.to_owned())
        .bind(camera.to_owned())
        .bind(agent.to_owned())
        .bind(received)
        .execute(&mut **tx)
        .await?;
        // A no-op write: takes the row lock on PostgreSQL (SQLite has one writer anyway).
        sqlx::query("UPDATE cameras SET max_seq = max_seq WHERE site_id = $1 AND camera_id = $2")
            .bind(site.to_owned())
            .bind(camera.to_owned())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn update_camera(tx: &mut Transaction<'static, Any>, e: &Event, received: i64) -> Result<(), StoreError> {
    let seq = e.seq as i64;
    // The row exists and is locked by this transaction (`lock_cameras`).
    let row = sqlx::query(
        "UPDATE cameras SET agent_id = $1, last_seen_ms = $2, received = received + 1 \
         WHERE site_id = $3 AND camera_id = $4 RETURNING max_seq",
    )
    .bind(e.agent_id.clone())
    .bind(received)
    .bind(e.site_id.clone())
    .bind(e.camera_id.clone())
    .fetch_one(&mut **tx)
    .await?;
    let max_seq: i64 = get(&row, "max_seq")?;
    // `max_seq` may be i64::MAX (the largest `seq` accepted): `+ 1` would overflow.
    if seq > max_seq.saturating_add(1) {
        sqlx::query("INSERT INTO seq_gaps (site_id, camera_id, from_seq, to_seq, detected_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(e.site_id.clone())
            .bind(e.camera_id.clone())
            .bind(max_seq + 1)
            .bind(seq - 1)
            .bind(received)
            .execute(&mut **tx)
            .await?;
    } else if seq <= max_seq {
        fill_gap(tx, e, seq, received).await?;
    }
    if seq > max_seq {
        sqlx::query("UPDATE cameras SET max_seq = $1 WHERE site_id = $2 AND camera_id = $3")
            .bind(seq)
            .bind(e.site_id.clone())
            .bind(e.camera_id.clone())
            .execute(&mut **tx)
            .await?;
    }
    if let EventBody::CameraStatus(s) = &e.body {
        let state = serde_json::to_value(s.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let (lat, lon, road) = match &s.location {
            Some(l) => (Some(l.lat), Some(l.lon), l.road.clone()),
            None => (None, None, None),
        };
        // Only the numbers the status carries are set (the others keep their last value). They
        // are left out of the SQL rather than bound as NULL: sqlx 0.9's `Any` driver sends a
        // NULL f64 as a NULL float4, PostgreSQL then prepares (and sqlx caches) the statement
        // with a float4 parameter, and the next non-NULL f64 is refused ("incorrect binary data
        // format in bind parameter").
        let mut sets = vec!["state = $1".to_owned(), "reason = $2".into(), "name = COALESCE($3, name)".into(), "road = COALESCE($4, road)".into()];
        let mut numbers = Vec::new();
        for (column, value) in [("fps", s.fps.map(f64::from)), ("lat", lat), ("lon", lon)] {
            if let Some(v) = value {
                numbers.push(v);
                sets.push(format!("{column} = ${}", 6 + numbers.len()));
            }
        }
        let sql = format!("UPDATE cameras SET {} WHERE site_id = $5 AND camera_id = $6", sets.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(s.reason.clone())
            .bind(s.name.clone())
            .bind(road)
            .bind(e.site_id.clone())
            .bind(e.camera_id.clone());
        for v in numbers {
            q = q.bind(v);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A late event fills (part of) a recorded gap.
async fn fill_gap(tx: &mut Transaction<'static, Any>, e: &Event, seq: i64, received: i64) -> Result<(), StoreError> {
    let Some(row) = sqlx::query(
        "SELECT from_seq, to_seq FROM seq_gaps WHERE site_id = $1 AND camera_id = $2 AND from_seq <= $3 AND to_seq >= $3",
    )
    .bind(e.site_id.clone())
    .bind(e.camera_id.clone())
    .bind(seq)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(());
    };
    let (from, to): (i64, i64) = (get(&row, "from_seq")?, get(&row, "to_seq")?);
    sqlx::query("DELETE FROM seq_gaps WHERE site_id = $1 AND camera_id = $2 AND from_seq = $3")
        .bind(e.site_id.clone())
        .bind(e.camera_id.clone())
        .bind(from)
        .execute(&mut **tx)
        .await?;
    for (a, b) in [(from, seq - 1), (seq + 1, to)] {
        if a <= b {
            sqlx::query("INSERT INTO seq_gaps (site_id, camera_id, from_seq, to_seq, detected_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(e.site_id.clone())
                .bind(e.camera_id.clone())
                .bind(a)
                .bind(b)
                .bind(received)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
