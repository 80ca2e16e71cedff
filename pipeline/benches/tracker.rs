//! ByteTrack throughput on a dense synthetic scene: 240 objects moving at once (a crowded
//! motorbike junction), with score noise, box jitter and missed detections, in frames per
//! second.
//!
//! Objects move on closed loops whose period is the scene length, so the scene repeats without
//! a jump and the tracker stays in steady state however many iterations criterion runs.
//!
//! Each size runs twice in one run: `bytetrack` (plain ByteTrack: `large_motion = false`, the
//! tracker as it was before the large-motion association) and `large_motion` (the default:
//! buffered cascade and motion prior, with a counting line across the view).
//!
//! `cargo bench -p roadsight-pipeline --bench tracker`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roadsight_pipeline::geometry::BBox;
use roadsight_pipeline::track::{PriorRegion, TrackInput, Tracker, TrackerConfig};

const FRAMES: usize = 300;
const FRAME_MS: u64 = 33;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `FRAMES` frames of detections of `objects` objects in a 1920×1080 view.
fn scene(objects: usize) -> Vec<Vec<TrackInput>> {
    let mut rng = Lcg(11);
    let paths: Vec<[f32; 8]> = (0..objects)
        .map(|_| {
            [
                100.0 + rng.next() * 1720.0, // centre x
                100.0 + rng.next() * 880.0,  // centre y
                20.0 + rng.next() * 150.0,   // amplitude x
                20.0 + rng.next() * 100.0,   // amplitude y
                rng.next() * std::f32::consts::TAU,
                20.0 + rng.next() * 60.0, // width
                20.0 + rng.next() * 50.0, // height
                (rng.next() * 4.0).floor(),
            ]
        })
        .collect();
    (0..FRAMES)
        .map(|f| {
            let phase = f as f32 / FRAMES as f32 * std::f32::consts::TAU;
            paths
                .iter()
                .filter_map(|p| {
                    // 5 % of detections are missed in any frame.
                    if rng.next() < 0.05 {
                        return None;
                    }
                    let cx = p[0] + p[2] * (phase + p[4]).sin() + (rng.next() - 0.5) * 3.0;
                    let cy = p[1] + p[3] * (phase + p[4]).cos() + (rng.next() - 0.5) * 3.0;
                    // Mostly confident, some in ByteTrack's low band (occlusion).
                    let score = if rng.next() < 0.15 { 0.15 + 0.3 * rng.next() } else { 0.55 + 0.4 * rng.next() };
                    Some(TrackInput {
                        bbox: BBox::from_center(cx, cy, p[5], p[6]),
                        score,
                        class_id: [2u16, 3, 5, 7][p[7] as usize],
                    })
                })
                .collect()
        })
        .collect()
}

fn tracker(c: &mut Criterion) {
    let mut group = c.benchmark_group("bytetrack");
    group.throughput(Throughput::Elements(1)); // one frame per iteration
    for (objects, large_motion) in [(50usize, false), (50, true), (240, false), (240, true)] {
        let frames = scene(objects);
        let mut tracker = Tracker::new(TrackerConfig { large_motion, ..TrackerConfig::default() });
        tracker.set_scene(1920, 1080, vec![PriorRegion::Line { a: (0.0, 540.0), b: (1920.0, 540.0) }]);
        let name = if large_motion { "large_motion" } else { "bytetrack" };
        // Warm the tracker up on one lap, so the timed frames see established tracks.
        let mut k = 0usize;
        for dets in &frames {
            k += 1;
            tracker.update(dets, Duration::from_millis(FRAME_MS * k as u64));
        }
        group.bench_function(BenchmarkId::new(name, objects), |b| {
            b.iter(|| {
                k += 1;
                let dets = &frames[k % FRAMES];
                std::hint::black_box(tracker.update(dets, Duration::from_millis(FRAME_MS * k as u64)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, tracker);
criterion_main!(benches);
