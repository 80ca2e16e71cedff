//! Decoder-independent views of video frames.
//!
//! [`FrameView`] borrows pixels (from a mapped GStreamer buffer, an image, or a test buffer)
//! with their row stride; nothing downstream of `source` knows where the pixels came from.

use std::time::Duration;

/// Pixel layout of a [`FrameView`]. Sources deliver packed 8-bit RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb => 3,
        }
    }
}

/// A read-only view of one frame's pixels.
#[derive(Debug, Clone, Copy)]
pub struct FrameView<'a> {
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the next (≥ width × bytes per pixel).
    pub stride: usize,
    pub format: PixelFormat,
    pub data: &'a [u8],
}

impl<'a> FrameView<'a> {
    /// A view over packed RGB rows; `None` if `data` is too short for the geometry.
    pub fn rgb(width: u32, height: u32, stride: usize, data: &'a [u8]) -> Option<Self> {
        let row = width as usize * 3;
        let needed = if height == 0 { 0 } else { stride * (height as usize - 1) + row };
        (stride >= row && data.len() >= needed).then_some(FrameView { width, height, stride, format: PixelFormat::Rgb, data })
    }

    /// Row `y` (exactly `width × bpp` bytes).
    #[inline]
    pub fn row(&self, y: u32) -> &'a [u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.width as usize * self.format.bytes_per_pixel()]
    }
}

/// Stream position of a frame: its 0-based decoded index and presentation timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTime {
    pub index: u64,
    pub pts: Duration,
}

impl FrameTime {
    pub fn pts_ms(&self) -> u64 {
        self.pts.as_millis() as u64
    }
}
