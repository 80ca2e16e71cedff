//! One camera's worker: its supervisor loop (typed health, jittered backoff) around
//! source → detect → [`FrameProcessor`] → stamped events.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use indicatif::ProgressBar;
use roadsight_events::{topics, CameraState, CameraStatus, EventBody, IncidentKind};
use roadsight_pipeline::analytics::StreamClock;
use roadsight_pipeline::source::{EvidenceRing, Pacing, ReturnWatch, SourceEvent, SourceSpec, VideoSource};

use super::detect_cap::DetectCap;
use super::detection::CameraDetector;
use super::evidence::{ClipRecorder, ReadyClip};
use super::telemetry::{Stage, Telemetry};
use super::processor::FrameProcessor;
use super::outbox::Outbox;
use super::stamp::EventStamper;
use crate::config::CameraConfig;

/// A camera's health as its supervisor tracks it.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Connecting,
    Running,
    Retrying { reason: String, attempt: u32, next_in: Duration },
    Stopped { reason: Option<String> },
}

/// Shared inputs of every camera worker.
pub struct Shared {
    pub site_id: String,
    pub agent_id: String,
    /// Every event goes here first (durable; blocks when full).
    pub outbox: Arc<Outbox>,
    /// Where evidence clips are muxed (a temporary file each).
    pub clip_scratch: std::path::PathBuf,
    /// Signal phases from the site's controllers (filled by the MQTT delivery).
    pub signals: Arc<super::signals::SignalBoard>,
    /// A live camera with no frame for this long is reconnected.
    pub stall_timeout: Duration,
    pub telemetry: Arc<Telemetry>,
}

#[derive(Debug, Default, Clone)]
pub struct CameraSummary {
    pub frames: u64,
    pub dropped: u64,
    /// Frames not detected because of `max_detect_fps`.
    pub skipped: u64,
    pub events: u64,
    /// Evidence clips stored for delivery.
    pub clips: u64,
    pub reconnects: u32,
    /// Line crossings since start: (line id, direction, class) → count.
    pub line_totals: std::collections::BTreeMap<(String, String, roadsight_events::ObjectClass), u64>,
}

/// Maps source PTS to monotonic stream time. Files: the PTS itself. Live: each session is
/// anchored once, at its first frame, to the time elapsed since the worker started, so stream
/// time keeps advancing across reconnects.
struct Timeline {
    live: bool,
    started: Instant,
    session: Option<(Duration, Duration)>,
    last: Duration,
}

impl Timeline {
    fn new(live: bool) -> Self {
        Timeline { live, started: Instant::now(), session: None, last: Duration::ZERO }
    }

    fn new_session(&mut self) {
        self.session = None;
    }

    fn map(&mut self, pts: Duration) -> Duration {
        let t = if self.live {
            let (anchor, first) = *self.session.get_or_insert((self.started.elapsed(), pts));
            anchor + pts.saturating_sub(first)
        } else {
            pts
        };
        self.last = self.last.max(t);
        self.last
    }

    fn now(&self) -> Duration {
        if self.live {
            self.last.max(self.started.elapsed())
        } else {
            self.last
        }
    }
}

/// Longest wait between reconnect attempts (before jitter). Short on purpose: a camera that
/// comes back streams again within seconds, and a dead one costs one connection attempt per
/// few seconds.
const MAX_BACKOFF_SECS: f64 = 3.0;

/// How often a waiting camera's port is probed (a TCP connect; see [`ReturnWatch`]).
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Jittered exponential backoff: 0.5 s doubling to [`MAX_BACKOFF_SECS`], ±20 % so cameras
/// behind one failed switch do not reconnect in lockstep.
fn backoff(attempt: u32) -> Duration {
    let base = 0.5 * 2f64.powi(attempt.saturating_sub(1).min(6) as i32);
    Duration::from_secs_f64(base.min(MAX_BACKOFF_SECS) * (0.8 + 0.4 * fastrand::f64()))
}

pub struct CameraWorker {
    cfg: Arc<CameraConfig>,
    shared: Arc<Shared>,
    /// This camera's own stop (set when the agent stops, or when a reload removes or
    /// changes this camera).
    stop: Arc<AtomicBool>,
    detector: CameraDetector,
    processor: FrameProcessor,
    stamper: EventStamper,
    timeline: Timeline,
    summary: CameraSummary,
    progress: ProgressBar,
    /// Which frames go to detection (`max_detect_fps`).
    detect_cap: DetectCap,
    /// Incident starts folded by the flood control, as far as `/metrics` has them.
    folded_reported: BTreeMap<IncidentKind, u64>,
    /// Evidence clips waiting for their post-roll (`None`: clips off for this camera).
    clips: Option<ClipRecorder>,
}

