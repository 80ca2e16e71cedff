//! YOLOX output decoding + NMS throughput on a realistic 416×416 output (3,549 cells × 85
//! values), in frames per second.
//!
//! The output is synthetic but shaped like the real one: a low-objectness background, and
//! around each of 40 vehicles the 3×3 neighbourhood of cells on every stride firing with
//! jittered boxes, so NMS has clusters of overlapping candidates to suppress — the work a busy
//! intersection frame gives it.
//!
//! `cargo bench -p roadsight-pipeline --bench nms`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roadsight_pipeline::detect::decode::{decode_yolox, nms};
use roadsight_pipeline::detect::preprocess::InputTransform;
use roadsight_pipeline::detect::Detection;

const INPUT: u32 = 416;
const CLASSES: usize = 80;
const ROW: usize = 5 + CLASSES;

/// A small deterministic generator (no `rand` dependency for one bench).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Raw YOLOX output for `objects` objects (boxes in model-input pixels).
fn synthetic_output(objects: usize) -> Vec<f32> {
    let mut rng = Lcg(7);
    let cells: usize = [8u32, 16, 32].iter().map(|s| ((INPUT / s) * (INPUT / s)) as usize).sum();
    let mut data = vec![0f32; cells * ROW];
    // Background: every cell has some weak objectness and a spread of class scores.
    for row in data.chunks_exact_mut(ROW) {
        row[4] = rng.next() * 0.05;
        for c in &mut row[5..] {
            *c = rng.next() * 0.1;
        }
    }
    // Vehicles: car, motorcycle, bus, truck (COCO 2, 3, 5, 7).
    let classes = [2usize, 3, 5, 7];
    for k in 0..objects {
        let (cx, cy) = (20.0 + rng.next() * 376.0, 60.0 + rng.next() * 300.0);
        let (w, h) = (16.0 + rng.next() * 80.0, 14.0 + rng.next() * 60.0);
        let class = classes[k % classes.len()];
        let mut offset = 0usize;
        for stride in [8u32, 16, 32] {
            let g = INPUT / stride;
            let s = stride as f32;
            let (gx, gy) = ((cx / s) as i64, (cy / s) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (x, y) = (gx + dx, gy + dy);
                    if x < 0 || y < 0 || x >= g as i64 || y >= g as i64 {
                        continue;
                    }
                    let row = &mut data[(offset + (y as usize * g as usize + x as usize)) * ROW..][..ROW];
                    let centre = dx == 0 && dy == 0;
                    let obj = if centre { 0.6 + 0.35 * rng.next() } else { 0.2 + 0.4 * rng.next() };
                    row[0] = (cx + (rng.next() - 0.5) * 4.0) / s - x as f32;
                    row[1] = (cy + (rng.next() - 0.5) * 4.0) / s - y as f32;
                    row[2] = (w * (0.9 + 0.2 * rng.next()) / s).ln();
                    row[3] = (h * (0.9 + 0.2 * rng.next()) / s).ln();
                    row[4] = obj;
                    row[5 + class] = 0.7 + 0.25 * rng.next();
                    // A runner-up class, as a truck that also looks like a car.
                    row[5 + classes[(k + 1) % classes.len()]] = 0.3 * rng.next();
                }
            }
            offset += (g * g) as usize;
        }
    }
    data
}

fn decode_and_nms(c: &mut Criterion) {
    let data = synthetic_output(40);
    // A 960×540 frame letterboxed into 416×416.
    let scale = 416.0 / 960.0;
    let transform = InputTransform { scale_x: scale, scale_y: scale };
    let mut dets: Vec<Detection> = Vec::with_capacity(1024);
    let mut group = c.benchmark_group("yolox_decode_nms");
    group.throughput(Throughput::Elements(1)); // one frame's output per iteration
    for threshold in [0.3f32, 0.1] {
        dets.clear();
        decode_yolox(&data, ROW, INPUT, INPUT, &transform, threshold, &mut dets).expect("valid output");
        let candidates = dets.len();
        nms(&mut dets, 0.45, true);
        let id = format!("score{threshold}_{candidates}cand_{}kept", dets.len());
        group.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter(|| {
                dets.clear();
                decode_yolox(std::hint::black_box(&data), ROW, INPUT, INPUT, &transform, threshold, &mut dets)
                    .expect("valid output");
                nms(&mut dets, 0.45, true);
                std::hint::black_box(dets.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode_and_nms);
criterion_main!(benches);
