//! Roadsight wire contract, version 1.
//!
//! Every message an edge agent sends (over MQTT, HTTP or a JSON-lines file) is one [`Event`]
//! serialised as a JSON object. This crate is the single definition of that schema: the agent
//! produces these types, `ioc-api` consumes them, and `schema/event-v1.schema.json` is generated
//! from them (a test keeps the committed file in step with the code).
//!
//! Invariants a producer upholds:
//! - `event_id` is a UUIDv7 and the idempotency key: a re-sent event carries the same id.
//! - `seq` is per camera, strictly increasing, and survives agent restarts.
//! - `occurred_at` derives from the stream timestamp (`pts_ms`), never from the wall clock at
//!   processing time, so replaying a clip yields identical events (ids aside).

pub mod decode;
#[cfg(feature = "proptest")]
pub mod strategies;
pub mod topics;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version this crate defines.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema of [`Event`], as committed in `schema/event-v1.schema.json`.
pub const EVENT_SCHEMA_JSON: &str = include_str!("../schema/event-v1.schema.json");

/// One event on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Schema version, always [`SCHEMA_VERSION`] for this crate.
    pub schema: u32,
    /// UUIDv7; the idempotency key.
    pub event_id: Uuid,
    /// Per-camera sequence number, strictly increasing across agent restarts.
    pub seq: u64,
    pub site_id: String,
    pub camera_id: String,
    pub agent_id: String,
    /// UTC time of the event, derived from the stream timestamp.
    pub occurred_at: DateTime<Utc>,
    /// Stream presentation timestamp of the frame the event was decided on, in milliseconds.
    pub pts_ms: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// The event's `type` tag, as it appears on the wire.
    pub fn kind(&self) -> EventType {
        match &self.body {
            EventBody::LineCrossing(_) => EventType::LineCrossing,
            EventBody::ZoneEnter(_) => EventType::ZoneEnter,
            EventBody::ZoneExit(_) => EventType::ZoneExit,
            EventBody::Incident(_) => EventType::Incident,
            EventBody::Counts(_) => EventType::Counts,
            EventBody::CameraStatus(_) => EventType::CameraStatus,
            EventBody::SignalPhase(_) => EventType::SignalPhase,
        }
    }
}

/// The `type` tag of an event, without its payload (for filters and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    LineCrossing,
    ZoneEnter,
    ZoneExit,
    Incident,
    Counts,
    CameraStatus,
    SignalPhase,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::LineCrossing,
        EventType::ZoneEnter,
        EventType::ZoneExit,
        EventType::Incident,
        EventType::Counts,
        EventType::CameraStatus,
        EventType::SignalPhase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LineCrossing => "line_crossing",
            EventType::ZoneEnter => "zone_enter",
            EventType::ZoneExit => "zone_exit",
            EventType::Incident => "incident",
            EventType::Counts => "counts",
            EventType::CameraStatus => "camera_status",
            EventType::SignalPhase => "signal_phase",
        }
    }
}

/// The payload, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    LineCrossing(LineCrossing),
    ZoneEnter(ZoneTransition),
    ZoneExit(ZoneTransition),
    Incident(IncidentEvent),
    Counts(Counts),
    CameraStatus(CameraStatus),
    SignalPhase(SignalPhaseChange),
}

/// Object classes the pipeline reports (COCO traffic classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectClass {
    Person,
    Bicycle,
    Car,
    Motorcycle,
    Bus,
    Truck,
}

impl ObjectClass {
    pub const ALL: [ObjectClass; 6] = [
        ObjectClass::Person,
        ObjectClass::Bicycle,
        ObjectClass::Car,
        ObjectClass::Motorcycle,
        ObjectClass::Bus,
        ObjectClass::Truck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectClass::Person => "person",
            ObjectClass::Bicycle => "bicycle",
            ObjectClass::Car => "car",
            ObjectClass::Motorcycle => "motorcycle",
            ObjectClass::Bus => "bus",
            ObjectClass::Truck => "truck",
        }
    }

    /// Parses a COCO label name (`"motorcycle"`, also the VOC spelling `"motorbike"`).
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "person" => Some(ObjectClass::Person),
            "bicycle" => Some(ObjectClass::Bicycle),
            "car" => Some(ObjectClass::Car),
            "motorcycle" | "motorbike" => Some(ObjectClass::Motorcycle),
            "bus" => Some(ObjectClass::Bus),
            "truck" => Some(ObjectClass::Truck),
            _ => None,
        }
    }

    /// True for motor and non-motor vehicles (everything but `person`).
    pub fn is_vehicle(self) -> bool {
        !matches!(self, ObjectClass::Person)
    }
}

