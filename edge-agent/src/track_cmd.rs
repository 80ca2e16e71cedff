//! `edge-agent track`: one camera's clip through its detector and tracker, as `edge-agent run`
//! processes it, writing every confirmed track matched in each frame as a CSV row
//! `frame,track_id,x,y,w,h,class,score` — MOT-style, so `edge-agent eval --mot-pred` reads it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use roadsight_pipeline::analytics::StreamClock;
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};

use crate::config::AgentConfig;
use crate::model::load_detector;
use crate::run::detect_cap::DetectCap;
use crate::run::processor::{ClassMap, FrameProcessor};

/// A clip delivers frames in milliseconds; this long without one means the source is broken.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub struct TrackSummary {
    pub camera: String,
    /// Frames decoded (including those `max_detect_fps` skipped).
    pub frames: u64,
    /// CSV rows written.
    pub rows: u64,
    /// Distinct track ids written.
    pub tracks: usize,
}

/// Tracks camera `camera_id` (default: the first) of `config` over its source, every frame
/// decoded in order (file pacing), for at most `max_frames` frames; writes the CSV to `out`.
pub fn track(config: &AgentConfig, camera_id: Option<&str>, out: &Path, max_frames: Option<u64>) -> anyhow::Result<TrackSummary> {
    let cam = config.camera(camera_id)?;
    let mut detector = load_detector(&cam.model, &cam.detector, &config.ort_lib).with_context(|| format!("camera {}", cam.id))?;
    let mut night_detector = match &cam.night_detector {
        Some(options) => Some(
            load_detector(&cam.model, options, &config.ort_lib).with_context(|| format!("camera {}: its night detector", cam.id))?,
        ),
        None => None,
    };
    let origin = match cam.clock_origin {
        Some(origin) => origin,
        None => crate::config::DEFAULT_FILE_EPOCH.parse().context("default file epoch")?,
    };
    // The camera's classes, tracker, analytics and detection rules, exactly as `run` builds
    // them: the tracks are the ones `run` counts with.
    let classes = ClassMap::new(detector.labels(), &cam.classes);
    let mut processor = FrameProcessor::new(classes, cam.tracker.clone(), cam.analytics.clone(), StreamClock { origin })
        .with_rules(cam.rules.clone());
    let mut source = VideoSource::open(&SourceSpec::new(cam.source.clone(), Pacing::EveryFrame))?;
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut csv = std::io::BufWriter::new(file);
    writeln!(csv, "frame,track_id,x,y,w,h,class,score")?;
    let mut summary = TrackSummary { camera: cam.id.clone(), frames: 0, rows: 0, tracks: 0 };
    let mut ids = std::collections::BTreeSet::new();
    let mut detect_cap = DetectCap::new(cam.min_detect_interval);
    while max_frames.is_none_or(|m| summary.frames < m) {
        let frame = match source.next(FRAME_TIMEOUT)? {
            SourceEvent::Frame(f) => f,
            SourceEvent::Eos => break,
            SourceEvent::Timeout => anyhow::bail!("{}: no frame decoded for {} s", cam.display_source(), FRAME_TIMEOUT.as_secs()),
        };
        summary.frames += 1;
        let t = frame.time.pts;
        if detect_cap.skips(t) {
            continue;
        }
        let view = frame.view();
        let active = match night_detector.as_mut() {
            Some(at_night) if processor.is_night(t) => at_night,
            _ => &mut detector,
        };
        let detections = active.detect(&view).with_context(|| format!("camera {}: model {}", cam.id, cam.model))?;
        processor.process(detections, view.width, view.height, t);
        for o in processor.active_tracks() {
            let (w, h) = (o.bbox.width(), o.bbox.height());
            writeln!(
                csv,
                "{},{},{:.2},{:.2},{:.2},{:.2},{},{:.3}",
                frame.time.index, o.track_id, o.bbox.x1, o.bbox.y1, w, h, o.class, o.confidence
            )?;
            ids.insert(o.track_id);
            summary.rows += 1;
        }
    }
    csv.flush().with_context(|| format!("writing {}", out.display()))?;
    summary.tracks = ids.len();
    Ok(summary)
}
