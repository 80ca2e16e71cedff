//! Decoding an event from untrusted JSON: parse, then check what the types cannot say. Every
//! error names the field at fault by its path (`seq`, `object.bbox[2]`, `rows[1].class`).
//!
//! serde alone reports a wrong value ("invalid value: integer `-1`, expected u64") without
//! saying where it is, and the flattened, internally tagged body hides the path from
//! `serde_path_to_error` too. So, only when parsing failed, [`decode`] looks for the field:
//! the envelope first, then the fields of the event's `type`, each parsed on its own with
//! `serde_path_to_error` for the path inside it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    CameraState, CountRow, Event, EventBody, EventType, IncidentKind, IncidentMeasures, IncidentState, Location,
    ClipRef, ObjectRef, Severity, SignalPhase, SignalSource, SnapshotRef, SCHEMA_VERSION,
};

/// Why an event was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DecodeError {
    /// Path of the field at fault (`seq`, `object.bbox[2]`); `event` for the event as a whole
    /// (serde's message then names the field: "missing field `seq`", "unknown field `x`").
    pub field: String,
    pub message: String,
}

impl DecodeError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError { field: field.into(), message: message.into() }
    }
}

/// Parses and checks one event.
pub fn decode(value: &Value) -> Result<Event, DecodeError> {
    let event = Event::deserialize(value)
        .map_err(|err| field_at_fault(value).unwrap_or_else(|| DecodeError::new("event", err.to_string())))?;
    validate(&event)?;
    Ok(event)
}

/// `Some(error at field.path)` when `v` holds a `field` that does not parse as `T` (an absent
/// field is not at fault here: serde's "missing field `x`" already names it).
fn bad<T: DeserializeOwned>(v: &Value, field: &str) -> Option<DecodeError> {
    let err = serde_path_to_error::deserialize::<_, T>(v.get(field)?).err()?;
    let inner = err.path().to_string();
    let path = match inner.as_str() {
        "." => field.to_owned(),
        p if p.starts_with('[') => format!("{field}{p}"),
        p => format!("{field}.{p}"),
    };
    Some(DecodeError::new(path, err.into_inner().to_string()))
}

type Check = fn(&Value, &str) -> Option<DecodeError>;

/// Objects an incident may reference besides its own (the agent caps its lists below this).
pub const MAX_RELATED: usize = 64;

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

/// The body fields of each event type.
fn body_fields(kind: &str) -> &'static [(&'static str, Check)] {
    match kind {
        "line_crossing" => &[("line_id", bad::<String>), ("direction", bad::<String>), ("object", bad::<ObjectRef>)],
        "zone_enter" | "zone_exit" => {
            &[("zone_id", bad::<String>), ("object", bad::<ObjectRef>), ("occupancy", bad::<u32>), ("dwell_ms", bad::<u64>)]
        }
        "incident" => &[
            ("incident_id", bad::<Uuid>),
            ("kind", bad::<IncidentKind>),
            ("state", bad::<IncidentState>),
            ("severity", bad::<Severity>),
            ("zone_id", bad::<String>),
            ("object", bad::<ObjectRef>),
            ("measures", bad::<IncidentMeasures>),
            ("related", bad::<Vec<ObjectRef>>),
            ("snapshot", bad::<SnapshotRef>),
            ("clip", bad::<ClipRef>),
        ],
        "counts" => &[("interval_start", bad::<DateTime<Utc>>), ("interval_ms", bad::<u64>), ("rows", bad::<Vec<CountRow>>)],
        "camera_status" => &[
            ("state", bad::<CameraState>),
            ("reason", bad::<String>),
            ("attempt", bad::<u32>),
            ("fps", bad::<f32>),
            ("name", bad::<String>),
            ("location", bad::<Location>),
        ],
        "signal_phase" => &[("signal_id", bad::<String>), ("phase", bad::<SignalPhase>), ("source", bad::<SignalSource>)],
        _ => &[],
    }
}

fn check_clip(c: &ClipRef) -> Result<(), DecodeError> {
    use crate::clip;
    if c.content_type != clip::CONTENT_TYPE {
        return Err(DecodeError::new("clip.content_type", format!("'{}', expected '{}'", c.content_type, clip::CONTENT_TYPE)));
    }
    if c.bytes == 0 || c.bytes > clip::MAX_BYTES {
        return Err(DecodeError::new("clip.bytes", format!("{} is outside 1..={}", c.bytes, clip::MAX_BYTES)));
    }
    if c.chunks != clip::chunks(c.bytes) {
        // Two fields that disagree: the error names their parent, and both.
        return Err(DecodeError::new("clip", format!("chunks {}, but bytes {} make {}", c.chunks, c.bytes, clip::chunks(c.bytes))));
    }
    if c.sha256.len() != 64 || !c.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(DecodeError::new("clip.sha256", "expected 64 lower-case hex digits"));
    }
    Ok(())
}

