//! `edge-agent eval`: accuracy against ground truth, in up to three independent parts.
//!
//! - [`detection`]: AP50/AP/precision/recall of a detection CSV against `frame,x,y,w,h,label`.
//! - [`mot`]: MOTA/MOTP/ID switches and IDF1 of a track CSV against MOT-style
//!   `frame,track_id,x,y,w,h`.
//! - [`counts`]: per-line counts of `line_crossing` events against a hand-count CSV.
//! - [`incidents`]: precision/recall per incident kind against hand-made incident ground truth.
//! - [`signals`]: the signal-lamp classifier against hand-labelled phases, frame by frame.

mod assign;
pub mod counts;
pub mod detection;
pub mod incidents;
pub mod mot;
pub mod signals;
pub mod sweep;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use anyhow::Context;
use roadsight_events::{Event, EventBody};
use serde::{Deserialize, Serialize};

pub use detection::{evaluate_files, ClassReport, DetectionReport, EvalOptions};

use crate::cli::EvalCmd;

/// Everything one `edge-agent eval` computed (the `--json` file); absent parts were not asked for.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mot: Option<mot::MotReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<counts::CountsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts_sweep: Option<sweep::SweepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incidents: Option<incidents::IncidentsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signals: Option<signals::SignalsReport>,
}

/// Rows of a CSV with a header, each error naming the file and row.
pub(crate) fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut rdr = csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    rdr.deserialize()
        .enumerate()
        .map(|(i, r)| r.with_context(|| format!("{}: row {}", path.display(), i + 2)))
        .collect()
}

/// The events of a JSON-lines file that `wanted` keeps, each once (a re-sent event has the
/// same id), of camera `camera` — which is needed when the kept events name several cameras.
pub(crate) fn read_events(path: &Path, camera: Option<&str>, wanted: impl Fn(&EventBody) -> bool) -> anyhow::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut seen = HashSet::new();
    let mut cameras = BTreeSet::new();
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).with_context(|| format!("{}: line {}: not a v1 event", path.display(), i + 1))?;
        if !wanted(&event.body) || camera.is_some_and(|id| id != event.camera_id) || !seen.insert(event.event_id) {
            continue;
        }
        cameras.insert(event.camera_id.clone());
        events.push(event);
    }
    if camera.is_none() && cameras.len() > 1 {
        anyhow::bail!(
            "{}: events of {} cameras ({}): choose one with --camera",
            path.display(),
            cameras.len(),
            cameras.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(events)
}

/// Runs the parts the command line asks for (clap ensures their files come in pairs).
/// `ort_lib` overrides the config's ONNX Runtime for `--counts-sweep`.
pub fn evaluate(cmd: &EvalCmd, ort_lib: Option<&Path>) -> anyhow::Result<EvalReport> {
    let detection = match (&cmd.gt, &cmd.pred) {
        (Some(gt), Some(pred)) => {
            let opts = EvalOptions {
                merge: cmd.merge.clone(),
                min_height: cmd.min_height,
                score_threshold: cmd.score,
                merged_nms_iou: Some(cmd.merged_nms_iou),
            };
            Some(evaluate_files(gt, pred, &opts)?)
        }
        _ => None,
    };
    let mot = match (&cmd.mot_gt, &cmd.mot_pred) {
        (Some(gt), Some(pred)) => {
            let scope = mot::MotScope { frames: cmd.mot_frames, region: cmd.mot_region, pred_frames_only: cmd.mot_pred_frames_only };
            Some(mot::evaluate_files(gt, pred, cmd.iou, &scope)?)
        }
        _ => None,
    };
    let counts = match (&cmd.counts_gt, &cmd.events) {
        (Some(hand), Some(events)) => Some(counts::evaluate_files(hand, events, cmd.camera.as_deref())?),
        (Some(_), None) if !cmd.counts_sweep => {
            anyhow::bail!("--counts-gt needs the events to score (--events FILE) or a sweep (--counts-sweep --config FILE)")
        }
        _ => None,
    };
    let counts_sweep = match (&cmd.counts_gt, &cmd.config) {
        (Some(hand), Some(config_path)) if cmd.counts_sweep => {
            let mut config = crate::config::load(config_path)?;
            if let Some(lib) = ort_lib {
                config.ort_lib = lib.to_path_buf();
            }
            Some(sweep::sweep(&config, cmd.camera.as_deref(), hand, &cmd.rates, cmd.detections_cache.as_deref())?)
        }
        _ => None,
    };
    let incidents = match (&cmd.incidents_gt, &cmd.events, cmd.clip_size, cmd.clip_fps) {
        (Some(gt), Some(events), Some(size), Some(fps)) => Some(incidents::evaluate_files(gt, events, cmd.camera.as_deref(), size, fps)?),
        _ => None,
    };
    let signals = cmd.signals_gt.as_deref().map(|gt| signals::evaluate_file(gt, cmd.signals_clip.as_deref())).transpose()?;
    Ok(EvalReport { detection, mot, counts, counts_sweep, incidents, signals })
}

/// `edge-agent eval`: evaluate, print each part, write the JSON when asked.
pub fn command(cmd: &EvalCmd, ort_lib: Option<&Path>) -> anyhow::Result<()> {
    let report = evaluate(cmd, ort_lib)?;
    let parts: Vec<String> = [
        report.detection.as_ref().map(ToString::to_string),
        report.mot.as_ref().map(ToString::to_string),
        report.counts.as_ref().map(ToString::to_string),
        report.counts_sweep.as_ref().map(ToString::to_string),
        report.incidents.as_ref().map(ToString::to_string),
        report.signals.as_ref().map(ToString::to_string),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!("{}", parts.join("\n\n").trim_end());
    if let Some(p) = &cmd.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
