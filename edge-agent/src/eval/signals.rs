//! Signal-lamp accuracy: the lamp classifier (`pipeline::signal_lamp`) on every decoded
//! frame of a clip, against hand-labelled phases (`samples/*.signals.toml`). Per signal: the
//! share of labelled frames (label not `unknown`) read right frame by frame, and after the
//! tracker's hysteresis (what the incident rules use), plus the wrong colours (a wrong colour
//! is worse than `unknown`: it can raise a false red-light violation).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use roadsight_pipeline::analytics::signals::SignalPhase;
use roadsight_pipeline::signal_lamp::{read_lamp, LampThresholds, LampTracker, SignalSpec};
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct GtFile {
    clip: String,
    frames: u64,
    signals: Vec<GtSignal>,
    // `fps`, and each signal's `layout` and `governs`, are for people.
}

#[derive(Debug, Deserialize)]
struct GtSignal {
    id: String,
    region: [f32; 4],
    phases: Vec<GtPhase>,
}

#[derive(Debug, Deserialize)]
struct GtPhase {
    from_frame: u64,
    to_frame: u64,
    phase: SignalPhase,
}

impl GtSignal {
    fn label(&self, frame: u64) -> Option<SignalPhase> {
        self.phases.iter().find(|p| (p.from_frame..=p.to_frame).contains(&frame)).map(|p| p.phase)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalRow {
    pub signal_id: String,
    /// Frames whose label is a colour.
    pub labelled: u64,
    /// Read right on the frame alone / wrong colour on the frame alone.
    pub frame_correct: u64,
    pub frame_wrong: u64,
    /// After hysteresis.
    pub tracked_correct: u64,
    pub tracked_wrong: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalsReport {
    pub clip: String,
    pub rows: Vec<SignalRow>,
}

/// Scores `gt` on `input` (default: the clip it names, in `../../shared/samples` beside the
/// ground truth's folder, as the sample configs find it).
pub fn evaluate_file(gt: &Path, input: Option<&Path>) -> anyhow::Result<SignalsReport> {
    let text = std::fs::read_to_string(gt).with_context(|| format!("reading {}", gt.display()))?;
    let file: GtFile = toml::from_str(&text).with_context(|| format!("{}: not a signals ground truth", gt.display()))?;
    let clip: PathBuf = match input {
        Some(p) => p.to_path_buf(),
        None => gt.parent().unwrap_or(Path::new(".")).join("../../shared/samples").join(&file.clip),
    };
    let mut source = VideoSource::open(&SourceSpec::new(clip.display().to_string(), Pacing::EveryFrame))?;
    let thresholds = LampThresholds::default();
    let mut trackers: Vec<LampTracker> =
        file.signals.iter().map(|s| LampTracker::new(SignalSpec { id: s.id.clone(), region: s.region })).collect();
    let mut rows: Vec<SignalRow> = file
        .signals
        .iter()
        .map(|s| SignalRow { signal_id: s.id.clone(), labelled: 0, frame_correct: 0, frame_wrong: 0, tracked_correct: 0, tracked_wrong: 0 })
        .collect();
    let mut decoded = 0u64;
    loop {
        let frame = match source.next(Duration::from_secs(30))? {
            SourceEvent::Frame(f) => f,
            SourceEvent::Eos => break,
            SourceEvent::Timeout => anyhow::bail!("{}: no frame decoded for 30 s", clip.display()),
        };
        let (index, t) = (frame.time.index, frame.time.pts);
        decoded += 1;
        let view = frame.view();
        for ((sig, tracker), row) in file.signals.iter().zip(&mut trackers).zip(&mut rows) {
            let reading = read_lamp(&view, sig.region, &thresholds).phase(&thresholds);
            tracker.step(reading, t);
            let Some(label) = sig.label(index).filter(|l| *l != SignalPhase::Unknown) else { continue };
            row.labelled += 1;
            let judge = |p: SignalPhase| (p == label, p != label && p != SignalPhase::Unknown);
            let (right, wrong) = judge(reading);
            row.frame_correct += right as u64;
            row.frame_wrong += wrong as u64;
            let (right, wrong) = judge(tracker.phase());
            row.tracked_correct += right as u64;
            row.tracked_wrong += wrong as u64;
        }
    }
    anyhow::ensure!(
        decoded == file.frames,
        "{}: decoded {decoded} frames, the ground truth labels {} (a different clip?)",
        clip.display(),
        file.frames
    );
    Ok(SignalsReport { clip: file.clip, rows })
}

impl fmt::Display for SignalsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: u64, d: u64| if d == 0 { "–".to_string() } else { format!("{:.1} %", 100.0 * n as f64 / d as f64) };
        writeln!(f, "signals of {}              labelled  per frame (wrong)   tracked (wrong)", self.clip)?;
        for r in &self.rows {
            writeln!(
                f,
                "  {:<24} {:>8}  {:>8} ({:>3})  {:>8} ({:>3})",
                r.signal_id,
                r.labelled,
                pct(r.frame_correct, r.labelled),
                r.frame_wrong,
                pct(r.tracked_correct, r.labelled),
                r.tracked_wrong
            )?;
        }
        Ok(())
    }
}
