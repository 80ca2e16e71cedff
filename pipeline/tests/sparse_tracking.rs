//! Tracking and counting from sparse detections (a few a second): synthetic scenes fed to the
//! real `Tracker` and `Analytics`, as the edge agent's frame processor chains them (the motion
//! prior set from the scene's lines and zones at the first frame).

use std::time::Duration;

use chrono::DateTime;
use roadsight_events::{EventBody, ObjectClass};
use roadsight_pipeline::analytics::{Analytics, AnalyticsConfig, Anchor, IncidentConfig, LineSpec, StreamClock, TrackedObject};
use roadsight_pipeline::geometry::BBox;
use roadsight_pipeline::track::{TrackInput, Tracker, TrackerConfig};

const W: u32 = 640;
const H: u32 = 480;

/// A line across the frame at y = 240 (normalised from `x0` to `x1`), forward = downwards.
fn line(x0: f32, x1: f32) -> LineSpec {
    LineSpec {
        id: "l".into(),
        from: (x0, 0.5),
        to: (x1, 0.5),
        forward: "south".into(),
        backward: "north".into(),
        classes: vec![],
        anchor: Anchor::BottomCenter,
        hysteresis_px: 6.0,
    }
}

/// Tracker + analytics over frames of boxes at `fps` detections a second.
struct Scene {
    tracker: Tracker,
    analytics: Analytics,
    fps: f64,
    frame: u64,
    crossings: Vec<(u64, String)>,
    /// Per frame: (track id, box) of the confirmed tracks matched in it.
    tracks: Vec<Vec<(u64, BBox)>>,
}

impl Scene {
    fn new(lines: Vec<LineSpec>, fps: f64) -> Scene {
        let config = AnalyticsConfig { lines, zones: vec![], counts_interval: None, incidents: IncidentConfig::default() };
        let mut tracker = Tracker::new(TrackerConfig::default());
        tracker.set_scene(W, H, config.motion_regions(W, H));
        let clock = StreamClock { origin: DateTime::from_timestamp(0, 0).expect("epoch") };
        Scene { tracker, analytics: Analytics::new(&config, W, H, clock), fps, frame: 0, crossings: vec![], tracks: vec![] }
    }

    fn step(&mut self, boxes: &[BBox]) {
        let t = Duration::from_secs_f64(self.frame as f64 / self.fps);
        self.frame += 1;
        let inputs: Vec<TrackInput> = boxes.iter().map(|&bbox| TrackInput { bbox, score: 0.8, class_id: 2 }).collect();
        let update = self.tracker.update(&inputs, t);
        let object = |tr: &roadsight_pipeline::track::Track| TrackedObject {
            track_id: tr.id,
            class: ObjectClass::Car,
            confidence: tr.score,
            bbox: tr.bbox,
            last_seen: tr.last_seen,
            velocity: (tr.hits > 2).then_some(tr.velocity),
            riders: None,
            first_seen: Some((tr.first_seen, tr.first_bbox)),
        };
        let active: Vec<TrackedObject> = update.active.iter().map(object).collect();
        let ended: Vec<TrackedObject> = update.removed.iter().map(object).collect();
        self.tracks.push(active.iter().map(|o| (o.track_id, o.bbox)).collect());
        for e in self.analytics.update(t, &active, &ended) {
            if let EventBody::LineCrossing(c) = e.body {
                self.crossings.push((c.object.track_id, c.direction));
            }
        }
    }

    fn ids(&self) -> std::collections::BTreeSet<u64> {
        self.tracks.iter().flatten().map(|(id, _)| *id).collect()
    }
}

fn car(cx: f32, bottom: f32) -> BBox {
    BBox::from_xywh(cx - 20.0, bottom - 30.0, 40.0, 30.0)
}

#[test]
fn a_vehicle_moving_one_and_a_half_box_heights_per_detection_keeps_one_id_and_counts_once() {
    // 2.5 detections a second; 45 px (1.5 × its 30 px height) between detections.
    let mut s = Scene::new(vec![line(0.0, 1.0)], 2.5);
    for k in 0..10 {
        s.step(&[car(320.0, 40.0 + 45.0 * k as f32)]);
    }
    assert_eq!(s.ids().len(), 1, "one id: {:?}", s.tracks);
    assert_eq!(s.crossings.len(), 1, "{:?}", s.crossings);
    assert_eq!(s.crossings[0].1, "south");
}

