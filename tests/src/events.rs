//! Wire-contract events for tests, built in one place.

use chrono::Utc;
use roadsight_events::{Event, EventBody, LineCrossing, ObjectClass, ObjectRef, SCHEMA_VERSION};
use uuid::Uuid;

/// A car crossing `stop-line` northbound, event number `seq` of `camera` at `site`, now.
pub fn line_crossing(site: &str, camera: &str, agent: &str, seq: u64) -> Event {
    Event {
        schema: SCHEMA_VERSION,
        event_id: Uuid::now_v7(),
        seq,
        site_id: site.into(),
        camera_id: camera.into(),
        agent_id: agent.into(),
        occurred_at: Utc::now(),
        pts_ms: seq * 40,
        body: EventBody::LineCrossing(LineCrossing {
            line_id: "stop-line".into(),
            direction: "northbound".into(),
            object: ObjectRef { track_id: seq, class: ObjectClass::Car, confidence: 0.9, bbox: [1.0, 2.0, 30.0, 20.0], riders: None },
        }),
    }
}

/// An incident event (`wrong_way` by a car) of `camera` at `site`, now, optionally announcing
/// an evidence clip of `bytes` hashing to `sha256`.
pub fn incident(
    site: &str,
    camera: &str,
    agent: &str,
    seq: u64,
    incident_id: Uuid,
    state: roadsight_events::IncidentState,
    clip: Option<(Uuid, &[u8])>,
) -> Event {
    use roadsight_events::{clip as wire, ClipRef, IncidentEvent, IncidentKind, IncidentMeasures, Severity};
    use sha2::Digest;
    let clip = clip.map(|(clip_id, bytes)| ClipRef {
        clip_id,
        content_type: wire::CONTENT_TYPE.into(),
        bytes: bytes.len() as u64,
        sha256: sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect(),
        starts_at: Utc::now(),
        duration_ms: 10_000,
        chunks: wire::chunks(bytes.len() as u64),
    });
    Event {
        body: EventBody::Incident(IncidentEvent {
            incident_id,
            kind: IncidentKind::WrongWay,
            state,
            severity: Severity::Critical,
            zone_id: Some("ramp".into()),
            object: Some(ObjectRef { track_id: 7, class: ObjectClass::Car, confidence: 0.8, bbox: [5.0, 5.0, 40.0, 30.0], riders: None }),
            measures: IncidentMeasures::default(),
            related: Vec::new(),
            snapshot: None,
            clip,
        }),
        ..line_crossing(site, camera, agent, seq)
    }
}