fn field_at_fault(v: &Value) -> Option<DecodeError> {
    if !v.is_object() {
        return Some(DecodeError::new("event", format!("expected a JSON object, got {}", json_kind(v))));
    }
    let body = v.get("type").and_then(Value::as_str).map_or(&[][..], body_fields);
    ENVELOPE.iter().chain(body).find_map(|(field, check)| check(v, field))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Longest id (`site_id`, `camera_id`, `agent_id`) the IOC accepts.
pub const MAX_ID_LEN: usize = 128;

fn check_id(field: &str, v: &str) -> Result<(), DecodeError> {
    if v.is_empty() || v.len() > MAX_ID_LEN || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(DecodeError::new(
            field,
            format!("'{}' must be 1–{MAX_ID_LEN} letters, digits, '-' or '_'", shorten(v)),
        ));
    }
    Ok(())
}

/// At most 64 characters of an untrusted value, for a message.
fn shorten(v: &str) -> String {
    match v.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &v[..end]),
        None => v.to_owned(),
    }
}

/// A number that is in JSON (finite; an f32 field given a larger number becomes infinite).
fn finite(field: &str, v: f64) -> Result<(), DecodeError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(DecodeError::new(field, "number out of range"))
    }
}

fn in_range(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), DecodeError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(DecodeError::new(field, format!("{v} is outside [{lo}, {hi}]")))
    }
}

fn check_object(prefix: &str, o: &ObjectRef) -> Result<(), DecodeError> {
    finite(&format!("{prefix}.confidence"), o.confidence.into())?;
    for (i, v) in o.bbox.iter().enumerate() {
        finite(&format!("{prefix}.bbox[{i}]"), (*v).into())?;
    }
    Ok(())
}

/// What a parsed event must also satisfy: the version, a sequence number the store can keep,
/// ids usable in topics and URLs, numbers that survive a round trip through JSON.
pub fn validate(e: &Event) -> Result<(), DecodeError> {
    if e.schema != SCHEMA_VERSION {
        return Err(DecodeError::new(
            "schema",
            format!("version {} is not supported (this server speaks {SCHEMA_VERSION})", e.schema),
        ));
    }
    // The store keeps seq as a signed 64-bit integer: a larger value would wrap negative.
    if e.seq == 0 || e.seq > i64::MAX as u64 {
        return Err(DecodeError::new("seq", format!("{} is outside 1..={}", e.seq, i64::MAX)));
    }
    check_id("site_id", &e.site_id)?;
    check_id("camera_id", &e.camera_id)?;
    check_id("agent_id", &e.agent_id)?;
    match &e.body {
        EventBody::LineCrossing(l) => check_object("object", &l.object),
        EventBody::ZoneEnter(z) | EventBody::ZoneExit(z) => check_object("object", &z.object),
        EventBody::Incident(i) => {
            if let Some(o) = &i.object {
                check_object("object", o)?;
            }
            if i.related.len() > MAX_RELATED {
                return Err(DecodeError::new("related", format!("{} objects, at most {MAX_RELATED}", i.related.len())));
            }
            for (n, o) in i.related.iter().enumerate() {
                check_object(&format!("related[{n}]"), o)?;
            }
            if let Some(c) = &i.clip {
                check_clip(c)?;
            }
            let m = &i.measures;
            let measures = [
                ("speed_kmh", m.speed_kmh),
                ("limit_kmh", m.limit_kmh),
                ("distance_px", m.distance_px),
                ("occupancy", m.occupancy),
                ("queue_length_m", m.queue_length_m),
            ];
            for (name, v) in measures {
                if let Some(v) = v {
                    finite(&format!("measures.{name}"), v.into())?;
                }
            }
            Ok(())
        }
        EventBody::Counts(_) => Ok(()),
        EventBody::SignalPhase(p) => check_id("signal_id", &p.signal_id),
        EventBody::CameraStatus(s) => {
            if let Some(fps) = s.fps {
                finite("fps", fps.into())?;
            }
            if let Some(l) = &s.location {
                in_range("location.lat", l.lat, -90.0, 90.0)?;
                in_range("location.lon", l.lon, -180.0, 180.0)?;
            }
            Ok(())
        }
    }
}