impl std::fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tracked object as seen on the frame the event was decided on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub track_id: u64,
    pub class: ObjectClass,
    pub confidence: f32,
    /// `[x, y, w, h]` in source-frame pixels (top-left origin).
    pub bbox: [f32; 4],
    /// Persons riding this two-wheeler (rider–bike fusion on, and riders seen); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub riders: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineCrossing {
    pub line_id: String,
    /// Direction name from the camera config (e.g. `"northbound"`).
    pub direction: String,
    pub object: ObjectRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneTransition {
    pub zone_id: String,
    pub object: ObjectRef,
    /// Objects inside the zone after this transition.
    pub occupancy: u32,
    /// Time spent in the zone (exit events only), in milliseconds of stream time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dwell_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    StoppedVehicle,
    WrongWay,
    Congestion,
    Speeding,
    /// A vehicle crossed its lane's stop line while the lane's signal was red.
    RedLight,
    /// A vehicle stopped in a zone marked no-stopping.
    NoStopping,
    /// A class not allowed in a lane zone (at that local time).
    LaneRestriction,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 7] = [
        IncidentKind::StoppedVehicle,
        IncidentKind::WrongWay,
        IncidentKind::Congestion,
        IncidentKind::Speeding,
        IncidentKind::RedLight,
        IncidentKind::NoStopping,
        IncidentKind::LaneRestriction,
    ];

    /// The kind as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::StoppedVehicle => "stopped_vehicle",
            IncidentKind::WrongWay => "wrong_way",
            IncidentKind::Congestion => "congestion",
            IncidentKind::Speeding => "speeding",
            IncidentKind::RedLight => "red_light",
            IncidentKind::NoStopping => "no_stopping",
            IncidentKind::LaneRestriction => "lane_restriction",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Started,
    Updated,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A traffic signal head's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalPhase {
    Red,
    Amber,
    Green,
    /// Dark, or unreadable (glare, occlusion).
    Unknown,
}

/// Where a signal's phase came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalSource {
    /// Read from the lamp's pixels in the camera image.
    Camera,
    /// Published by the signal controller.
    Controller,
}

/// A traffic signal changed phase (the camera's incident rules use it, e.g. for red light).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalPhaseChange {
    pub signal_id: String,
    pub phase: SignalPhase,
    pub source: SignalSource,
}

/// What a signal controller (or the integration in front of it) publishes, retained, on
/// [`topics::signal_phase`]: the phase now in force. Agents with a `controller = true` signal
/// take it as that signal's phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerPhase {
    pub phase: SignalPhase,
}

/// Numbers that describe an incident; which are present depends on the kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentMeasures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_kmh: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_px: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupancy: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_length_m: Option<f32>,
    /// Other vehicles that passed a stopped vehicle while it stood (stopped-vehicle rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_by: Option<u32>,
    /// How long the lane's signal had been red when the vehicle crossed (red light).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_for_ms: Option<u64>,
}

/// A JPEG snapshot published separately and referenced from the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRef {
    pub snapshot_id: Uuid,
    pub content_type: String,
    pub bytes: u64,
}

/// An MP4 evidence clip of the incident, cut from the camera's own encoded stream (no
/// re-encode) and published separately as [`clip::CHUNK_BYTES`] chunks
/// ([`topics::clip_chunk`]). The IOC serves it only when the bytes it assembled hash to
/// `sha256`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClipRef {
    pub clip_id: Uuid,
    /// `video/mp4`.
    pub content_type: String,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the whole file.
    pub sha256: String,
    /// When its first frame (a keyframe at or before the pre-roll) was seen.
    pub starts_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Chunk messages it was published as (`ceil(bytes / CHUNK_BYTES)`).
    pub chunks: u32,
}

/// Limits of evidence clips on the wire.
pub mod clip {
    /// Bytes per chunk message (the last may be shorter).
    pub const CHUNK_BYTES: usize = 256 << 10;
    /// The largest clip (agents cut their clips shorter; the IOC refuses larger ones).
    pub const MAX_BYTES: u64 = 32 << 20;
    /// Chunks of the largest clip.
    pub const MAX_CHUNKS: u32 = (MAX_BYTES as usize).div_ceil(CHUNK_BYTES) as u32;
    pub const CONTENT_TYPE: &str = "video/mp4";