impl CameraWorker {
    pub fn new(
        cfg: Arc<CameraConfig>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
        detector: CameraDetector,
        progress: ProgressBar,
    ) -> anyhow::Result<Self> {
        let live = cfg.pacing == Pacing::Latest;
        let detect_cap = DetectCap::new(cfg.min_detect_interval);
        let origin = cfg.clock_origin.unwrap_or_else(Utc::now);
        let clock = StreamClock { origin };
        let clips = cfg.evidence.clone().map(|e| ClipRecorder::new(e, &shared.clip_scratch, &cfg.id));
        Ok(CameraWorker {
            clips,
            processor: FrameProcessor::for_camera(&cfg, detector.labels(), clock),
            stamper: EventStamper::new(&shared.site_id, &cfg.id, &shared.agent_id, clock),
            timeline: Timeline::new(live),
            detector,
            cfg,
            shared,
            stop,
            summary: CameraSummary::default(),
            progress,
            detect_cap,
            folded_reported: BTreeMap::new(),
        })
    }

    fn emit(&mut self, pts: Duration, body: EventBody) -> anyhow::Result<()> {
        // Blocks while the outbox is full: events are never dropped.
        self.stamper.emit(&self.shared.outbox, &self.stop, pts, body).context("storing an event in the outbox")?;
        self.summary.events += 1;
        Ok(())
    }

    /// Renders the frame with the object's box as JPEG, stores it in the outbox (before the
    /// incident event, so it usually arrives first) and references it from the incident.
    fn attach_snapshot(
        &mut self,
        view: &roadsight_pipeline::frame::FrameView<'_>,
        object: &roadsight_pipeline::geometry::BBox,
        body: &mut EventBody,
    ) -> anyhow::Result<()> {
        let EventBody::Incident(incident) = body else { return Ok(()) };
        let jpeg = crate::draw::snapshot_jpeg(view, object, 80)?;
        let snapshot_id = uuid::Uuid::now_v7();
        let topic = roadsight_events::topics::snapshot(&self.shared.site_id, &self.cfg.id, &snapshot_id.to_string());
        self.shared.outbox.enqueue(&topic, &jpeg, false, &self.stop)?;
        incident.snapshot = Some(roadsight_events::SnapshotRef {
            snapshot_id,
            content_type: "image/jpeg".into(),
            bytes: jpeg.len() as u64,
        });
        Ok(())
    }

    /// Stores each clip whose post-roll is recorded (every waiting one when the session
    /// ended): its chunks and the incident update naming it, in one outbox transaction.
    fn deliver_clips(&mut self, ring: Option<&EvidenceRing>, session_ended: bool, now: Duration) -> anyhow::Result<()> {
        let Some(clips) = self.clips.as_mut() else { return Ok(()) };
        let ready = clips.take_ready(ring, session_ended, &self.stamper.clock);
        self.shared.telemetry.evidence_clips(&self.cfg.id, ready.iter().filter(|r| !r.chunks.is_empty()).count() as u64);
        for ReadyClip { clip, chunks, update, .. } in ready {
            let count = clip.chunks;
            let id = clip.clip_id.to_string();
            let chunks_empty = chunks.is_empty();
            let before = chunks
                .into_iter()
                .enumerate()
                .map(|(i, c)| (topics::clip_chunk(&self.shared.site_id, &self.cfg.id, &id, i as u32, count), c))
                .collect();
            self.stamper
                .emit_after(&self.shared.outbox, &self.stop, now, EventBody::Incident(update), before)
                .context("storing an evidence clip in the outbox")?;
            self.summary.events += 1;
            self.summary.clips += u64::from(!chunks_empty);
        }
        Ok(())
    }

    fn set_health(&mut self, health: &Health) -> anyhow::Result<()> {
        let cam = self.cfg.id.as_str();
        self.shared.telemetry.health(cam, health);
        match health {
            Health::Retrying { reason, attempt, next_in } => {
                tracing::warn!(camera = cam, attempt, "retrying in {:.1} s: {reason}", next_in.as_secs_f32())
            }
            Health::Stopped { reason: Some(r) } => tracing::error!(camera = cam, "stopped: {r}"),
            other => tracing::info!(camera = cam, "{other:?}"),
        }
        let (state, reason, attempt) = match health {
            Health::Connecting => (CameraState::Connecting, None, None),
            Health::Running => (CameraState::Running, None, None),
            Health::Retrying { reason, attempt, .. } => (CameraState::Retrying, Some(reason.clone()), Some(*attempt)),
            Health::Stopped { reason } => (CameraState::Stopped, reason.clone(), None),
        };
        let status = CameraStatus {
            state,
            reason,
            attempt,
            fps: None,
            name: self.cfg.name.clone(),
            location: self.cfg.location.clone(),
        };
        let now = self.timeline.now();
        self.emit(now, EventBody::CameraStatus(status))
    }

