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

    /// The `width` × `height` sub-rectangle at (`x`, `y`), zero-copy: the same pixels and
    /// stride, the data slice starting at the rectangle's first pixel. `None` if it does not
    /// fit inside the frame or is empty.
    pub fn crop(&self, x: u32, y: u32, width: u32, height: u32) -> Option<FrameView<'a>> {
        let fits_x = x.checked_add(width).is_some_and(|r| r <= self.width);
        let fits_y = y.checked_add(height).is_some_and(|b| b <= self.height);
        if width == 0 || height == 0 || !fits_x || !fits_y {
            return None;
        }
        let start = y as usize * self.stride + x as usize * self.format.bytes_per_pixel();
        Some(FrameView { width, height, stride: self.stride, format: self.format, data: self.data.get(start..)? })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_shares_the_pixels_and_the_stride() {
        // 4×3 frame, stride 16: pixel (x, y) has red = 10·y + x.
        let mut data = vec![0u8; 16 * 3];
        for y in 0..3 {
            for x in 0..4 {
                data[y * 16 + x * 3] = (10 * y + x) as u8;
            }
        }
        let frame = FrameView::rgb(4, 3, 16, &data).expect("geometry");
        let crop = frame.crop(1, 1, 3, 2).expect("fits");
        assert_eq!((crop.width, crop.height, crop.stride), (3, 2, 16));
        assert_eq!(crop.row(0).len(), 9);
        assert_eq!([crop.row(0)[0], crop.row(0)[6], crop.row(1)[0], crop.row(1)[6]], [11, 13, 21, 23]);
        assert!(std::ptr::eq(&crop.row(0)[0], &data[16 + 3]), "no copy");
        assert!(frame.crop(2, 0, 3, 1).is_none());
        assert!(frame.crop(0, 2, 1, 2).is_none());
        assert!(frame.crop(0, 0, 0, 1).is_none());
        assert_eq!(frame.crop(0, 0, 4, 3).map(|c| c.data.len()), Some(data.len()));
    }
}