#[test]
fn association_is_not_unbounded_a_jump_far_beyond_the_gate_starts_a_new_track() {
    // Control for the test above: with no line or zone (no direction prior), a box that jumps
    // 4 box heights per detection is not joined to the previous one.
    let mut s = Scene::new(vec![], 2.5);
    s.step(&[]); // (tracks born on the very first frame are confirmed at once)
    for k in 0..9 {
        s.step(&[car(500.0, 40.0 + 120.0 * (k % 3) as f32)]);
    }
    assert!(s.ids().is_empty(), "no two of these boxes are one object: {:?}", s.tracks);
}

#[test]
fn two_vehicles_side_by_side_at_large_jumps_do_not_swap_ids() {
    // Adjacent lanes 44 px apart (boxes 4 px apart); one at 1.5 box heights per detection,
    // the other at 1.2, so the faster one draws level and passes.
    let mut s = Scene::new(vec![line(0.0, 1.0)], 2.5);
    for k in 0..11 {
        let k = k as f32;
        s.step(&[car(300.0, 20.0 + 45.0 * k), car(344.0, 60.0 + 36.0 * k)]);
    }
    assert_eq!(s.ids().len(), 2, "{:?}", s.tracks);
    for frame in &s.tracks {
        for (id, b) in frame {
            let lane = if b.center().0 < 322.0 { 0 } else { 1 };
            let first_lane = s.tracks.iter().flatten().find(|(i, _)| i == id).map(|(_, b)| (b.center().0 >= 322.0) as i32);
            assert_eq!(Some(lane), first_lane, "track {id} changed lanes: {:?}", s.tracks);
        }
    }
    assert_eq!(s.crossings.len(), 2, "{:?}", s.crossings);
}

#[test]
fn a_vehicle_turning_at_a_junction_is_not_counted_on_a_line_it_never_crossed() {
    // The line covers the left half of the road (x 64–288 px). A vehicle comes down at
    // x = 520, turns west at y = 300 (below the line's level, right of its end) and leaves
    // along y = 300 under the line: it never crossed the segment.
    let mut s = Scene::new(vec![line(0.1, 0.45)], 2.5);
    let mut path = vec![];
    let mut y = 60.0;
    while y < 300.0 {
        path.push((520.0, y));
        y += 45.0;
    }
    let mut x = 520.0;
    while x > 0.0 {
        path.push((x, 300.0));
        x -= 45.0;
    }
    for (x, y) in path {
        s.step(&[car(x, y)]);
    }
    assert!(s.crossings.is_empty(), "{:?}", s.crossings);
    // And turning before the line (west at y = 200, above it) does not count either.
    let mut s = Scene::new(vec![line(0.0, 1.0)], 2.5);
    for k in 0..4 {
        s.step(&[car(400.0, 65.0 + 45.0 * k as f32)]);
    }
    for k in 1..8 {
        s.step(&[car(400.0 - 45.0 * k as f32, 200.0)]);
    }
    assert!(s.crossings.is_empty(), "{:?}", s.crossings);
}

#[test]
fn a_stopped_queue_with_jittering_boxes_produces_no_crossings() {
    // Six vehicles standing one behind another across the line (one right on it), boxes
    // jittering by up to ±4 px in position and ±3 px in size, at 25 and at 2.5 detections a
    // second, for 60 s of stream time at the low rate.
    for (fps, frames) in [(25.0, 600), (2.5, 150)] {
        let mut s = Scene::new(vec![line(0.0, 1.0)], fps);
        for f in 0..frames {
            let boxes: Vec<BBox> = (0..6)
                .map(|i| {
                    // Deterministic jitter from the frame and vehicle numbers.
                    let j = |salt: u64| (((f as u64 * 7919 + i as u64 * 104_729 + salt) % 9) as f32) - 4.0;
                    let bottom = 150.0 + 36.0 * i as f32 + j(1);
                    BBox::from_xywh(300.0 + j(2), bottom - 30.0 + j(3) * 0.75, 40.0 + j(4) * 0.75, 30.0)
                })
                .collect();
            s.step(&boxes);
        }
        assert!(s.crossings.is_empty(), "at {fps} fps: {:?}", s.crossings);
        assert!(s.ids().len() <= 6, "at {fps} fps: {} ids for 6 vehicles", s.ids().len());
    }
}

#[test]
fn a_vehicle_missed_around_the_line_is_counted_once_when_seen_again_beyond_it() {
    // Seen three times above the line, missed for two detections (0.8 s), seen again well
    // beyond it: one object, one crossing.
    let mut s = Scene::new(vec![line(0.0, 1.0)], 2.5);
    for k in 0..10 {
        if (3..5).contains(&k) {
            s.step(&[]);
        } else {
            s.step(&[car(320.0, 60.0 + 40.0 * k as f32)]);
        }
    }
    assert_eq!(s.crossings.len(), 1, "{:?} {:?}", s.crossings, s.tracks);
}
