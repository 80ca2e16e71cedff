//! Drawing on RGB frames: boxes, lines, polygons (for previews and incident snapshots).

use image::{Rgb, RgbImage};
use roadsight_pipeline::frame::FrameView;
use roadsight_pipeline::geometry::BBox;

/// Copies a frame view (honouring its stride) into an owned image.
pub fn to_image(view: &FrameView<'_>) -> RgbImage {
    let mut img = RgbImage::new(view.width, view.height);
    for y in 0..view.height {
        let row = view.row(y);
        let start = (y * view.width * 3) as usize;
        img.as_mut()[start..start + row.len()].copy_from_slice(row);
    }
    img
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>, thickness: i64) {
    let r = thickness / 2;
    for dy in -r..=r {
        for dx in -r..=r {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, c);
            }
        }
    }
}

/// A straight segment (Bresenham).
pub fn line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: Rgb<u8>, thickness: i64) {
    let (mut x0, mut y0) = (a.0.round() as i64, a.1.round() as i64);
    let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        put(img, x0, y0, c, thickness);
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}

pub fn rect(img: &mut RgbImage, b: &BBox, c: Rgb<u8>, thickness: i64) {
    let corners = [(b.x1, b.y1), (b.x2, b.y1), (b.x2, b.y2), (b.x1, b.y2)];
    polygon(img, &corners, c, thickness);
}

pub fn polygon(img: &mut RgbImage, pts: &[(f32, f32)], c: Rgb<u8>, thickness: i64) {
    for i in 0..pts.len() {
        line(img, pts[i], pts[(i + 1) % pts.len()], c, thickness);
    }
}

/// A counting line with an arrow from its middle towards the side a `forward` crossing ends on.
pub fn counting_line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: Rgb<u8>) {
    line(img, a, b, c, 3);
    let (mx, my) = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-3);
    // Right-hand normal in y-down image coordinates.
    let (nx, ny) = (-dy / len, dx / len);
    let tip = (mx + nx * 30.0, my + ny * 30.0);
    line(img, (mx, my), tip, c, 3);
    let (ux, uy) = (nx, ny);
    line(img, tip, (tip.0 - ux * 10.0 - uy * 8.0, tip.1 - uy * 10.0 + ux * 8.0), c, 3);
    line(img, tip, (tip.0 - ux * 10.0 + uy * 8.0, tip.1 - uy * 10.0 - ux * 8.0), c, 3);
}

/// An incident snapshot: the frame with the object's box drawn, as JPEG.
pub fn snapshot_jpeg(view: &FrameView<'_>, object: &BBox, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut img = to_image(view);
    let grown = BBox::new(object.x1 - 4.0, object.y1 - 4.0, object.x2 + 4.0, object.y2 + 4.0);
    rect(&mut img, &grown, Rgb([255, 30, 30]), 3);
    let mut out = Vec::with_capacity(128 * 1024);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(&img)?;
    Ok(out)
}
