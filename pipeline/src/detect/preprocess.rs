//! Frame → model input tensor: resize (letterbox or stretch), colour order, normalisation,
//! HWC → CHW, written straight into a reused `f32` buffer (no per-frame allocation).
//!
//! The resize is bilinear with half-pixel centres in 11-bit fixed point — the same arithmetic
//! as OpenCV's 8-bit `INTER_LINEAR` — so boxes agree with reference implementations that use
//! `cv2.resize`.

use roadsight_models::{Colour, Normalise, Resize};

use crate::frame::FrameView;

/// How to fill one `width` × `height` plane set of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputLayout {
    pub width: u32,
    pub height: u32,
    pub colour: Colour,
    pub normalise: Normalise,
    pub resize: Resize,
    pub pad_value: u8,
}

/// Maps model-input coordinates back to source-frame pixels: `src = model / scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputTransform {
    pub scale_x: f32,
    pub scale_y: f32,
}

impl InputTransform {
    #[inline]
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        (x / self.scale_x, y / self.scale_y)
    }
}

/// The input size, both sides multiples of 32, for a `frame_w` × `frame_h` frame on a model
/// that takes any multiple of 32: aspect-matched, the long side as near `long_side` as the
/// frame allows, never scaling the frame up (small objects do not gain from upscaling and
/// large near ones get worse). E.g. 1920×1080 → 960×544 at 960, 1280×736 at 1280;
/// 800×533 at 1280 → 800×544 (scale 1, the 11 extra rows are letterbox padding).
pub fn auto_input_size(frame_w: u32, frame_h: u32, long_side: u32) -> (u32, u32) {
    let round32 = |v: f64| ((v / 32.0).round() as u32).max(1) * 32;
    let floor32 = |v: u32| (v / 32).max(1) * 32;
    let (long, short) = (frame_w.max(frame_h).max(1), frame_w.min(frame_h).max(1));
    let long_in = round32(long_side.min(long) as f64).min(floor32(long));
    let short_in = round32(short as f64 * long_in as f64 / long as f64);
    if frame_w >= frame_h {
        (long_in, short_in)
    } else {
        (short_in, long_in)
    }
}

/// Fixed-point scale of the interpolation weights (OpenCV's `INTER_RESIZE_COEF_SCALE`).
const COEF_SCALE: f64 = 2048.0;

/// One axis of a bilinear resize: for each destination index, the two source indices and
/// their fixed-point weights (summing to 2048).
#[derive(Debug, Default, Clone)]
struct AxisTaps {
    i0: Vec<u32>,
    i1: Vec<u32>,
    w0: Vec<i32>,
    w1: Vec<i32>,
}

impl AxisTaps {
    fn build(&mut self, src: u32, dst: u32) {
        let scale = src as f64 / dst as f64;
        self.i0.clear();
        self.i1.clear();
        self.w0.clear();
        self.w1.clear();
        for d in 0..dst {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let mut i0 = f.floor() as i64;
            let mut frac = f - i0 as f64;
            if i0 < 0 {
                i0 = 0;
                frac = 0.0;
            }
            if i0 >= src as i64 - 1 {
                i0 = src as i64 - 1;
                frac = 0.0;
            }
            let w1 = (frac * COEF_SCALE).round() as i32;
            let w0 = ((1.0 - frac) * COEF_SCALE).round() as i32;
            self.i0.push(i0 as u32);
            self.i1.push((i0 as u32 + 1).min(src - 1));
            self.w0.push(w0);
            self.w1.push(w1);
        }
    }
}

/// Reusable preprocessing state: tap tables are rebuilt only when the frame size changes.
#[derive(Debug, Default)]
pub struct Preprocessor {
    key: Option<(u32, u32, u32, u32)>,
    xs: AxisTaps,
    ys: AxisTaps,
    row: Vec<u8>,
    h0: Vec<i32>,
    h1: Vec<i32>,
}

