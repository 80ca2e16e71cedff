//! `edge-agent track`: one camera's clip through its detector and tracker, as `edge-agent run`
//! processes it, writing every confirmed track matched in each frame as a CSV row
//! `frame,track_id,x,y,w,h,class,score` — MOT-style, so `edge-agent eval --mot-pred` reads it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::clip::ClipDetector;
use crate::config::AgentConfig;
use crate::run::detect_cap::DetectCap;
use crate::run::processor::FrameProcessor;

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
/// `max_detect_fps` overrides the camera's.
pub fn track(
    config: &AgentConfig,
    camera_id: Option<&str>,
    out: &Path,
    max_frames: Option<u64>,
    max_detect_fps: Option<f64>,
) -> anyhow::Result<TrackSummary> {
    let cap = max_detect_fps.map(|f| DetectCap::new(Some(std::time::Duration::from_secs_f64(1.0 / f))));
    let mut clip = ClipDetector::open(config, camera_id, cap)?;
    let cam = clip.camera;
    // Built exactly as `run` builds it: the tracks are the ones `run` counts with.
    let mut processor = FrameProcessor::for_camera(cam, clip.labels(), clip.clock);
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut csv = std::io::BufWriter::new(file);
    writeln!(csv, "frame,track_id,x,y,w,h,class,score")?;
    let mut summary = TrackSummary { camera: cam.id.clone(), frames: 0, rows: 0, tracks: 0 };
    let mut ids = std::collections::BTreeSet::new();
    while max_frames.is_none_or(|m| clip.decoded < m) {
        let Some(frame) = clip.next()? else { break };
        processor.process(frame.detections, frame.width, frame.height, frame.pts);
        let index = frame.index;
        for o in processor.active_tracks() {
            let (w, h) = (o.bbox.width(), o.bbox.height());
            writeln!(
                csv,
                "{},{},{:.2},{:.2},{:.2},{:.2},{},{:.3}",
                index, o.track_id, o.bbox.x1, o.bbox.y1, w, h, o.class, o.confidence
            )?;
            ids.insert(o.track_id);
            summary.rows += 1;
        }
    }
    summary.frames = clip.decoded;
    csv.flush().with_context(|| format!("writing {}", out.display()))?;
    summary.tracks = ids.len();
    Ok(summary)
}
