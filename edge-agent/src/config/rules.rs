//! What a camera does to detections between the detector and the tracker (per-class
//! thresholds, the night profile, rider–bike fusion): validated by `config`, applied by
//! `run::processor::FrameProcessor`.

use chrono::{DateTime, Utc};
use roadsight_pipeline::analytics::LocalHours;
use roadsight_events::ObjectClass;
use roadsight_pipeline::analytics::fusion::TwoWheelerConfig;

/// Score thresholds per class, applied to detections before fusion and tracking. The
/// detector itself runs at the lowest threshold any class uses (set by the config), so a class
/// can go below the camera's `score_threshold`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClassThresholds {
    /// Threshold of the classes not listed (`None`: whatever the detector passes).
    pub default: Option<f32>,
    pub per_class: Vec<(ObjectClass, f32)>,
}

impl ClassThresholds {
    pub fn passes(&self, class: ObjectClass, score: f32) -> bool {
        let threshold = self.per_class.iter().find(|(c, _)| *c == class).map(|(_, t)| *t).or(self.default);
        threshold.is_none_or(|t| score >= t)
    }

    /// The lowest threshold used (what the detector must run at).
    pub fn floor(&self) -> Option<f32> {
        self.per_class.iter().map(|(_, t)| *t).chain(self.default).reduce(f32::min)
    }
}

/// Night thresholds and the local hours they apply in. The hour is the event time (UTC from
/// stream time) shifted by the camera's UTC offset, never the wall clock, so a replayed clip
/// switches at the same frame every time.
#[derive(Debug, Clone, PartialEq)]
pub struct NightProfile {
    /// The local hours of the night.
    pub hours: LocalHours,
    pub thresholds: ClassThresholds,
}

impl NightProfile {
    pub fn is_night(&self, at: DateTime<Utc>) -> bool {
        self.hours.contains(at)
    }
}

/// What a camera does to detections between the detector and the tracker.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DetectionRules {
    pub thresholds: ClassThresholds,
    pub night: Option<NightProfile>,
    /// Rider–bike fusion and the probable-two-wheeler rule (`None`: off).
    pub fusion: Option<TwoWheelerConfig>,
}
