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