    /// Chunks a clip of `bytes` is sent as.
    pub fn chunks(bytes: u64) -> u32 {
        (bytes as usize).div_ceil(CHUNK_BYTES).max(1) as u32
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentEvent {
    /// Stable across the incident's started → updated → ended messages.
    pub incident_id: Uuid,
    pub kind: IncidentKind,
    pub state: IncidentState,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    pub measures: IncidentMeasures,
    /// Other objects of the same incident: vehicles queueing behind a stopped one, or starts
    /// folded into this incident by the camera's flood control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
    /// Sent in an `updated` event once the clip's post-roll has been recorded (possibly after
    /// the incident ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipRef>,
}

/// Line counts over one interval of stream time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub interval_start: DateTime<Utc>,
    pub interval_ms: u64,
    pub rows: Vec<CountRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRow {
    pub line_id: String,
    pub direction: String,
    pub class: ObjectClass,
    pub count: u64,
}

/// A camera's health as its supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Connecting,
    Running,
    Retrying,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraStatus {
    pub state: CameraState,
    /// Why the camera is retrying or stopped (credentials redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub road: Option<String>,
}

/// The JSON Schema generated from the types above (what `schema/event-v1.schema.json` holds).
pub fn generated_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Event);
    serde_json::to_value(schema).expect("a schemars schema serialises to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: EventBody) -> Event {
        Event {
            schema: SCHEMA_VERSION,
            event_id: Uuid::now_v7(),
            seq: 7,
            site_id: "hanoi".into(),
            camera_id: "cam-1".into(),
            agent_id: "edge-1".into(),
            occurred_at: DateTime::from_timestamp_millis(1_700_000_000_123).expect("valid"),
            pts_ms: 123,
            body,
        }
    }

    fn object() -> ObjectRef {
        ObjectRef { track_id: 3, class: ObjectClass::Motorcycle, confidence: 0.8, bbox: [1.0, 2.0, 3.0, 4.0], riders: Some(2) }
    }

    #[test]
    fn committed_schema_matches_the_types() {
        let committed: serde_json::Value =
            serde_json::from_str(EVENT_SCHEMA_JSON).expect("committed schema is JSON");
        assert_eq!(
            committed,
            generated_schema(),
            "events/schema/event-v1.schema.json is stale: run `cargo run -p roadsight-events --bin write-schema`"
        );
    }

    #[test]
    fn events_round_trip_and_validate() {
        let schema: serde_json::Value = serde_json::from_str(EVENT_SCHEMA_JSON).expect("json");
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        let bodies = vec![
            EventBody::LineCrossing(LineCrossing { line_id: "l1".into(), direction: "north".into(), object: object() }),
            EventBody::ZoneEnter(ZoneTransition { zone_id: "z".into(), object: object(), occupancy: 1, dwell_ms: None }),
            EventBody::ZoneExit(ZoneTransition { zone_id: "z".into(), object: object(), occupancy: 0, dwell_ms: Some(900) }),
            EventBody::Incident(IncidentEvent {
                incident_id: Uuid::now_v7(),
                kind: IncidentKind::WrongWay,
                state: IncidentState::Started,
                severity: Severity::Warning,
                zone_id: Some("z".into()),
                object: Some(object()),
                measures: IncidentMeasures { distance_px: Some(40.0), ..Default::default() },
                related: vec![object()],
                snapshot: None,
                clip: None,
            }),
            EventBody::Counts(Counts {
                interval_start: DateTime::from_timestamp_millis(0).expect("valid"),
                interval_ms: 60_000,
                rows: vec![CountRow { line_id: "l1".into(), direction: "north".into(), class: ObjectClass::Car, count: 4 }],
            }),
            EventBody::SignalPhase(SignalPhaseChange { signal_id: "main".into(), phase: SignalPhase::Red, source: SignalSource::Camera }),
            EventBody::CameraStatus(CameraStatus {
                state: CameraState::Retrying,
                reason: Some("connection refused".into()),
                attempt: Some(2),
                fps: None,
                name: None,
                location: Some(Location { lat: 21.0, lon: 105.8, road: None }),
            }),
        ];
        for body in bodies {
            let event = sample(body);
            let json = serde_json::to_value(&event).expect("serialise");
            assert_eq!(json["type"], event.kind().as_str());
            assert!(validator.is_valid(&json), "{json} does not validate: {:?}",
                validator.iter_errors(&json).map(|e| e.to_string()).collect::<Vec<_>>());
            let back: Event = serde_json::from_value(json).expect("deserialise");
            assert_eq!(back, event);
        }
    }

    #[test]
    fn schema_rejects_a_wrong_event() {
        let schema: serde_json::Value = serde_json::from_str(EVENT_SCHEMA_JSON).expect("json");
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        let mut json = serde_json::to_value(sample(EventBody::LineCrossing(LineCrossing {
            line_id: "l1".into(),
            direction: "n".into(),
            object: object(),
        })))
        .expect("serialise");
        json["object"]["class"] = "spaceship".into();
        assert!(!validator.is_valid(&json));
        json["object"]["class"] = "car".into();
        json.as_object_mut().expect("object").remove("seq");
        assert!(!validator.is_valid(&json));
    }
}
