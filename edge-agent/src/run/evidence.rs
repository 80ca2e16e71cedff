//! Evidence clips of one camera. An incident start asks for the stream from `pre` before to
//! `post` after it; once the source's ring holds the post-roll (or the session ends) the cut
//! is muxed to MP4 and comes back as the chunk messages plus the incident `updated` event that
//! references the clip (stored in one outbox transaction by the worker).
//!
//! Requests waiting for their post-roll are bounded ([`MAX_WAITING`]); when full, the oldest
//! is cut at once with the post-roll recorded so far (a shorter clip, never a lost one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use roadsight_events::{clip, ClipRef, IncidentEvent, IncidentMeasures, IncidentState};
use roadsight_pipeline::analytics::StreamClock;
use roadsight_pipeline::source::evidence::{EncodedClip, EvidenceRing, EvidenceSpec};

use crate::config::ClipSettings;

/// Incident starts waiting for their post-roll at most.
pub const MAX_WAITING: usize = 16;

struct Waiting {
    incident: IncidentEvent,
    /// The incident's moment in source PTS and in stream time (they differ by a session's offset).
    source_pts: Duration,
    stream_t: Duration,
}

/// A muxed clip ready to store: its chunk payloads (none when an incident of the same frame
/// already sends them) and the incident update naming it.
pub struct ReadyClip {
    pub clip: ClipRef,
    pub chunks: Vec<Vec<u8>>,
    pub update: IncidentEvent,
    source_pts: Duration,
}

pub struct ClipRecorder {
    settings: ClipSettings,
    waiting: Vec<Waiting>,
    /// Where MP4s are muxed (a temporary file each).
    scratch: PathBuf,
    camera: String,
    warned_no_stream: bool,
}

impl ClipRecorder {
    pub fn new(settings: ClipSettings, scratch: &Path, camera: &str) -> Self {
        ClipRecorder { settings, waiting: Vec::new(), scratch: scratch.to_owned(), camera: camera.to_owned(), warned_no_stream: false }
    }

    pub fn ring_spec(&self) -> EvidenceSpec {
        self.settings.ring
    }

    /// Asks for a clip of an incident that starts now (`source_pts` of the frame, `t` its stream
    /// time). Other states are ignored: one clip per incident.
    pub fn request(&mut self, incident: &IncidentEvent, source_pts: Duration, t: Duration) {
        if incident.state == IncidentState::Started {
            self.waiting.push(Waiting { incident: incident.clone(), source_pts, stream_t: t });
        }
    }

    /// The clips whose post-roll `ring` holds — all of them at the end of a session
    /// (`session_ended`), and the oldest beyond [`MAX_WAITING`].
    pub fn take_ready(&mut self, ring: Option<&EvidenceRing>, session_ended: bool, clock: &StreamClock) -> Vec<ReadyClip> {
        let newest = ring.and_then(EvidenceRing::newest_pts);
        let post = self.settings.post;
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            let recorded = newest.is_some_and(|n| n >= w.source_pts + post);
            // Beyond the bound, the oldest go now (`waiting` is in request order).
            let overflow = self.waiting.len() - i > MAX_WAITING;
            if !(recorded || session_ended || overflow) {
                i += 1;
                continue;
            }
            let w = self.waiting.remove(i);
            // Incidents that started on the same frame share one clip (sent once).
            if let Some(shared) = ready.iter().find(|r: &&ReadyClip| r.source_pts == w.source_pts) {
                let clip = shared.clip.clone();
                ready.push(ReadyClip { update: clip_update(&w.incident, &clip), clip, chunks: Vec::new(), source_pts: w.source_pts });
                continue;
            }
            match ring.and_then(|r| self.cut(r, &w)) {
                Some(clip) => match self.finish(&w, clip, clock) {
                    Ok(r) => ready.push(r),
                    Err(e) => tracing::error!(camera = self.camera.as_str(), incident = %w.incident.incident_id, "evidence clip: {e}"),
                },
                None if !self.warned_no_stream => {
                    self.warned_no_stream = true;
                    tracing::warn!(
                        camera = self.camera.as_str(),
                        "no evidence clip: the camera's stream is not H.264/H.265 (or no keyframe was received yet)"
                    );
                }
                None => {}
            }
        }
        ready
    }

    fn cut(&self, ring: &EvidenceRing, w: &Waiting) -> Option<EncodedClip> {
        ring.cut(w.source_pts.saturating_sub(self.settings.pre), w.source_pts + self.settings.post)
    }

    fn finish(&self, w: &Waiting, mut cut: EncodedClip, clock: &StreamClock) -> anyhow::Result<ReadyClip> {
        // Leave room for the MP4 index (a few bytes per frame).
        let payload_cap = (self.settings.max_clip_bytes as usize).saturating_sub(64 << 10);
        if cut.limit_bytes(payload_cap) {
            tracing::warn!(camera = self.camera.as_str(), "evidence clip cut short at {} bytes", self.settings.max_clip_bytes);
        }
        let muxing = std::time::Instant::now();
        let mp4 = cut.to_mp4(&self.scratch)?;
        let mux_ms = muxing.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(mp4.bytes.len() as u64 <= clip::MAX_BYTES, "a clip of {} bytes exceeds the wire limit", mp4.bytes.len());
        let starts = (w.stream_t + cut.first_pts).saturating_sub(w.source_pts);
        let clip_ref = ClipRef {
            clip_id: uuid::Uuid::now_v7(),
            content_type: clip::CONTENT_TYPE.into(),
            bytes: mp4.bytes.len() as u64,
            sha256: mp4.sha256.clone(),
            starts_at: clock.at(starts),
            duration_ms: mp4.duration.as_millis() as u64,
            chunks: clip::chunks(mp4.bytes.len() as u64),
        };
        tracing::info!(
            camera = self.camera.as_str(), incident = %w.incident.incident_id, bytes = clip_ref.bytes, frames = mp4.frames,
            preroll_short = cut.preroll_short, "evidence clip of {:.1} s (muxed in {mux_ms:.0} ms)", mp4.duration.as_secs_f64()
        );
        let update = clip_update(&w.incident, &clip_ref);
        let chunks = mp4.bytes.chunks(clip::CHUNK_BYTES).map(<[u8]>::to_vec).collect();
        Ok(ReadyClip { clip: clip_ref, chunks, update, source_pts: w.source_pts })
    }
}

/// The incident's update naming its clip; it carries nothing else new (the IOC attaches the
/// clip only).
fn clip_update(incident: &IncidentEvent, clip: &ClipRef) -> IncidentEvent {
    IncidentEvent {
        state: IncidentState::Updated,
        measures: IncidentMeasures::default(),
        snapshot: None,
        clip: Some(clip.clone()),
        ..incident.clone()
    }
}
