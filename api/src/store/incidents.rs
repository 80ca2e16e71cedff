//! Incidents: kept current from incident events (started → updated → ended), and the operator
//! workflow (acknowledge, resolve) with an audit trail. Snapshots are files referenced here.

use roadsight_events::{Event, IncidentEvent, IncidentState};
use serde::Serialize;
use sqlx::{Any, Transaction};

use super::query::{build, Filter, Value};
use super::{get, now_ms, Store, StoreError};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentRow {
    pub incident_id: String,
    pub site_id: String,
    pub camera_id: String,
    pub kind: String,
    pub severity: String,
    /// started, updated or ended (as last reported by the agent).
    pub state: String,
    pub zone_id: Option<String>,
    pub started_ms: i64,
    pub updated_ms: i64,
    pub ended_ms: Option<i64>,
    #[schema(value_type = Object)]
    pub object: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub measures: serde_json::Value,
    pub snapshot_id: Option<String>,
    /// True when the snapshot's JPEG has arrived.
    pub snapshot_available: bool,
    /// The evidence clip the agent announced (served at `/api/v1/clips/{id}`).
    pub clip_id: Option<String>,
    /// True when the clip has arrived whole and hashes to what the incident event promised.
    pub clip_available: bool,
    pub clip_duration_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_ms: Option<i64>,
    pub acknowledge_note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_ms: Option<i64>,
    pub resolve_note: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct IncidentFilter {
    pub camera_id: Option<String>,
    pub kind: Option<String>,
    /// `open` (not resolved), `acknowledged`, `resolved`, or an agent state.
    pub state: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: u32,
    /// The caller's sites (`None`: every site).
    pub scope: Option<Vec<String>>,
}

fn enum_str<T: Serialize>(v: T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// Applies one incident event inside the ingest transaction.
pub(super) async fn apply(tx: &mut Transaction<'static, Any>, e: &Event, i: &IncidentEvent) -> Result<(), StoreError> {
    let at = e.occurred_at.timestamp_millis();
    let object = i.object.as_ref().and_then(|o| serde_json::to_string(o).ok());
    let measures = serde_json::to_string(&i.measures).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    let snapshot = i.snapshot.as_ref().map(|s| s.snapshot_id.to_string());
    let ended = (i.state == IncidentState::Ended).then_some(at);
    let clip = i.clip.as_ref();
    if clip.is_some() && i.state == IncidentState::Updated && attach_clip(tx, e, i).await? {
        return Ok(());
    }
    // Insert on first sight (whatever its state: messages may arrive out of order), else update.
    sqlx::query(
        "INSERT INTO incidents (incident_id, site_id, camera_id, kind, severity, state, zone_id, started_ms, updated_ms, \
         ended_ms, object, measures, snapshot_id, clip_id, clip_sha256, clip_duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (incident_id) DO UPDATE SET \
           state = CASE WHEN incidents.state = 'ended' THEN incidents.state ELSE excluded.state END, \
           severity = excluded.severity, \
           started_ms = CASE WHEN excluded.started_ms < incidents.started_ms THEN excluded.started_ms ELSE incidents.started_ms END, \
           updated_ms = CASE WHEN excluded.updated_ms > incidents.updated_ms THEN excluded.updated_ms ELSE incidents.updated_ms END, \
           ended_ms = COALESCE(incidents.ended_ms, excluded.ended_ms), \
           object = COALESCE(excluded.object, incidents.object), \
           measures = excluded.measures, \
           snapshot_id = COALESCE(incidents.snapshot_id, excluded.snapshot_id), \
           clip_sha256 = CASE WHEN incidents.clip_id IS NULL THEN excluded.clip_sha256 ELSE incidents.clip_sha256 END, \
           clip_duration_ms = CASE WHEN incidents.clip_id IS NULL THEN excluded.clip_duration_ms ELSE incidents.clip_duration_ms END, \
           clip_id = COALESCE(incidents.clip_id, excluded.clip_id)",
    )
    .bind(i.incident_id.to_string())
    .bind(e.site_id.clone())
    .bind(e.camera_id.clone())
    .bind(enum_str(i.kind))
    .bind(enum_str(i.severity))
    .bind(enum_str(i.state))
    .bind(i.zone_id.clone())
    .bind(at)
    .bind(at)
    .bind(ended)
    .bind(object)
    .bind(measures)
    .bind(snapshot)
    .bind(clip.map(|c| c.clip_id.to_string()))
    .bind(clip.map(|c| c.sha256.clone()))
    .bind(clip.map(|c| c.duration_ms as i64))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An `updated` event carrying the evidence clip: attaches the clip (the first one announced
/// stays) and changes nothing else. False when the incident is not stored yet.
async fn attach_clip(tx: &mut Transaction<'static, Any>, e: &Event, i: &IncidentEvent) -> Result<bool, StoreError> {
    let Some(c) = &i.clip else { return Ok(false) };
    let r = sqlx::query(
        "UPDATE incidents SET \
           clip_sha256 = CASE WHEN clip_id IS NULL THEN $1 ELSE clip_sha256 END, \
           clip_duration_ms = CASE WHEN clip_id IS NULL THEN $2 ELSE clip_duration_ms END, \
           clip_id = COALESCE(clip_id, $3) \
         WHERE incident_id = $4 AND site_id = $5",
    )
    .bind(c.sha256.clone())
    .bind(c.duration_ms as i64)
    .bind(c.clip_id.to_string())
    .bind(i.incident_id.to_string())
    .bind(e.site_id.clone())
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() > 0)
}

fn row_to_incident(r: &sqlx::any::AnyRow) -> Result<IncidentRow, StoreError> {
    let parse = |s: Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
        s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
    };
    let snapshot_path: Option<String> = get(r, "snapshot_path")?;
    Ok(IncidentRow {
        incident_id: get(r, "incident_id")?,
        site_id: get(r, "site_id")?,
        camera_id: get(r, "camera_id")?,
        kind: get(r, "kind")?,
        severity: get(r, "severity")?,
        state: get(r, "state")?,
        zone_id: get(r, "zone_id")?,
        started_ms: get(r, "started_ms")?,
        updated_ms: get(r, "updated_ms")?,
        ended_ms: get(r, "ended_ms")?,
        object: parse(get(r, "object")?)?,
        measures: parse(Some(get(r, "measures")?))?.unwrap_or_default(),
        snapshot_id: get(r, "snapshot_id")?,
        snapshot_available: snapshot_path.is_some(),
        clip_id: get(r, "clip_id")?,
        clip_available: get::<Option<String>>(r, "clip_path")?.is_some(),
        clip_duration_ms: get(r, "clip_duration_ms")?,
        acknowledged_by: get(r, "acknowledged_by")?,
        acknowledged_ms: get(r, "acknowledged_ms")?,
        acknowledge_note: get(r, "acknowledge_note")?,
        resolved_by: get(r, "resolved_by")?,
        resolved_ms: get(r, "resolved_ms")?,
        resolve_note: get(r, "resolve_note")?,
    })
}

const SELECT_INCIDENTS: &str =
    "SELECT i.*, s.path AS snapshot_path, c.path AS clip_path FROM incidents i \
     LEFT JOIN snapshots s ON s.snapshot_id = i.snapshot_id \
     LEFT JOIN clips c ON c.clip_id = i.clip_id AND c.sha256 = i.clip_sha256 AND c.site_id = i.site_id";

/// The operator workflow's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Acknowledge,
    Resolve,
}

impl Store {
    pub async fn list_incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRow>, StoreError> {
        let mut q = Filter::default();
        q.push_sites("i.site_id", f.scope.as_deref());
        if let Some(c) = &f.camera_id {
            q.push("i.camera_id", "=", Value::Text(c.clone()));
        }
        if let Some(k) = &f.kind {
            q.push("i.kind", "=", Value::Text(k.clone()));
        }
        match f.state.as_deref() {
            None => {}
            Some("open") => q.push_in("i.state", vec![Value::Text("started".into()), Value::Text("updated".into())]),
            Some("unresolved") => q.push("COALESCE(i.resolved_ms, -1)", "=", Value::Int(-1)),
            Some("acknowledged") => q.push("COALESCE(i.acknowledged_ms, -1)", "<>", Value::Int(-1)),
            Some("resolved") => q.push("COALESCE(i.resolved_ms, -1)", "<>", Value::Int(-1)),
            Some(agent_state) => q.push("i.state", "=", Value::Text(agent_state.into())),
        }
        if let Some(t) = f.from_ms {
            q.push("i.started_ms", ">=", Value::Int(t));
        }
        if let Some(t) = f.to_ms {
            q.push("i.started_ms", "<", Value::Int(t));
        }
        let limit = q.bind(Value::Int(f.limit as i64));
        let sql = format!("{SELECT_INCIDENTS} {} ORDER BY i.started_ms DESC, i.incident_id DESC LIMIT {limit}", q.where_clause());
        let rows = build(sql, q)?.fetch_all(&self.pool).await?;
        rows.iter().map(row_to_incident).collect()
    }

    /// One incident, if it exists within `scope` (`None`: every site).
    pub async fn get_incident(&self, id: &str, scope: Option<&[String]>) -> Result<Option<IncidentRow>, StoreError> {
        let mut q = Filter::default();
        q.push("i.incident_id", "=", Value::Text(id.to_owned()));
        q.push_sites("i.site_id", scope);
        let sql = format!("{SELECT_INCIDENTS} {}", q.where_clause());
        let row = build(sql, q)?.fetch_optional(&self.pool).await?;
        row.as_ref().map(row_to_incident).transpose()
    }

    /// Acknowledges or resolves an incident as `actor`, with a note; audited in the same
    /// transaction. Returns the updated incident, or `None` if it does not exist within
    /// `scope` (an incident never changes site).
    pub async fn incident_workflow(
        &self,
        id: &str,
        step: Workflow,
        actor: &str,
        note: &str,
        scope: Option<&[String]>,
    ) -> Result<Option<IncidentRow>, StoreError> {
        if self.get_incident(id, scope).await?.is_none() {
            return Ok(None);
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let sql = match step {
            Workflow::Acknowledge => {
                "UPDATE incidents SET acknowledged_by = $1, acknowledged_ms = $2, acknowledge_note = $3 WHERE incident_id = $4"
            }
            Workflow::Resolve => {
                "UPDATE incidents SET resolved_by = $1, resolved_ms = $2, resolve_note = $3, \
                 acknowledged_by = COALESCE(acknowledged_by, $1), acknowledged_ms = COALESCE(acknowledged_ms, $2) \
                 WHERE incident_id = $4"
            }
        };
        let changed =
            sqlx::query(sql).bind(actor.to_owned()).bind(now).bind(note.to_owned()).bind(id.to_owned()).execute(&mut *tx).await?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        let action = match step {
            Workflow::Acknowledge => "incident.acknowledge",
            Workflow::Resolve => "incident.resolve",
        };
        audit(&mut tx, actor, action, id, Some(note)).await?;
        tx.commit().await?;
        self.get_incident(id, scope).await
    }

    /// Records a snapshot file (idempotent on `snapshot_id`).
    pub async fn put_snapshot(
        &self,
        snapshot_id: &str,
        site_id: &str,
        camera_id: &str,
        content_type: &str,
        bytes: i64,
        path: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO snapshots (snapshot_id, site_id, camera_id, content_type, bytes, path, received_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (snapshot_id) DO NOTHING",
        )
        .bind(snapshot_id.to_owned())
        .bind(site_id.to_owned())
        .bind(camera_id.to_owned())
        .bind(content_type.to_owned())
        .bind(bytes)
        .bind(path.to_owned())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// (content type, file path) of a stored snapshot, if it exists within `scope`.
    pub async fn snapshot(&self, snapshot_id: &str, scope: Option<&[String]>) -> Result<Option<(String, String)>, StoreError> {
        let mut q = Filter::default();
        q.push("snapshot_id", "=", Value::Text(snapshot_id.to_owned()));
        q.push_sites("site_id", scope);
        let sql = format!("SELECT content_type, path FROM snapshots {}", q.where_clause());
        let row = build(sql, q)?.fetch_optional(&self.pool).await?;
        row.map(|r| Ok((get(&r, "content_type")?, get(&r, "path")?))).transpose()
    }

    /// The audit trail, newest first. A caller limited to some sites (`scope`) sees only the
    /// entries about incidents of those sites.
    pub async fn audit_log(&self, limit: u32, scope: Option<&[String]>) -> Result<Vec<AuditRow>, StoreError> {
        let mut q = Filter::default();
        q.push_incident_of_sites("target", scope);
        let limit = q.bind(Value::Int(limit as i64));
        let sql = format!("SELECT * FROM audit {} ORDER BY id DESC LIMIT {limit}", q.where_clause());
        let rows = build(sql, q)?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    at_ms: get(r, "at_ms")?,
                    actor: get(r, "actor")?,
                    action: get(r, "action")?,
                    target: get(r, "target")?,
                    detail: get(r, "detail")?,
                })
            })
            .collect()
    }

    /// Records a mutation in the audit trail.
    pub async fn record_audit(&self, actor: &str, action: &str, target: &str, detail: Option<&str>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        audit(&mut tx, actor, action, target, detail).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

pub(super) async fn audit(
    tx: &mut Transaction<'static, Any>,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(now_ms())
        .bind(actor.to_owned())
        .bind(action.to_owned())
        .bind(target.to_owned())
        .bind(detail.map(str::to_owned))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
