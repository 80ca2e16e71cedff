//! Turning analytics payloads into wire events: ids, per-camera sequence numbers that survive
//! restarts, and UTC times derived from stream time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use roadsight_events::{Event, EventBody, SCHEMA_VERSION};
use roadsight_pipeline::analytics::StreamClock;
use uuid::Uuid;

/// The last sequence number used by one camera, persisted after every event so a restarted
/// agent continues where it stopped (no reuse, no gap).
pub struct SeqStore {
    path: PathBuf,
    last: u64,
}

impl SeqStore {
    pub fn open(state_dir: &Path, site_id: &str, camera_id: &str) -> anyhow::Result<Self> {
        let dir = state_dir.join("seq").join(site_id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating state folder {}", dir.display()))?;
        let path = dir.join(format!("{camera_id}.seq"));
        let last = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().with_context(|| format!("corrupt sequence file {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(SeqStore { path, last })
    }

    pub fn next(&mut self) -> anyhow::Result<u64> {
        let seq = self.last + 1;
        let tmp = self.path.with_extension("seq.tmp");
        std::fs::write(&tmp, seq.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).with_context(|| format!("writing {}", self.path.display()))?;
        self.last = seq;
        Ok(seq)
    }
}

/// Stamps payloads of one camera into [`Event`]s.
pub struct EventStamper {
    pub site_id: String,
    pub camera_id: String,
    pub agent_id: String,
    pub clock: StreamClock,
    seq: SeqStore,
}

impl EventStamper {
    pub fn new(site_id: &str, camera_id: &str, agent_id: &str, clock: StreamClock, seq: SeqStore) -> Self {
        EventStamper {
            site_id: site_id.to_owned(),
            camera_id: camera_id.to_owned(),
            agent_id: agent_id.to_owned(),
            clock,
            seq,
        }
    }

    pub fn stamp(&mut self, pts: Duration, body: EventBody) -> anyhow::Result<Event> {
        Ok(Event {
            schema: SCHEMA_VERSION,
            event_id: Uuid::now_v7(),
            seq: self.seq.next()?,
            site_id: self.site_id.clone(),
            camera_id: self.camera_id.clone(),
            agent_id: self.agent_id.clone(),
            occurred_at: self.clock.at(pts),
            pts_ms: pts.as_millis() as u64,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = SeqStore::open(dir.path(), "site", "cam").expect("open");
        assert_eq!(s.next().expect("next"), 1);
        assert_eq!(s.next().expect("next"), 2);
        drop(s);
        let mut s = SeqStore::open(dir.path(), "site", "cam").expect("reopen");
        assert_eq!(s.next().expect("next"), 3);
    }
}
