//! `edge-agent eval --counts-sweep`: one camera's line counts at several detection rates
//! against its hand counts, in one command.
//!
//! The clip is decoded and detected once, every frame, with the camera's own detector set-up;
//! each rate then replays those detections through a fresh [`FrameProcessor`] with the frames
//! that rate's `max_detect_fps` schedule ([`DetectCap`]) would have detected — the frames
//! `edge-agent run` with that cap detects, with the same stream timestamps — so the counts are
//! the ones `run` would produce at that rate, and the model runs once, not once per rate.
//! `--detections-cache` keeps the detections on disk between runs (keyed by the camera's
//! source and detector set-up), so tuning the tracker re-runs in seconds.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use roadsight_events::EventBody;
use roadsight_pipeline::analytics::StreamClock;
use roadsight_pipeline::detect::Detection;
use roadsight_pipeline::geometry::BBox;
use serde::{Deserialize, Serialize};

use super::counts::{read_hand_counts, CountsReport, CrossingTally};
use crate::clip::ClipDetector;
use crate::config::{AgentConfig, CameraConfig};
use crate::run::detect_cap::DetectCap;
use crate::run::processor::FrameProcessor;

/// A detection rate of a sweep: every decoded frame, or a `max_detect_fps`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Rate {
    AllFrames,
    Fps(f64),
}

impl Rate {
    /// `all` or a positive number of detected frames per second.
    pub fn parse(s: &str) -> Result<Rate, String> {
        if s.trim() == "all" {
            return Ok(Rate::AllFrames);
        }
        match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && (0.1..=240.0).contains(&f) => Ok(Rate::Fps(f)),
            _ => Err(format!("'{s}' is neither `all` nor a detection rate in frames per second (0.1–240)")),
        }
    }

    fn cap(self) -> DetectCap {
        DetectCap::new(match self {
            Rate::AllFrames => None,
            Rate::Fps(f) => Some(Duration::from_secs_f64(1.0 / f)),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::AllFrames => write!(f, "all frames"),
            Rate::Fps(x) => write!(f, "{x} fps"),
        }
    }
}

/// One decoded frame and what the detector found on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FrameDetections {
    pts_us: u64,
    width: u32,
    height: u32,
    /// `[x1, y1, x2, y2, score, class_id]` per detection.
    boxes: Vec<[f32; 6]>,
}

impl FrameDetections {
    fn detections(&self) -> Vec<Detection> {
        self.boxes
            .iter()
            .map(|b| Detection { bbox: BBox { x1: b[0], y1: b[1], x2: b[2], y2: b[3] }, score: b[4], class_id: b[5] as u16 })
            .collect()
    }
}

/// A clip's detections on every frame, with what they depend on.
#[derive(Debug, Serialize, Deserialize)]
struct ClipDetections {
    key: String,
    labels: Vec<String>,
    frames: Vec<FrameDetections>,
}

/// What the detections of `cam` depend on: its source, model, detector and night set-up.
fn cache_key(cam: &CameraConfig) -> String {
    format!(
        "source={} model={} detector={:?} night_detector={:?} night={:?} origin={:?}",
        cam.source,
        cam.model,
        cam.detector,
        cam.night_detector,
        cam.rules.night.as_ref().map(|n| n.hours),
        cam.clock_origin
    )
}

fn detect_clip(config: &AgentConfig, camera: Option<&str>) -> anyhow::Result<ClipDetections> {
    let mut clip = ClipDetector::open(config, camera, Some(DetectCap::new(None)))?;
    let key = cache_key(clip.camera);
    let labels = clip.labels().to_vec();
    let mut frames = Vec::new();
    while let Some(f) = clip.next()? {
        let boxes = f.detections.iter().map(|d| [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2, d.score, d.class_id as f32]).collect();
        frames.push(FrameDetections { pts_us: f.pts.as_micros() as u64, width: f.width, height: f.height, boxes });
    }
    anyhow::ensure!(!frames.is_empty(), "camera {}: {}: no video frame decoded", clip.camera.id, clip.camera.display_source());
    Ok(ClipDetections { key, labels, frames })
}