    /// True when `max_detect_fps` says this frame comes too soon after the last detected one
    /// (stream time, so a replay skips the same frames).
    fn detect_cap_skips(&mut self, t: Duration) -> bool {
        self.detect_cap.skips(t)
    }

    fn record_frame(&mut self, decode_wait: Duration, decoded_at: Instant, analytics: Duration) {
        let (t, cam) = (&self.shared.telemetry, self.cfg.id.as_str());
        // Per frame: no allocation (the counts are borrowed; the map here gains a key per kind).
        for (kind, n) in self.processor.incidents_folded() {
            let reported = self.folded_reported.entry(kind).or_default();
            t.incidents_folded(cam, kind, n.saturating_sub(*reported));
            *reported = n;
        }
        let d = self.detector.timings();
        t.frame(cam);
        t.stage(cam, Stage::DecodeWait, decode_wait);
        t.stage(cam, Stage::Preprocess, d.preprocess);
        t.stage(cam, Stage::Inference, d.inference);
        t.stage(cam, Stage::Postprocess, d.postprocess);
        t.stage(cam, Stage::Analytics, analytics);
        t.stage(cam, Stage::FrameToEvents, decoded_at.elapsed());
    }

    /// Runs until the source ends (files), the agent stops, or a fatal error.
    pub fn run(mut self) -> anyhow::Result<CameraSummary> {
        let live = self.cfg.pacing == Pacing::Latest;
        let mut attempt = 0u32;
        let mut watch = ReturnWatch::new(&self.cfg.source);
        let result = loop {
            if self.stop.load(Ordering::Relaxed) {
                break Ok(None);
            }
            self.set_health(&Health::Connecting)?;
            let frames_before = self.summary.frames;
            let outcome = self.stream_once();
            if self.summary.frames > frames_before {
                // The session streamed: the next failure starts the backoff afresh.
                attempt = 0;
            }
            match outcome {
                Ok(SessionEnd::Eos) if !live => break Ok(None),
                Ok(SessionEnd::Stopped) => break Ok(None),
                Err(SessionError::Fatal(e)) => break Err(e),
                Err(SessionError::Source(reason)) if !live => break Ok(Some(reason)),
                end => {
                    let reason = match end {
                        Err(SessionError::Source(r)) => r,
                        _ => "stream ended".to_owned(),
                    };
                    attempt += 1;
                    self.summary.reconnects += 1;
                    let next_in = backoff(attempt);
                    self.set_health(&Health::Retrying { reason, attempt, next_in })?;
                    if self.wait_backoff(next_in, &mut watch) {
                        // The camera is back: if this reconnect fails, back off afresh.
                        attempt = 0;
                    }
                }
            }
        };
        let reason = match result {
            Ok(r) => r,
            Err(e) => Some(format!("{e:#}")),
        };
        for e in self.processor.finish() {
            self.emit(e.pts, e.body)?;
        }
        self.set_health(&Health::Stopped { reason: reason.clone() })?;
        self.progress.finish_and_clear();
        self.summary.line_totals = self.processor.totals().cloned().unwrap_or_default();
        match reason {
            Some(r) if !live => Err(anyhow::anyhow!("camera {}: {r}", self.cfg.id)),
            _ => Ok(self.summary),
        }
    }

