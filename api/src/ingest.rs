//! The one path every event takes into the IOC, whichever transport brought it: validate,
//! store exactly once (commit), then publish the new ones to live subscribers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use roadsight_events::{
    CameraState, CountRow, Event, EventType, IncidentKind, IncidentMeasures, IncidentState, Location, ObjectClass, ObjectRef,
    Severity, SnapshotRef, SCHEMA_VERSION,
};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::store::{IngestOutcome, Store, StoreError};

/// An event as live subscribers see it.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub kind: EventType,
    pub site_id: String,
    pub camera_id: String,
    /// `incident` events: their kind (`wrong_way`, …).
    pub incident_kind: Option<String>,
    pub json: Arc<str>,
}

/// Capacity of the live fan-out. Full-policy: a subscriber that falls this far behind skips
/// ahead (and is told how many it missed); ingest never waits for a slow client.
pub const LIVE_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn check_id(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("{what} '{v}' must be 1–128 letters, digits, '-' or '_'"));
    }
    Ok(())
}

/// Parses and checks one event; the error names the field at fault.
pub fn parse_event(value: serde_json::Value) -> Result<Event, String> {
    let e: Event = serde_json::from_value(value.clone()).map_err(|err| match field_at_fault(&value) {
        Some(field) => format!("{field}: {err}"),
        None => err.to_string(),
    })?;
    validate(&e)?;
    Ok(e)
}

/// True when `v` holds a `field` that does not parse as `T` (an absent field is not at fault
/// here: serde's "missing field `x`" already names it).
fn bad<T: DeserializeOwned>(v: &serde_json::Value, field: &str) -> bool {
    v.get(field).is_some_and(|x| serde_json::from_value::<T>(x.clone()).is_err())
}

/// serde reports a wrong value ("invalid value: integer `-1`, expected u64") without saying
/// where it is. Only when parsing failed, this finds the field: the envelope first, then the
/// body fields of the event's `type`, then the fields of its `object`.
fn field_at_fault(v: &serde_json::Value) -> Option<String> {
    type Check = fn(&serde_json::Value, &str) -> bool;
    const ENVELOPE: [(&str, Check); 9] = [
        ("schema", bad::<u32>),
        ("event_id", bad::<Uuid>),
        ("seq", bad::<u64>),
        ("site_id", bad::<String>),
        ("camera_id", bad::<String>),
        ("agent_id", bad::<String>),
        ("occurred_at", bad::<DateTime<Utc>>),
        ("pts_ms", bad::<u64>),
        ("type", bad::<EventType>),
    ];
    const OBJECT: [(&str, Check); 4] =
        [("track_id", bad::<u64>), ("class", bad::<ObjectClass>), ("confidence", bad::<f32>), ("bbox", bad::<[f32; 4]>)];
    if let Some((field, _)) = ENVELOPE.iter().find(|(f, check)| check(v, f)) {
        return Some((*field).to_owned());
    }
    if let Some(object) = v.get("object").filter(|o| o.is_object()) {
        if let Some((field, _)) = OBJECT.iter().find(|(f, check)| check(object, f)) {
            return Some(format!("object.{field}"));
        }
    }
    let body: &[(&str, Check)] = match v.get("type").and_then(|t| t.as_str()) {
        Some("line_crossing") => &[("line_id", bad::<String>), ("direction", bad::<String>), ("object", bad::<ObjectRef>)],
        Some("zone_enter" | "zone_exit") => &[
            ("zone_id", bad::<String>),
            ("object", bad::<ObjectRef>),
            ("occupancy", bad::<u32>),
            ("dwell_ms", bad::<u64>),
        ],
        Some("incident") => &[
            ("incident_id", bad::<Uuid>),
            ("kind", bad::<IncidentKind>),
            ("state", bad::<IncidentState>),
            ("severity", bad::<Severity>),
            ("zone_id", bad::<String>),
            ("object", bad::<ObjectRef>),
            ("measures", bad::<IncidentMeasures>),
            ("snapshot", bad::<SnapshotRef>),
        ],
        Some("counts") => &[("interval_start", bad::<DateTime<Utc>>), ("interval_ms", bad::<u64>), ("rows", bad::<Vec<CountRow>>)],
        Some("camera_status") => &[
            ("state", bad::<CameraState>),
            ("reason", bad::<String>),
            ("attempt", bad::<u32>),
            ("fps", bad::<f32>),
            ("name", bad::<String>),
            ("location", bad::<Location>),
        ],
        _ => &[],
    };
    body.iter().find(|(f, check)| check(v, f)).map(|(f, _)| (*f).to_owned())
}

pub fn validate(e: &Event) -> Result<(), String> {
    if e.schema != SCHEMA_VERSION {
        return Err(format!("schema: version {} is not supported (this server speaks {SCHEMA_VERSION})", e.schema));
    }
    // The store keeps seq as a signed 64-bit integer: a larger value would wrap negative.
    if e.seq == 0 || e.seq > i64::MAX as u64 {
        return Err(format!("seq: {} is outside 1..={}", e.seq, i64::MAX));
    }
    check_id("site_id", &e.site_id)?;
    check_id("camera_id", &e.camera_id)?;
    check_id("agent_id", &e.agent_id)?;
    Ok(())
}

#[derive(Clone)]
pub struct Ingestor {
    store: Store,
    live: broadcast::Sender<LiveEvent>,
    metrics: Metrics,
}

impl Ingestor {
    pub fn new(store: Store, metrics: Metrics) -> Self {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Ingestor { store, live, metrics }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// Stores a batch (one transaction) and fans out the events that were new.
    pub async fn ingest(&self, events: Vec<Event>, transport: &str) -> Result<IngestOutcome, IngestError> {
        for e in &events {
            validate(e).map_err(IngestError::Invalid)?;
        }
        let (outcome, fresh) = self.store.ingest(&events).await?;
        self.metrics.ingested(transport, outcome.accepted, outcome.duplicates);
        let now = chrono::Utc::now().timestamp_millis();
        for (e, is_new) in events.iter().zip(fresh) {
            if !is_new {
                continue;
            }
            self.metrics.lag((now - e.occurred_at.timestamp_millis()).max(0) as f64 / 1000.0);
            let incident_kind = match &e.body {
                roadsight_events::EventBody::Incident(i) => {
                    serde_json::to_value(i.kind).ok().and_then(|v| v.as_str().map(String::from))
                }
                _ => None,
            };
            let json: Arc<str> = serde_json::to_string(e).unwrap_or_default().into();
            // No receivers is fine: nobody is watching.
            let _ = self.live.send(LiveEvent {
                kind: e.kind(),
                site_id: e.site_id.clone(),
                camera_id: e.camera_id.clone(),
                incident_kind,
                json,
            });
        }
        Ok(outcome)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