impl Preprocessor {
    /// Writes `frame` into `out` (length `3 × layout.width × layout.height`, CHW) and returns
    /// the transform back to source pixels.
    pub fn run(&mut self, frame: &FrameView<'_>, layout: &InputLayout, out: &mut [f32]) -> InputTransform {
        let (dw, dh) = (layout.width as usize, layout.height as usize);
        assert_eq!(out.len(), 3 * dw * dh, "tensor buffer size");
        let (rw, rh, transform) = match layout.resize {
            Resize::Stretch => (
                layout.width,
                layout.height,
                InputTransform {
                    scale_x: layout.width as f32 / frame.width as f32,
                    scale_y: layout.height as f32 / frame.height as f32,
                },
            ),
            Resize::LetterboxTopLeft => {
                let r = (layout.width as f32 / frame.width as f32).min(layout.height as f32 / frame.height as f32);
                let rw = ((frame.width as f32 * r).round() as u32).clamp(1, layout.width);
                let rh = ((frame.height as f32 * r).round() as u32).clamp(1, layout.height);
                (rw, rh, InputTransform { scale_x: r, scale_y: r })
            }
        };
        let key = (frame.width, frame.height, rw, rh);
        if self.key != Some(key) {
            self.xs.build(frame.width, rw);
            self.ys.build(frame.height, rh);
            self.key = Some(key);
        }
        let norm = match layout.normalise {
            Normalise::Raw0To255 => 1.0f32,
            Normalise::Unit0To1 => 1.0 / 255.0,
        };
        // Source frames are RGB; channel c of the tensor reads source channel order[c].
        let order: [usize; 3] = match layout.colour {
            Colour::Rgb => [0, 1, 2],
            Colour::Bgr => [2, 1, 0],
        };
        let pad = layout.pad_value as f32 * norm;
        let plane = dw * dh;
        let (rw, rh) = (rw as usize, rh as usize);
        self.row.resize(rw * 3, 0);
        for y in 0..dh {
            if y >= rh {
                for c in 0..3 {
                    out[c * plane + y * dw..c * plane + (y + 1) * dw].fill(pad);
                }
                continue;
            }
            // Horizontal pass on the two source rows (values × 2048), then the vertical blend
            // with OpenCV's rounding: ((b0·(h0 >> 4) >> 16) + (b1·(h1 >> 4) >> 16) + 2) >> 2.
            horizontal(frame.row(self.ys.i0[y]), &self.xs, rw, &mut self.h0);
            horizontal(frame.row(self.ys.i1[y]), &self.xs, rw, &mut self.h1);
            let (b0, b1) = (self.ys.w0[y], self.ys.w1[y]);
            for ((out, &a), &b) in self.row.iter_mut().zip(&self.h0).zip(&self.h1) {
                *out = ((((b0 * (a >> 4)) >> 16) + ((b1 * (b >> 4)) >> 16) + 2) >> 2).clamp(0, 255) as u8;
            }
            for (c, &src_ch) in order.iter().enumerate() {
                let dst = &mut out[c * plane + y * dw..c * plane + (y + 1) * dw];
                for x in 0..rw {
                    dst[x] = self.row[x * 3 + src_ch] as f32 * norm;
                }
                dst[rw..].fill(pad);
            }
        }
        transform
    }
}

/// Horizontal bilinear pass of one RGB row into `out` (`3 × rw` values scaled by 2048).
fn horizontal(row: &[u8], xs: &AxisTaps, rw: usize, out: &mut Vec<i32>) {
    out.clear();
    for x in 0..rw {
        let (a, b) = (xs.i0[x] as usize * 3, xs.i1[x] as usize * 3);
        let (w0, w1) = (xs.w0[x], xs.w1[x]);
        for ch in 0..3 {
            out.push(row[a + ch] as i32 * w0 + row[b + ch] as i32 * w1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(resize: Resize, colour: Colour) -> InputLayout {
        InputLayout { width: 8, height: 8, colour, normalise: Normalise::Raw0To255, resize, pad_value: 114 }
    }

    #[test]
    fn letterbox_keeps_aspect_and_pads_bottom_right() {
        // 16×8 red frame with a stride larger than the row.
        let (w, h, stride) = (16u32, 8u32, 16 * 3 + 4);
        let mut data = vec![0u8; stride * h as usize];
        for y in 0..h as usize {
            for x in 0..w as usize {
                data[y * stride + x * 3] = 200;
            }
        }
        let frame = FrameView::rgb(w, h, stride, &data).expect("geometry");
        let mut out = vec![0.0; 3 * 64];
        let t = Preprocessor::default().run(&frame, &layout(Resize::LetterboxTopLeft, Colour::Bgr), &mut out);
        assert_eq!(t.scale_x, 0.5);
        // BGR: channel 2 is red. Rows 0..4 hold the image, rows 4..8 are padding.
        assert_eq!(out[2 * 64], 200.0);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[2 * 64 + 5 * 8], 114.0);
        assert_eq!(t.to_source(8.0, 4.0), (16.0, 8.0));
    }

    #[test]
    fn auto_input_size_matches_the_aspect_and_never_upscales() {
        assert_eq!(auto_input_size(1920, 1080, 960), (960, 544));
        assert_eq!(auto_input_size(1920, 1080, 1280), (1280, 736));
        assert_eq!(auto_input_size(1568, 778, 960), (960, 480));
        assert_eq!(auto_input_size(1568, 778, 1280), (1280, 640));
        // Above the native size: the frame's own size (long side floored to 32).
        assert_eq!(auto_input_size(800, 533, 1280), (800, 544));
        assert_eq!(auto_input_size(1920, 1080, 4096), (1920, 1088));
        // Portrait and tiny frames.
        assert_eq!(auto_input_size(1080, 1920, 960), (544, 960));
        assert_eq!(auto_input_size(20, 10, 960), (32, 32));
        for (w, h, l) in [(1920u32, 1080u32, 960u32), (800, 533, 1280), (1568, 778, 1280), (640, 480, 2000)] {
            let (iw, ih) = auto_input_size(w, h, l);
            assert!(iw % 32 == 0 && ih % 32 == 0);
            let r = (iw as f32 / w as f32).min(ih as f32 / h as f32);
            assert!(r <= 1.0, "{w}×{h} at {l} → {iw}×{ih} scales up ({r})");
        }
    }

    #[test]
    fn stretch_maps_corners_back() {
        let data = vec![10u8; 4 * 2 * 3];
        let frame = FrameView::rgb(4, 2, 12, &data).expect("geometry");
        let mut out = vec![0.0; 3 * 64];
        let t = Preprocessor::default().run(&frame, &layout(Resize::Stretch, Colour::Rgb), &mut out);
        assert!(out.iter().all(|&v| v == 10.0));
        assert_eq!(t.to_source(8.0, 8.0), (4.0, 2.0));
    }
}