    /// Sleeps out a backoff, but probes the camera's port a few times a second and ends the
    /// wait as soon as a camera that had gone silent answers again (back within a second of
    /// its return, whatever the backoff had grown to). True when it ended early so.
    fn wait_backoff(&self, next_in: Duration, watch: &mut ReturnWatch) -> bool {
        let until = Instant::now() + next_in;
        let mut next_probe = Instant::now();
        while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_probe {
                if watch.returned() {
                    tracing::info!(camera = self.cfg.id.as_str(), "camera answers again: reconnecting now");
                    return true;
                }
                next_probe = Instant::now() + PROBE_INTERVAL;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// One source session: open, stream frames until EOS, error, stall or stop; then the
    /// evidence clips still waiting are cut from what the session recorded.
    fn stream_once(&mut self) -> Result<SessionEnd, SessionError> {
        let ring = self.clips.as_ref().map(ClipRecorder::ring_spec);
        let spec = SourceSpec::new(self.cfg.source.clone(), self.cfg.pacing).with_evidence(ring);
        let mut source = VideoSource::open(&spec).map_err(|e| SessionError::Source(e.to_string()))?;
        let end = self.stream_frames(&mut source);
        let now = self.timeline.now();
        self.deliver_clips(source.evidence(), true, now).map_err(SessionError::Fatal)?;
        end
    }

    fn stream_frames(&mut self, source: &mut VideoSource) -> Result<SessionEnd, SessionError> {
        if let Some(d) = source.duration() {
            self.progress.set_length(d.as_millis() as u64);
        }
        self.timeline.new_session();
        let mut running = false;
        let mut last_frame = Instant::now();
        let started = Instant::now();
        let mut session_frames = 0u64;
        let mut reported_drops = 0u64;
        // Since the worker became free for the next frame (its wait for the decoder).
        let mut waiting_since = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(SessionEnd::Stopped);
            }
            let event = source.next(Duration::from_millis(200)).map_err(|e| SessionError::Source(e.to_string()))?;
            let frame = match event {
                SourceEvent::Frame(f) => f,
                SourceEvent::Eos => {
                    self.summary.dropped += source.dropped_frames();
                    self.shared.telemetry.dropped(&self.cfg.id, source.dropped_frames() - reported_drops);
                    return Ok(SessionEnd::Eos);
                }
                SourceEvent::Timeout => {
                    if last_frame.elapsed() > self.shared.stall_timeout {
                        return Err(SessionError::Source(format!(
                            "no frame for {} s",
                            self.shared.stall_timeout.as_secs()
                        )));
                    }
                    continue;
                }
            };
            last_frame = Instant::now();
            let decoded_at = last_frame;
            let decode_wait = decoded_at - waiting_since;
            if !running {
                running = true;
                self.set_health(&Health::Running).map_err(SessionError::Fatal)?;
            }
            let t = self.timeline.map(frame.time.pts);
            if self.detect_cap_skips(t) {
                self.summary.skipped += 1;
                continue;
            }
            let night = self.processor.is_night(t);
            let (frame, detections) = self.detector.detect(frame, night).map_err(SessionError::Fatal)?;
            let view = frame.view();
            let analytics_started = Instant::now();
            let mut emitted = self.processor.observe_signals(&view, t);
            emitted.extend(self.processor.observe_controller(&self.shared.signals, view.width, view.height, t));
            emitted.extend(self.processor.process(detections, view.width, view.height, t));
            let analytics_took = analytics_started.elapsed();
            for mut e in emitted {
                if let Some(object) = e.snapshot {
                    self.attach_snapshot(&view, &object, &mut e.body).map_err(SessionError::Fatal)?;
                }
                if let (Some(clips), EventBody::Incident(incident)) = (self.clips.as_mut(), &e.body) {
                    clips.request(incident, frame.time.pts, t);
                }
                self.emit(e.pts, e.body).map_err(SessionError::Fatal)?;
            }
            drop(frame);
            self.deliver_clips(source.evidence(), false, t).map_err(SessionError::Fatal)?;
            self.record_frame(decode_wait, decoded_at, analytics_took);
            waiting_since = Instant::now();
            self.summary.frames += 1;
            session_frames += 1;
            self.progress.set_position(t.as_millis() as u64);
            if session_frames % 16 == 0 {
                let fps = session_frames as f64 / started.elapsed().as_secs_f64().max(1e-6);
                self.shared.telemetry.fps(&self.cfg.id, fps);
                let dropped = source.dropped_frames();
                self.shared.telemetry.dropped(&self.cfg.id, dropped - reported_drops);
                reported_drops = dropped;
                if let Some(ring) = source.evidence() {
                    self.shared.telemetry.evidence_ring(&self.cfg.id, ring.stats().bytes);
                }
                self.progress.set_message(format!("{} frames, {fps:.0} fps", self.summary.frames));
            }
        }
    }
}

enum SessionEnd {
    Eos,
    Stopped,
}

enum SessionError {
    /// The source failed (retry for live cameras).
    Source(String),
    /// Something not fixed by reconnecting (model failure, event sink gone).
    Fatal(anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_stays_under_the_cap() {
        for attempt in 1..50 {
            let d = backoff(attempt).as_secs_f64();
            let base = (0.5 * 2f64.powi((attempt - 1).min(6) as i32)).min(MAX_BACKOFF_SECS);
            assert!(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9, "attempt {attempt}: {d}");
        }
    }
}
