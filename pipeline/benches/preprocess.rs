//! Preprocessing throughput: a 960×540 RGB frame letterboxed into a 416×416 BGR tensor
//! (yolox_nano's input), and stretched into 416×416 RGB (deimv2's), in frames per second.
//!
//! `cargo bench -p roadsight-pipeline --bench preprocess`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use roadsight_models::{Colour, Normalise, Resize};
use roadsight_pipeline::detect::preprocess::{InputLayout, Preprocessor};
use roadsight_pipeline::frame::FrameView;

/// A deterministic 960×540 frame with texture (gradients plus a hash), with padded rows like
/// GStreamer's (stride rounded up to 4 bytes).
fn synthetic_frame(width: u32, height: u32) -> (usize, Vec<u8>) {
    let stride = (width as usize * 3).div_ceil(4) * 4;
    let mut data = vec![0u8; stride * height as usize];
    for y in 0..height as usize {
        for x in 0..width as usize {
            let h = (x as u32).wrapping_mul(2_654_435_761) ^ (y as u32).wrapping_mul(40_503);
            let p = &mut data[y * stride + x * 3..y * stride + x * 3 + 3];
            p[0] = (x * 255 / width as usize) as u8 ^ (h >> 27) as u8;
            p[1] = (y * 255 / height as usize) as u8;
            p[2] = (h >> 8) as u8;
        }
    }
    (stride, data)
}

fn preprocess(c: &mut Criterion) {
    let (w, h) = (960, 540);
    let (stride, data) = synthetic_frame(w, h);
    let frame = FrameView::rgb(w, h, stride, &data).expect("frame geometry");
    let mut group = c.benchmark_group("preprocess");
    group.throughput(Throughput::Elements(1)); // one frame per iteration: elem/s = frames/s
    let cases = [
        ("letterbox_960x540_to_416x416_bgr", Resize::LetterboxTopLeft, Colour::Bgr, Normalise::Raw0To255),
        ("stretch_960x540_to_416x416_rgb_unit", Resize::Stretch, Colour::Rgb, Normalise::Unit0To1),
    ];
    for (name, resize, colour, normalise) in cases {
        let layout = InputLayout { width: 416, height: 416, colour, normalise, resize, pad_value: 114 };
        let mut out = vec![0f32; 3 * 416 * 416];
        let mut pre = Preprocessor::default();
        group.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(pre.run(std::hint::black_box(&frame), &layout, &mut out)))
        });
    }
    group.finish();
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
