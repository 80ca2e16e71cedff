//! MQTT topics of the wire contract (`roadsight/v1/…`), built and parsed in one place.
//!
//! - `roadsight/v1/{site}/{camera}/events` — one [`crate::Event`] JSON per message, QoS 1.
//! - `roadsight/v1/{site}/{camera}/status` — retained latest `camera_status` event, QoS 1.
//! - `roadsight/v1/{site}/{camera}/snapshots/{snapshot_id}` — a JPEG, QoS 1, referenced by an
//!   incident event's `snapshot.snapshot_id`.
//! - `roadsight/v1/{site}/{camera}/clips/{clip_id}/{index}/{count}` — chunk `index` (from 0)
//!   of `count` of an MP4 evidence clip, QoS 1, referenced by an incident event's `clip`.
//! - `roadsight/v1/{site}/signals/{signal_id}/phase` — retained [`crate::ControllerPhase`]
//!   from a signal controller, read by the site's agents.
//! - `roadsight/v1/{site}/agents/{agent}/status` — retained `online`/`offline` (last will).

pub const PREFIX: &str = "roadsight/v1";

pub fn events(site: &str, camera: &str) -> String {
    format!("{PREFIX}/{site}/{camera}/events")
}

pub fn camera_status(site: &str, camera: &str) -> String {
    format!("{PREFIX}/{site}/{camera}/status")
}

pub fn snapshot(site: &str, camera: &str, snapshot_id: &str) -> String {
    format!("{PREFIX}/{site}/{camera}/snapshots/{snapshot_id}")
}

pub fn clip_chunk(site: &str, camera: &str, clip_id: &str, index: u32, count: u32) -> String {
    format!("{PREFIX}/{site}/{camera}/clips/{clip_id}/{index}/{count}")
}

pub fn signal_phase(site: &str, signal_id: &str) -> String {
    format!("{PREFIX}/{site}/signals/{signal_id}/phase")
}

/// The controller phases of one site (what its agents subscribe to).
pub fn site_signal_phases(site: &str) -> String {
    format!("{PREFIX}/{site}/signals/+/phase")
}

pub fn agent_status(site: &str, agent: &str) -> String {
    format!("{PREFIX}/{site}/agents/{agent}/status")
}

/// Filters an IOC subscribes to (all sites).
pub const ALL_EVENTS: &str = "roadsight/v1/+/+/events";
pub const ALL_SNAPSHOTS: &str = "roadsight/v1/+/+/snapshots/+";
pub const ALL_CLIP_CHUNKS: &str = "roadsight/v1/+/+/clips/+/+/+";
pub const ALL_AGENT_STATUS: &str = "roadsight/v1/+/agents/+/status";

/// A parsed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic<'a> {
    Events { site: &'a str, camera: &'a str },
    CameraStatus { site: &'a str, camera: &'a str },
    Snapshot { site: &'a str, camera: &'a str, snapshot_id: &'a str },
    ClipChunk { site: &'a str, camera: &'a str, clip_id: &'a str, index: u32, count: u32 },
    AgentStatus { site: &'a str, agent: &'a str },
    SignalPhase { site: &'a str, signal_id: &'a str },
}

pub fn parse(topic: &str) -> Option<Topic<'_>> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [site, "agents", agent, "status"] => Some(Topic::AgentStatus { site, agent }),
        [site, "signals", signal_id, "phase"] => Some(Topic::SignalPhase { site, signal_id }),
        [site, camera, "events"] => Some(Topic::Events { site, camera }),
        [site, camera, "status"] => Some(Topic::CameraStatus { site, camera }),
        [site, camera, "snapshots", id] => Some(Topic::Snapshot { site, camera, snapshot_id: id }),
        [site, camera, "clips", id, index, count] => {
            Some(Topic::ClipChunk { site, camera, clip_id: id, index: index.parse().ok()?, count: count.parse().ok()? })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        assert_eq!(parse(&events("s", "c")), Some(Topic::Events { site: "s", camera: "c" }));
        assert_eq!(parse(&snapshot("s", "c", "x")), Some(Topic::Snapshot { site: "s", camera: "c", snapshot_id: "x" }));
        assert_eq!(
            parse(&clip_chunk("s", "c", "x", 2, 5)),
            Some(Topic::ClipChunk { site: "s", camera: "c", clip_id: "x", index: 2, count: 5 })
        );
        assert_eq!(parse("roadsight/v1/s/c/clips/x/two/5"), None);
        assert_eq!(parse(&signal_phase("s", "main")), Some(Topic::SignalPhase { site: "s", signal_id: "main" }));
        assert_eq!(parse(&agent_status("s", "a")), Some(Topic::AgentStatus { site: "s", agent: "a" }));
        assert_eq!(parse(&camera_status("s", "c")), Some(Topic::CameraStatus { site: "s", camera: "c" }));
        assert_eq!(parse("other/x"), None);
    }
}
