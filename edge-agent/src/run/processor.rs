//! Detections → tracks → analytics for one camera: the synchronous, wall-clock-free core that
//! `run`, `bench` and tests share.

use std::time::Duration;

use roadsight_events::ObjectClass;
use roadsight_pipeline::analytics::{Analytics, AnalyticsConfig, Emitted, StreamClock, TrackedObject};
use roadsight_pipeline::detect::Detection;
use roadsight_pipeline::track::{Track, TrackInput, Tracker, TrackerConfig};

/// Model class id → traffic class, for the classes a camera wants.
#[derive(Debug, Clone)]
pub struct ClassMap {
    by_id: Vec<Option<ObjectClass>>,
}

impl ClassMap {
    pub fn new(labels: &[String], wanted: &[ObjectClass]) -> Self {
        ClassMap {
            by_id: labels
                .iter()
                .map(|l| ObjectClass::from_label(l).filter(|c| wanted.is_empty() || wanted.contains(c)))
                .collect(),
        }
    }

    pub fn get(&self, class_id: u16) -> Option<ObjectClass> {
        self.by_id.get(class_id as usize).copied().flatten()
    }
}

/// Boxes of different classes overlapping this much are one object (a model often calls the
/// same vehicle both `car` and `truck`); the tracker is class-agnostic and would otherwise
/// follow it twice.
const CROSS_CLASS_IOU: f32 = 0.7;

/// A box of the same class lying this much inside a higher-scoring one is a part of it (the
/// front half of an articulated bus).
const SAME_CLASS_CONTAINED: f32 = 0.85;

/// Keeps the higher-scoring of two inputs that overlap above `iou` whatever their class, or
/// that are of one class and one lies mostly inside the other.
fn dedupe_across_classes(inputs: &mut Vec<TrackInput>, iou: f32) {
    inputs.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.bbox.x1.total_cmp(&b.bbox.x1)));
    let mut kept: Vec<TrackInput> = Vec::with_capacity(inputs.len());
    for d in inputs.drain(..) {
        let duplicate = kept.iter().any(|k| {
            k.bbox.iou(&d.bbox) > iou || (k.class_id == d.class_id && k.bbox.ios(&d.bbox) > SAME_CLASS_CONTAINED)
        });
        if !duplicate {
            kept.push(d);
        }
    }
    *inputs = kept;
}

pub struct FrameProcessor {
    classes: ClassMap,
    tracker: Tracker,
    analytics_config: AnalyticsConfig,
    analytics: Option<Analytics>,
    clock: StreamClock,
    inputs: Vec<TrackInput>,
    last_time: Duration,
}

impl FrameProcessor {
    pub fn new(classes: ClassMap, tracker: TrackerConfig, analytics: AnalyticsConfig, clock: StreamClock) -> Self {
        FrameProcessor {
            classes,
            tracker: Tracker::new(tracker),
            analytics_config: analytics,
            analytics: None,
            clock,
            inputs: Vec::with_capacity(256),
            last_time: Duration::ZERO,
        }
    }

    fn to_object(&self, t: &Track) -> Option<TrackedObject> {
        Some(TrackedObject {
            track_id: t.id,
            class: self.classes.get(t.class_id)?,
            confidence: t.score,
            bbox: t.bbox,
            last_seen: t.last_seen,
            // A track's first velocity estimate is zero: unknown, not "standing still".
            velocity: (t.hits > 2).then_some(t.velocity),
        })
    }

    /// One frame of `width` × `height` at stream time `t`.
    pub fn process(&mut self, detections: &[Detection], width: u32, height: u32, t: Duration) -> Vec<Emitted> {
        self.last_time = t;
        self.inputs.clear();
        self.inputs.extend(
            detections
                .iter()
                .filter(|d| self.classes.get(d.class_id).is_some())
                .map(|d| TrackInput { bbox: d.bbox, score: d.score, class_id: d.class_id }),
        );
        dedupe_across_classes(&mut self.inputs, CROSS_CLASS_IOU);
        let update = self.tracker.update(&self.inputs, t);
        let active: Vec<TrackedObject> = update.active.iter().filter_map(|tr| self.to_object(tr)).collect();
        let ended: Vec<TrackedObject> = update.removed.iter().filter_map(|tr| self.to_object(tr)).collect();
        let (config, clock) = (&self.analytics_config, self.clock);
        self.analytics
            .get_or_insert_with(|| Analytics::new(config, width, height, clock))
            .update(t, &active, &ended)
    }

    /// End of stream: the last partial counts interval.
    pub fn finish(&mut self) -> Vec<Emitted> {
        let t = self.last_time;
        self.analytics.as_mut().map(|a| a.finish(t)).unwrap_or_default()
    }

    pub fn totals(&self) -> Option<&std::collections::BTreeMap<(String, String, ObjectClass), u64>> {
        self.analytics.as_ref().map(Analytics::totals)
    }
}
