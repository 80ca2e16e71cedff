//! Frame → model input tensor: resize (letterbox or stretch), colour order, normalisation,
//! HWC → CHW, written straight into a reused `f32` buffer (no per-frame allocation).
//!
//! The resize is bilinear with half-pixel centres, the same sampling as OpenCV's
//! `INTER_LINEAR`, so boxes agree with reference implementations that use `cv2.resize`.

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

/// One axis of a bilinear resize: for each destination index, the two source indices and the
/// weight of the second.
#[derive(Debug, Default, Clone)]
struct AxisTaps {
    i0: Vec<u32>,
    i1: Vec<u32>,
    w1: Vec<f32>,
}

impl AxisTaps {
    fn build(&mut self, src: u32, dst: u32) {
        let scale = src as f64 / dst as f64;
        self.i0.clear();
        self.i1.clear();
        self.w1.clear();
        for d in 0..dst {
            let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s.floor() as u32).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            self.i0.push(i0);
            self.i1.push(i1);
            self.w1.push((s - i0 as f64) as f32);
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
            let r0 = frame.row(self.ys.i0[y]);
            let r1 = frame.row(self.ys.i1[y]);
            let wy = self.ys.w1[y];
            for x in 0..rw {
                let (a, b, wx) = (self.xs.i0[x] as usize * 3, self.xs.i1[x] as usize * 3, self.xs.w1[x]);
                for ch in 0..3 {
                    let top = r0[a + ch] as f32 + (r0[b + ch] as f32 - r0[a + ch] as f32) * wx;
                    let bot = r1[a + ch] as f32 + (r1[b + ch] as f32 - r1[a + ch] as f32) * wx;
                    // Rounded to 8 bits as an 8-bit resize would be.
                    self.row[x * 3 + ch] = (top + (bot - top) * wy).round().clamp(0.0, 255.0) as u8;
                }
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
    fn stretch_maps_corners_back() {
        let data = vec![10u8; 4 * 2 * 3];
        let frame = FrameView::rgb(4, 2, 12, &data).expect("geometry");
        let mut out = vec![0.0; 3 * 64];
        let t = Preprocessor::default().run(&frame, &layout(Resize::Stretch, Colour::Rgb), &mut out);
        assert!(out.iter().all(|&v| v == 10.0));
        assert_eq!(t.to_source(8.0, 8.0), (4.0, 2.0));
    }
}
