//! Turning analytics payloads into wire events — ids, per-camera `seq`, UTC from stream
//! time — and storing them in the outbox in the same step as the `seq` is taken.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use roadsight_events::{topics, Event, EventBody, SCHEMA_VERSION};
use roadsight_pipeline::analytics::StreamClock;
use uuid::Uuid;

use super::outbox::Outbox;

/// Stamps payloads of one camera into [`Event`]s and enqueues them.
pub struct EventStamper {
    pub site_id: String,
    pub camera_id: String,
    pub agent_id: String,
    pub clock: StreamClock,
}

impl EventStamper {
    pub fn new(site_id: &str, camera_id: &str, agent_id: &str, clock: StreamClock) -> Self {
        EventStamper { site_id: site_id.to_owned(), camera_id: camera_id.to_owned(), agent_id: agent_id.to_owned(), clock }
    }

    fn event(&self, seq: u64, pts: Duration, body: EventBody) -> Event {
        Event {
            schema: SCHEMA_VERSION,
            event_id: Uuid::now_v7(),
            seq,
            site_id: self.site_id.clone(),
            camera_id: self.camera_id.clone(),
            agent_id: self.agent_id.clone(),
            occurred_at: self.clock.at(pts),
            pts_ms: pts.as_millis() as u64,
            body,
        }
    }

    /// Stamps and stores one event (blocks while the outbox is full). A `camera_status` event
    /// also updates the camera's retained status topic.
    pub fn emit(&self, outbox: &Outbox, stop: &AtomicBool, pts: Duration, body: EventBody) -> anyhow::Result<Event> {
        self.emit_after(outbox, stop, pts, body, Vec::new())
    }

    /// As [`EventStamper::emit`], storing `before` (topic, payload: an evidence clip's chunks)
    /// ahead of the event in the same transaction: the event never goes out without them.
    pub fn emit_after(
        &self,
        outbox: &Outbox,
        stop: &AtomicBool,
        pts: Duration,
        body: EventBody,
        before: Vec<(String, Vec<u8>)>,
    ) -> anyhow::Result<Event> {
        let mut stamped = None;
        let room = 1024 + before.iter().map(|(_, p)| p.len()).sum::<usize>();
        outbox.enqueue_event(&self.site_id, &self.camera_id, room, stop, |seq| {
            let event = self.event(seq, pts, body);
            let json = serde_json::to_vec(&event)?;
            let mut messages: Vec<(String, Vec<u8>, bool)> = before.into_iter().map(|(t, p)| (t, p, false)).collect();
            messages.push((topics::events(&self.site_id, &self.camera_id), json.clone(), false));
            if matches!(event.body, EventBody::CameraStatus(_)) {
                messages.push((topics::camera_status(&self.site_id, &self.camera_id), json, true));
            }
            stamped = Some(event);
            Ok(messages)
        })?;
        stamped.ok_or_else(|| anyhow::anyhow!("event was not built"))
    }
}