/// The detections from `cache` when it was made for this camera set-up, else detected now
/// (and written to `cache` when given).
fn clip_detections(config: &AgentConfig, camera: Option<&str>, cache: Option<&Path>) -> anyhow::Result<ClipDetections> {
    let key = cache_key(config.camera(camera)?);
    if let Some(path) = cache.filter(|p| p.exists()) {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        match serde_json::from_str::<ClipDetections>(&text) {
            Ok(cached) if cached.key == key => return Ok(cached),
            Ok(_) => tracing::info!("{}: made for another camera set-up; detecting again", path.display()),
            Err(e) => tracing::warn!("{}: not a detections cache ({e}); detecting again", path.display()),
        }
    }
    let detected = detect_clip(config, camera)?;
    if let Some(path) = cache {
        let json = serde_json::to_string(&detected).context("serialising detections")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(detected)
}

/// One rate's counts.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RateCounts {
    pub rate: Rate,
    /// Frames the rate's schedule detected.
    pub detected_frames: usize,
    pub counts: CountsReport,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SweepReport {
    pub camera: String,
    pub decoded_frames: usize,
    /// Stream time of the clip, seconds.
    pub duration_secs: f64,
    pub rates: Vec<RateCounts>,
}

/// Replays `clip` at `rate` through the camera's processor; its crossings.
fn replay(cam: &CameraConfig, clip: &ClipDetections, clock: StreamClock, rate: Rate) -> (usize, CrossingTally) {
    let mut processor = FrameProcessor::for_camera(cam, &clip.labels, clock);
    let mut cap = rate.cap();
    let mut tally = CrossingTally::default();
    let mut detected = 0;
    let mut count = |emitted: Vec<roadsight_pipeline::analytics::Emitted>| {
        for e in emitted {
            if let EventBody::LineCrossing(c) = &e.body {
                tally.add(c);
            }
        }
    };
    for f in &clip.frames {
        let t = Duration::from_micros(f.pts_us);
        if cap.skips(t) {
            continue;
        }
        detected += 1;
        count(processor.process(&f.detections(), f.width, f.height, t));
    }
    count(processor.finish());
    (detected, tally)
}

/// The sweep of camera `camera` (default: the first) of `config` over `rates`.
pub fn sweep(
    config: &AgentConfig,
    camera: Option<&str>,
    hand_counts: &Path,
    rates: &[Rate],
    cache: Option<&Path>,
) -> anyhow::Result<SweepReport> {
    let hand = read_hand_counts(hand_counts)?;
    let cam = config.camera(camera)?;
    let clip = clip_detections(config, camera, cache)?;
    let clock = cam.file_clock();
    let rates = rates
        .iter()
        .map(|&rate| {
            let (detected_frames, tally) = replay(cam, &clip, clock, rate);
            RateCounts { rate, detected_frames, counts: tally.report(&hand, Some(&cam.id)) }
        })
        .collect();
    let duration_secs = clip.frames.last().map_or(0.0, |f| f.pts_us as f64 / 1e6);
    Ok(SweepReport { camera: cam.id.clone(), decoded_frames: clip.frames.len(), duration_secs, rates })
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "counts sweep, camera {} ({} frames, {:.1} s; each cell: counted (error vs hand)):",
            self.camera, self.decoded_frames, self.duration_secs
        )?;
        let Some(first) = self.rates.first() else { return Ok(()) };
        write!(f, "{:<20} {:<18} {:<12} {:>5}", "line", "direction", "class", "hand")?;
        for r in &self.rates {
            write!(f, " {:>14}", r.rate.to_string())?;
        }
        writeln!(f)?;
        let cell = |counted: u64, hand: u64| {
            if hand == 0 {
                format!("{counted}")
            } else {
                format!("{counted} ({:+.0}%)", 100.0 * (counted as f64 - hand as f64) / hand as f64)
            }
        };
        for (i, row) in first.counts.rows.iter().enumerate() {
            write!(f, "{:<20} {:<18} {:<12} {:>5}", row.line_id, row.direction, row.class, row.hand_count)?;
            for r in &self.rates {
                write!(f, " {:>14}", cell(r.counts.rows[i].counted, row.hand_count))?;
            }
            writeln!(f)?;
        }
        write!(f, "{:<20} {:<18} {:<12} {:>5}", "total", "", "", first.counts.total.hand_count)?;
        for r in &self.rates {
            write!(f, " {:>14}", cell(r.counts.total.counted, r.counts.total.hand_count))?;
        }
        writeln!(f)?;
        write!(f, "{:<57}", "detected frames")?;
        for r in &self.rates {
            write!(f, " {:>14}", r.detected_frames)?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_bad_ones_are_named() {
        assert_eq!(Rate::parse("all"), Ok(Rate::AllFrames));
        assert_eq!(Rate::parse("12.5"), Ok(Rate::Fps(12.5)));
        for bad in ["0", "-3", "fast", "NaN", "1e9"] {
            let e = Rate::parse(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }
}
