//! Detections → tracks → analytics for one camera: the synchronous, wall-clock-free core that
//! `run`, `bench` and tests share.

use std::collections::HashMap;
use std::time::Duration;

use roadsight_events::{EventBody, IncidentKind, ObjectClass, SignalPhase, SignalPhaseChange, SignalSource};
use roadsight_pipeline::analytics::fusion::{fuse_riders, ClassedBox, TwoWheelerRule};
use roadsight_pipeline::analytics::{Analytics, AnalyticsConfig, Emitted, StreamClock, TrackedObject};
use roadsight_pipeline::detect::Detection;
use roadsight_pipeline::frame::FrameView;
use roadsight_pipeline::geometry::BBox;
use roadsight_pipeline::signal_lamp::LampTracker;

use super::signals::SignalBoard;
use roadsight_pipeline::track::{Track, TrackInput, Tracker, TrackerConfig};

use crate::config::rules::{ClassThresholds, DetectionRules};
use crate::config::CameraConfig;

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
    rules: DetectionRules,
    /// Built at the first frame (needs its size), when fusion is on.
    two_wheelers: Option<TwoWheelerRule>,
    /// This frame's fused two-wheelers: box → riders (a track's box is its matched input's).
    frame_riders: Vec<(BBox, u8)>,
    /// Most riders seen on each live track (a missed rider only lowers one frame's count).
    riders: HashMap<u64, u8>,
    /// Confirmed tracks matched in the last processed frame (what analytics saw).
    active: Vec<TrackedObject>,
    /// The camera's signal lamps, read from each detected frame.
    lamps: Vec<LampTracker>,
    /// Signals whose phase the controller publishes, with the phase last taken.
    controller: Vec<(String, Option<SignalPhase>)>,
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
            rules: DetectionRules::default(),
            two_wheelers: None,
            frame_riders: Vec::new(),
            riders: HashMap::new(),
            active: Vec::new(),
            lamps: Vec::new(),
            controller: Vec::new(),
        }
    }

    /// Camera `cam`'s processor, as `run`, `track` and the counts sweep build it: its
    /// classes (from the model's `labels`), tracker, analytics and detection rules.
    pub fn for_camera(cam: &CameraConfig, labels: &[String], clock: StreamClock) -> Self {
        let mut p = FrameProcessor::new(ClassMap::new(labels, &cam.classes), cam.tracker.clone(), cam.analytics.clone(), clock)
            .with_rules(cam.rules.clone());
        p.lamps = cam.signals.iter().cloned().map(LampTracker::new).collect();
        p.controller = cam.controller_signals.iter().map(|id| (id.clone(), None)).collect();
        p
    }

    /// Takes the controller's phase of each controller signal at stream time `t`: a change
    /// goes to the rules and is reported as a `signal_phase` event (source `controller`).
    pub fn observe_controller(&mut self, board: &SignalBoard, width: u32, height: u32, t: Duration) -> Vec<Emitted> {
        let mut changes = Vec::new();
        for (id, last) in &mut self.controller {
            let now = board.get(id);
            if now.is_some() && now != *last {
                *last = now;
                changes.extend(now.map(|p| (id.clone(), p)));
            }
        }
        self.signal_changes(changes, SignalSource::Controller, width, height, t)
    }

    /// Reads the signal lamps on `frame` at stream time `t`: the rules learn each phase
    /// change, and it is reported as a `signal_phase` event.
    pub fn observe_signals(&mut self, frame: &FrameView<'_>, t: Duration) -> Vec<Emitted> {
        let changes: Vec<(String, SignalPhase)> =
            self.lamps.iter_mut().filter_map(|l| l.observe(frame, t).map(|p| (l.spec.id.clone(), p))).collect();
        self.signal_changes(changes, SignalSource::Camera, frame.width, frame.height, t)
    }

    /// Phase changes to the rules, and as `signal_phase` events.
    fn signal_changes(&mut self, changes: Vec<(String, SignalPhase)>, source: SignalSource, width: u32, height: u32, t: Duration) -> Vec<Emitted> {
        if changes.is_empty() {
            return Vec::new();
        }
        let analytics = self.analytics_for(width, height);
        changes
            .into_iter()
            .map(|(signal_id, phase)| {
                analytics.set_signal(&signal_id, phase, t);
                Emitted { pts: t, body: EventBody::SignalPhase(SignalPhaseChange { signal_id, phase, source }), snapshot: None }
            })
            .collect()
    }

    /// Incident starts folded by the flood control so far, per kind.
    pub fn incidents_folded(&self) -> impl Iterator<Item = (IncidentKind, u64)> + '_ {
        self.analytics.iter().flat_map(Analytics::incidents_folded)
    }

    /// The analytics for `width` × `height` frames, built (and the tracker given the scene)
    /// at the first frame.
    fn analytics_for(&mut self, width: u32, height: u32) -> &mut Analytics {
        if self.analytics.is_none() {
            self.tracker.set_scene(width, height, self.analytics_config.motion_regions(width, height));
        }
        let (config, clock) = (&self.analytics_config, self.clock);
        self.analytics.get_or_insert_with(|| Analytics::new(config, width, height, clock))
    }

    /// Per-class thresholds, night profile and rider–bike fusion (default: none of them).
    pub fn with_rules(mut self, rules: DetectionRules) -> Self {
        self.rules = rules;
        self
    }

    /// Riders of track `id` while it lives (fused two-wheelers only).
    pub fn riders(&self, id: u64) -> Option<u8> {
        self.riders.get(&id).copied()
    }

    fn to_object(&self, t: &Track, class: ObjectClass) -> TrackedObject {
        TrackedObject {
            track_id: t.id,
            class,
            confidence: t.score,
            bbox: t.bbox,
            last_seen: t.last_seen,
            // A track's first velocity estimate is zero: unknown, not "standing still".
            velocity: (t.hits > 2).then_some(t.velocity),
            riders: self.riders.get(&t.id).copied(),
            first_seen: Some((t.first_seen, t.first_bbox)),
        }
    }

    /// Whether the night profile is in force at stream time `t` (never without one).
    pub fn is_night(&self, t: Duration) -> bool {
        self.rules.night.as_ref().is_some_and(|night| night.is_night(self.clock.at(t)))
    }

    /// The thresholds in force at stream time `t` (night or day).
    fn thresholds_at(&self, t: Duration) -> &ClassThresholds {
        match &self.rules.night {
            Some(night) if night.is_night(self.clock.at(t)) => &night.thresholds,
            _ => &self.rules.thresholds,
        }
    }

    /// Class map and thresholds, then (when on) rider–bike fusion, into `self.inputs`.
    fn prepare_inputs(&mut self, detections: &[Detection]) {
        let thresholds = self.thresholds_at(self.last_time);
        let kept: Vec<(ClassedBox, u16)> = detections
            .iter()
            .filter_map(|d| {
                let class = self.classes.get(d.class_id)?;
                thresholds.passes(class, d.score).then_some((ClassedBox { bbox: d.bbox, score: d.score, class }, d.class_id))
            })
            .collect();
        self.inputs.clear();
        self.frame_riders.clear();
        if self.rules.fusion.is_none() {
            self.inputs.extend(kept.iter().map(|(b, id)| TrackInput { bbox: b.bbox, score: b.score, class_id: *id }));
            return;
        }
        let boxes: Vec<ClassedBox> = kept.iter().map(|(b, _)| *b).collect();
        for f in fuse_riders(&boxes) {
            self.inputs.push(TrackInput { bbox: f.bbox, score: f.score, class_id: kept[f.index].1 });
            if f.riders > 0 {
                self.frame_riders.push((f.bbox, f.riders));
            }
        }
    }

    /// Reported class of a track: the model's, or `motorcycle` for a probable two-wheeler.
    fn class_of(&mut self, tr: &Track, width: u32, height: u32, t: Duration) -> Option<ObjectClass> {
        let class = self.classes.get(tr.class_id)?;
        let Some(config) = &self.rules.fusion else { return Some(class) };
        let rule = self.two_wheelers.get_or_insert_with(|| TwoWheelerRule::new(config, width, height));
        Some(rule.observe(tr.id, class, &tr.bbox, t))
    }

    /// One frame of `width` × `height` at stream time `t`.
    pub fn process(&mut self, detections: &[Detection], width: u32, height: u32, t: Duration) -> Vec<Emitted> {
        self.last_time = t;
        self.analytics_for(width, height);
        self.prepare_inputs(detections);
        dedupe_across_classes(&mut self.inputs, CROSS_CLASS_IOU);
        let update = self.tracker.update(&self.inputs, t);
        self.active.clear();
        for tr in &update.active {
            let Some(class) = self.class_of(tr, width, height, t) else { continue };
            if let Some((_, n)) = self.frame_riders.iter().find(|(b, _)| *b == tr.bbox) {
                let most = self.riders.entry(tr.id).or_default();
                *most = (*most).max(*n);
            }
            let object = self.to_object(tr, class);
            self.active.push(object);
        }
        let mut ended = Vec::with_capacity(update.removed.len());
        for tr in &update.removed {
            let Some(class) = self.classes.get(tr.class_id) else { continue };
            let class = self.two_wheelers.as_ref().map_or(class, |r| r.reported(tr.id, class));
            if let Some(r) = &mut self.two_wheelers {
                r.forget(tr.id);
            }
            ended.push(self.to_object(tr, class));
            self.riders.remove(&tr.id);
        }
        self.analytics.as_mut().expect("built at the start of process").update(t, &self.active, &ended)
    }

    /// End of stream: the last partial counts interval.
    pub fn finish(&mut self) -> Vec<Emitted> {
        let t = self.last_time;
        self.analytics.as_mut().map(|a| a.finish(t)).unwrap_or_default()
    }

    /// Confirmed tracks matched in the last processed frame, with their reported class
    /// (`edge-agent track` exports them).
    pub fn active_tracks(&self) -> &[TrackedObject] {
        &self.active
    }

    pub fn totals(&self) -> Option<&std::collections::BTreeMap<(String, String, ObjectClass), u64>> {
        self.analytics.as_ref().map(Analytics::totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rules::NightProfile;
    use chrono::{DateTime, NaiveTime};
    use roadsight_pipeline::analytics::LocalHours;
    use roadsight_pipeline::analytics::fusion::{TwoWheelerConfig, ZoneKind};
    use roadsight_pipeline::analytics::{Anchor, LineSpec};

    /// COCO order: 0 person, 1 bicycle, 2 car, 3 motorcycle.
    fn class_map() -> ClassMap {
        let labels: Vec<String> = ["person", "bicycle", "car", "motorcycle"].iter().map(|s| s.to_string()).collect();
        ClassMap::new(&labels, &[])
    }

    /// A 1000 × 1000 frame with one horizontal line across the middle.
    fn processor(rules: DetectionRules) -> FrameProcessor {
        let line = LineSpec {
            id: "l".into(),
            from: (0.0, 0.5),
            to: (1.0, 0.5),
            forward: "down".into(),
            backward: "up".into(),
            classes: vec![],
            anchor: Anchor::BottomCenter,
            hysteresis_px: 4.0,
        };
        let analytics = AnalyticsConfig { lines: vec![line], counts_interval: None, ..Default::default() };
        let clock = StreamClock { origin: DateTime::from_timestamp(0, 0).expect("epoch") };
        FrameProcessor::new(class_map(), TrackerConfig::default(), analytics, clock).with_rules(rules)
    }

    fn det(class_id: u16, x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection { bbox: BBox::new(x1, y1, x2, y2), score, class_id }
    }

    /// Feeds 3 s at 10 frames/s of `frame(dy)` (boxes shifted down by `dy` px) moving down at
    /// 200 px/s from y ≈ 300 through the line at y = 500; returns the line totals.
    fn drive(p: &mut FrameProcessor, frame: impl Fn(f32) -> Vec<Detection>) -> Vec<(String, ObjectClass, u64)> {
        for f in 0..30u64 {
            let t = Duration::from_millis(f * 100);
            p.process(&frame(20.0 * f as f32), 1000, 1000, t);
        }
        p.finish();
        p.totals().expect("analytics ran").iter().map(|((_, dir, c), n)| (dir.clone(), *c, *n)).collect()
    }

    /// A side-view bike (wheels at y = 300 + dy) with `riders` persons on it.
    fn bike_with_riders(riders: usize, dy: f32) -> Vec<Detection> {
        let mut out = vec![det(3, 400.0, 240.0 + dy, 500.0, 300.0 + dy, 0.7)];
        let seats = [(425.0, 170.0, 470.0, 285.0), (410.0, 178.0, 452.0, 288.0)];
        out.extend(seats.iter().take(riders).map(|&(x1, y1, x2, y2)| det(0, x1, y1 + dy, x2, y2 + dy, 0.8)));
        out
    }

    fn fusion_on() -> DetectionRules {
        DetectionRules { fusion: Some(TwoWheelerConfig::default()), ..Default::default() }
    }

    #[test]
    fn fused_bike_and_rider_cross_a_line_as_one_motorcycle() {
        let totals = drive(&mut processor(fusion_on()), |dy| bike_with_riders(1, dy));
        assert_eq!(totals, vec![("down".to_owned(), ObjectClass::Motorcycle, 1)]);
    }

    #[test]
    fn without_fusion_the_rider_is_counted_too() {
        // The same boxes with fusion off: the failure fusion exists to fix.
        let totals = drive(&mut processor(DetectionRules::default()), |dy| bike_with_riders(1, dy));
        assert_eq!(
            totals,
            vec![("down".to_owned(), ObjectClass::Person, 1), ("down".to_owned(), ObjectClass::Motorcycle, 1)]
        );
    }

    #[test]
    fn two_riders_are_one_motorcycle_and_the_track_knows_its_riders() {
        let mut p = processor(fusion_on());
        for f in 0..10u64 {
            let events = p.process(&bike_with_riders(2, 10.0 * f as f32), 1000, 1000, Duration::from_millis(f * 100));
            assert!(events.is_empty());
        }
        let ids: Vec<u64> = p.riders.keys().copied().collect();
        assert_eq!(ids.len(), 1, "one fused track: {ids:?}");
        assert_eq!(p.riders(ids[0]), Some(2));
        // Events carry it: the object of every event about this track says 2 riders.
        let reported: Vec<Option<u8>> = p.active_tracks().iter().map(|o| o.to_ref().riders).collect();
        assert_eq!(reported, vec![Some(2)]);
    }

    #[test]
    fn a_person_at_vehicle_speed_on_a_carriageway_counts_as_a_motorcycle() {
        let carriageway = vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        let rules = DetectionRules {
            fusion: Some(TwoWheelerConfig { zones: vec![(ZoneKind::Carriageway, carriageway)], ..Default::default() }),
            ..Default::default()
        };
        // Only the rider is detected (the bike is missed), moving at 200 px/s.
        let rider = |dy: f32| vec![det(0, 425.0, 170.0 + dy, 470.0, 285.0 + dy, 0.8)];
        assert_eq!(drive(&mut processor(rules), rider), vec![("down".to_owned(), ObjectClass::Motorcycle, 1)]);
        // On a crossing the same person stays a pedestrian.
        let crossing = vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        let rules = DetectionRules {
            fusion: Some(TwoWheelerConfig { zones: vec![(ZoneKind::Crossing, crossing)], ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(drive(&mut processor(rules), rider), vec![("down".to_owned(), ObjectClass::Person, 1)]);
    }

    #[test]
    fn class_thresholds_filter_per_class_and_switch_at_night() {
        let day = ClassThresholds { default: Some(0.3), per_class: vec![(ObjectClass::Motorcycle, 0.2), (ObjectClass::Person, 0.4)] };
        assert!(day.passes(ObjectClass::Motorcycle, 0.25));
        assert!(!day.passes(ObjectClass::Person, 0.35));
        assert!(day.passes(ObjectClass::Car, 0.3) && !day.passes(ObjectClass::Car, 0.29));
        assert_eq!(day.floor(), Some(0.2));
        let night = NightProfile {
            hours: LocalHours {
                from: NaiveTime::from_hms_opt(18, 0, 0).expect("time"),
                to: NaiveTime::from_hms_opt(6, 0, 0).expect("time"),
                utc_offset_secs: 7 * 3600,
            },
            thresholds: ClassThresholds { default: Some(0.1), per_class: vec![] },
        };
        let utc = |h: i64, m: i64| DateTime::from_timestamp(h * 3600 + m * 60, 0).expect("time");
        // UTC+7: 10:59 UTC is 17:59 local (day), 11:00 UTC is 18:00 (night), 22:59 is 05:59.
        assert!(!night.is_night(utc(10, 59)));
        assert!(night.is_night(utc(11, 0)));
        assert!(night.is_night(utc(22, 59)));
        assert!(!night.is_night(utc(23, 0)));
        // In the processor: a 0.2 car is dropped by day and tracked at night (stream time
        // 11:00 UTC onwards with the clock at the epoch).
        let rules = DetectionRules { thresholds: day, night: Some(night), fusion: None };
        let car = |dy: f32| vec![det(2, 400.0, 240.0 + dy, 500.0, 300.0 + dy, 0.65)];
        let mut p = processor(DetectionRules {
            thresholds: ClassThresholds { default: Some(0.7), per_class: vec![] },
            ..rules.clone()
        });
        assert!(drive(&mut p, car).is_empty(), "0.65 < 0.7 by day");
        let mut p = processor(DetectionRules { thresholds: ClassThresholds { default: Some(0.7), per_class: vec![] }, ..rules });
        p.clock = StreamClock { origin: utc(11, 0) };
        assert_eq!(drive(&mut p, car), vec![("down".to_owned(), ObjectClass::Car, 1)]);
    }
}
