//! A file camera's clip decoded frame by frame (file pacing) through the camera's own detector
//! set-up — day and night model, `max_detect_fps` — exactly as `edge-agent run` detects it.
//! Shared by `edge-agent track` and `edge-agent eval --counts-sweep`.

use std::time::Duration;

use anyhow::Context;
use roadsight_pipeline::analytics::StreamClock;
use roadsight_pipeline::detect::{Detection, Detector};
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};

use crate::config::{AgentConfig, CameraConfig};
use crate::model::load_detector;
use crate::run::detect_cap::DetectCap;

/// A clip delivers frames in milliseconds; this long without one means the source is broken.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// One detected frame.
pub struct DetectedFrame<'a> {
    /// Decoded frame index from 0 (skipped frames included).
    pub index: u64,
    pub pts: Duration,
    pub width: u32,
    pub height: u32,
    pub detections: &'a [Detection],
}

/// The clip of one camera of a config, with its detectors loaded.
pub struct ClipDetector<'c> {
    pub camera: &'c CameraConfig,
    pub clock: StreamClock,
    detector: Detector,
    night_detector: Option<Detector>,
    source: VideoSource,
    cap: DetectCap,
    /// Frames decoded so far (including those the cap skipped).
    pub decoded: u64,
}

impl<'c> ClipDetector<'c> {
    /// Camera `camera_id` (default: the first) of `config`, detecting on the frames `cap`
    /// schedules (`None`: the camera's own `max_detect_fps`; `DetectCap::new(None)`: every
    /// frame, as a sweep needs before it applies its own rates).
    pub fn open(config: &'c AgentConfig, camera_id: Option<&str>, cap: Option<DetectCap>) -> anyhow::Result<Self> {
        let cam = config.camera(camera_id)?;
        let detector = load_detector(&cam.model, &cam.detector, &config.ort_lib).with_context(|| format!("camera {}", cam.id))?;
        let night_detector = match &cam.night_detector {
            Some(options) => Some(
                load_detector(&cam.model, options, &config.ort_lib).with_context(|| format!("camera {}: its night detector", cam.id))?,
            ),
            None => None,
        };
        let source = VideoSource::open(&SourceSpec::new(cam.source.clone(), Pacing::EveryFrame))
            .with_context(|| format!("camera {}", cam.id))?;
        let cap = cap.unwrap_or_else(|| DetectCap::new(cam.min_detect_interval));
        Ok(ClipDetector { camera: cam, clock: cam.file_clock(), detector, night_detector, source, cap, decoded: 0 })
    }

    /// The model's class labels (day model; a night model has the same label set).
    pub fn labels(&self) -> &[String] {
        self.detector.labels()
    }

    /// The next frame due for detection, detected; `None` at the end of the clip.
    pub fn next(&mut self) -> anyhow::Result<Option<DetectedFrame<'_>>> {
        let cam = self.camera;
        let frame = loop {
            let frame = match self.source.next(FRAME_TIMEOUT)? {
                SourceEvent::Frame(f) => f,
                SourceEvent::Eos => return Ok(None),
                SourceEvent::Timeout => anyhow::bail!("{}: no frame decoded for {} s", cam.display_source(), FRAME_TIMEOUT.as_secs()),
            };
            self.decoded += 1;
            if !self.cap.skips(frame.time.pts) {
                break frame;
            }
        };
        let t = frame.time.pts;
        let night = cam.rules.night.as_ref().is_some_and(|n| n.is_night(self.clock.at(t)));
        let active = match self.night_detector.as_mut() {
            Some(at_night) if night => at_night,
            _ => &mut self.detector,
        };
        let view = frame.view();
        let (width, height) = (view.width, view.height);
        let detections = active.detect(&view).with_context(|| format!("camera {}: model {}", cam.id, cam.model))?;
        Ok(Some(DetectedFrame { index: frame.time.index, pts: t, width, height, detections }))
    }
}
