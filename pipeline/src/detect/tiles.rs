//! Tiling and regions of interest (pure; no ONNX Runtime types).
//!
//! A [`TilePlan`] says which parts of a frame the detector looks at: an optional region of
//! interest (ROI, normalised to the frame) and an optional grid of overlapping tiles over it,
//! plus an optional pass over the whole ROI. [`plan_views`] turns it into pixel rectangles
//! ([`View`]) for a given frame size; the detector runs on each view (a zero-copy crop of
//! the frame), the boxes are shifted back to frame pixels, and [`merge`] removes the
//! duplicates that overlapping views produce.
//!
//! Merging, in order (all rules are class-aware and only compare boxes of *different*
//! views — within one view the detector's own NMS has already decided):
//! 1. Boxes cut by a seam go last. A box is *cut* when one of its sides lies on an interior
//!    tile edge (an edge inside the ROI, where a neighbouring tile continues the picture):
//!    it is probably part of an object that a neighbouring tile (or the full pass) sees whole.
//!    Whole boxes are considered first (by score), then cut ones (by score), so a partial
//!    box never wins over the whole object only because it scored higher.
//! 2. A candidate is dropped when a kept box of its class overlaps it with IoU above
//!    `nms_iou` (ordinary NMS), or with an intersection over the smaller box (IoS) of at
//!    least `ios` (the same object seen at another scale or cut by a seam).
//! 3. A cut candidate is also dropped at IoS ≥ [`CUT_IOS`] with a kept box of its class: a
//!    part of an object only needs to lie half inside the whole one to be a duplicate.
//! 4. Two kept cut boxes of the same class, cut on facing sides of the same seam (one on its
//!    right/bottom side, the other on its left/top side) and overlapping across it, are one
//!    object bigger than the overlap: they are replaced by their union (the higher score).
//!
//! A cut box with no whole counterpart is kept: losing an object is worse than a partial box.

use super::Detection;
use crate::geometry::BBox;

/// IoS at which a box cut by a seam counts as part of a kept box (rule 3 above).
pub const CUT_IOS: f32 = 0.5;

/// A rectangle in normalised [0, 1] frame coordinates (`x0 < x1`, `y0 < y1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormRect {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

/// A grid of `rows` × `cols` tiles over the ROI (or frame), neighbours overlapping by
/// `overlap` (a fraction of the tile size), plus optionally one pass over the whole ROI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileGrid {
    pub rows: u32,
    pub cols: u32,
    pub overlap: f32,
    pub full_frame: bool,
}

/// Merge thresholds (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeOptions {
    pub nms_iou: f32,
    pub ios: f32,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions { nms_iou: 0.5, ios: 0.8 }
    }
}

/// Which parts of a frame to detect on. `roi` alone: detect on that crop only; `grid`:
/// tiles over the ROI (or the frame).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TilePlan {
    pub roi: Option<NormRect>,
    pub grid: Option<TileGrid>,
    pub merge: MergeOptions,
}

/// A rectangle in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PixelRect {
    pub fn right(&self) -> u32 {
        self.x + self.width
    }
    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }
}

/// Sides of a rectangle, as bits of a mask.
pub const LEFT: u8 = 1;
pub const TOP: u8 = 2;
pub const RIGHT: u8 = 4;
pub const BOTTOM: u8 = 8;

/// One region the detector runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub rect: PixelRect,
    /// Sides of `rect` that are seams (inside the ROI, continued by a neighbouring tile).
    pub seams: u8,
}

/// The ROI of `plan` in pixels of a `width` × `height` frame (at least 1×1, inside it).
pub fn roi_pixels(width: u32, height: u32, roi: Option<NormRect>) -> PixelRect {
    let Some(r) = roi else {
        return PixelRect { x: 0, y: 0, width, height };
    };
    let span = |a: f32, b: f32, n: u32| {
        let lo = ((a.clamp(0.0, 1.0) * n as f32).floor() as u32).min(n.saturating_sub(1));
        let hi = ((b.clamp(0.0, 1.0) * n as f32).ceil() as u32).clamp(lo + 1, n.max(lo + 1));
        (lo, hi - lo)
    };
    let (x, w) = span(r.x0, r.x1, width);
    let (y, h) = span(r.y0, r.y1, height);
    PixelRect { x, y, width: w, height: h }
}

/// Splits `[start, start + len)` into `n` equal spans overlapping by `overlap` × span; the
/// first starts at `start`, the last ends at `start + len`.
fn axis_spans(start: u32, len: u32, n: u32, overlap: f32) -> Vec<(u32, u32)> {
    let n = n.max(1);
    if n == 1 {
        return vec![(start, len)];
    }
    let o = overlap.clamp(0.0, 0.9);
    let tile = ((len as f32 / (n as f32 - (n - 1) as f32 * o)).ceil() as u32).clamp(1, len);
    let step = (len - tile) as f32 / (n - 1) as f32;
    (0..n).map(|i| (start + (i as f32 * step).round() as u32, tile)).collect()
}

/// The views of `plan` on a `width` × `height` frame: the tiles (row-major), then the full
/// pass over the ROI if asked; without a grid, the ROI alone.
pub fn plan_views(width: u32, height: u32, plan: &TilePlan) -> Vec<View> {
    let roi = roi_pixels(width, height, plan.roi);
    let Some(grid) = plan.grid else {
        return vec![View { rect: roi, seams: 0 }];
    };
    let xs = axis_spans(roi.x, roi.width, grid.cols, grid.overlap);
    let ys = axis_spans(roi.y, roi.height, grid.rows, grid.overlap);
    let mut views = Vec::with_capacity(xs.len() * ys.len() + 1);
    for &(y, h) in &ys {
        for &(x, w) in &xs {
            let rect = PixelRect { x, y, width: w, height: h };
            let mut seams = 0;
            if rect.x > roi.x {
                seams |= LEFT;
            }
            if rect.y > roi.y {
                seams |= TOP;
            }
            if rect.right() < roi.right() {
                seams |= RIGHT;
            }
            if rect.bottom() < roi.bottom() {
                seams |= BOTTOM;
            }
            views.push(View { rect, seams });
        }
    }
    if grid.full_frame && views.len() > 1 {
        views.push(View { rect: roi, seams: 0 });
    }
    views
}

/// A detection in frame pixels with where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub det: Detection,
    /// Index of the view that produced it.
    pub view: usize,
    /// Sides of the box that lie on a seam of its view ([`LEFT`]…).
    pub cut: u8,
}

/// How close (pixels) a box side must be to a seam to count as cut by it: a few pixels, or
/// 1 % of the view's size for large views (box regression is not pixel-exact).
fn cut_margin(extent: u32) -> f32 {
    (extent as f32 * 0.01).max(3.0)
}

/// Shifts `dets` (in the pixels of `view`'s crop) to frame pixels, clamps them to the frame
/// and appends them to `out` with the seams that cut them.
pub fn collect(view_index: usize, view: &View, dets: &[Detection], frame_w: u32, frame_h: u32, out: &mut Vec<Candidate>) {
    let r = view.rect;
    let (mx, my) = (cut_margin(r.width), cut_margin(r.height));
    for d in dets {
        let b = d.bbox;
        let bbox = BBox::new(b.x1 + r.x as f32, b.y1 + r.y as f32, b.x2 + r.x as f32, b.y2 + r.y as f32)
            .clamp_to(frame_w as f32, frame_h as f32);
        if bbox.area() <= 0.0 {
            continue;
        }
        let mut cut = 0;
        if view.seams & LEFT != 0 && bbox.x1 <= r.x as f32 + mx {
            cut |= LEFT;
        }
        if view.seams & TOP != 0 && bbox.y1 <= r.y as f32 + my {
            cut |= TOP;
        }
        if view.seams & RIGHT != 0 && bbox.x2 >= r.right() as f32 - mx {
            cut |= RIGHT;
        }
        if view.seams & BOTTOM != 0 && bbox.y2 >= r.bottom() as f32 - my {
            cut |= BOTTOM;
        }
        out.push(Candidate { det: Detection { bbox, ..*d }, view: view_index, cut });
    }
}

/// Merges the candidates of all views into `out` (cleared first), following the rules in the
/// module docs. `candidates` is reordered.
pub fn merge(candidates: &mut [Candidate], opts: &MergeOptions, out: &mut Vec<Detection>) {
    out.clear();
    candidates.sort_by(|a, b| {
        (a.cut != 0)
            .cmp(&(b.cut != 0))
            .then(b.det.score.total_cmp(&a.det.score))
            .then(a.det.bbox.x1.total_cmp(&b.det.bbox.x1))
            .then(a.det.bbox.y1.total_cmp(&b.det.bbox.y1))
            .then(a.view.cmp(&b.view))
    });
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for c in candidates.iter() {
        let duplicate = kept.iter().any(|k| {
            if k.det.class_id != c.det.class_id {
                return false;
            }
            let iou = k.det.bbox.iou(&c.det.bbox);
            if iou > opts.nms_iou {
                return true;
            }
            if k.view == c.view {
                return false;
            }
            let ios = k.det.bbox.ios(&c.det.bbox);
            ios >= opts.ios || (c.cut != 0 && ios >= CUT_IOS)
        });
        if !duplicate {
            kept.push(*c);
        }
    }
    stitch_cut_pairs(&mut kept);
    out.extend(kept.iter().map(|k| k.det));
}

/// Rule 4: unites two kept boxes of one class cut on facing sides of a seam (an object
/// larger than the tiles' overlap, seen in part by each tile and whole by none).
fn stitch_cut_pairs(kept: &mut Vec<Candidate>) {
    let mut i = 0;
    while i < kept.len() {
        let mut joined = false;
        for j in 0..kept.len() {
            if i == j || kept[i].view == kept[j].view || kept[i].det.class_id != kept[j].det.class_id {
                continue;
            }
            let (a, b) = (kept[i].det.bbox, kept[j].det.bbox);
            // a's right side and b's left side on a vertical seam, a to the left of b,
            // overlapping in x and mostly in the same rows (or the same across a horizontal seam).
            let across_vertical = kept[i].cut & RIGHT != 0
                && kept[j].cut & LEFT != 0
                && a.x1 < b.x1
                && b.x1 < a.x2
                && span_overlap(a.y1, a.y2, b.y1, b.y2) >= 0.5;
            let across_horizontal = kept[i].cut & BOTTOM != 0
                && kept[j].cut & TOP != 0
                && a.y1 < b.y1
                && b.y1 < a.y2
                && span_overlap(a.x1, a.x2, b.x1, b.x2) >= 0.5;
            if across_vertical || across_horizontal {
                let (ci, cj) = (kept[i], kept[j]);
                let union = BBox::new(a.x1.min(b.x1), a.y1.min(b.y1), a.x2.max(b.x2), a.y2.max(b.y2));
                // The union is cut where either part was, except at the seam it crosses.
                let crossed = if across_vertical { RIGHT | LEFT } else { BOTTOM | TOP };
                kept[i] = Candidate {
                    det: Detection { bbox: union, score: ci.det.score.max(cj.det.score), class_id: ci.det.class_id },
                    view: ci.view,
                    cut: (ci.cut | cj.cut) & !crossed,
                };
                kept.remove(j);
                joined = true;
                break;
            }
        }
        if joined {
            i = 0; // a union may join a third part (an object over three tiles)
        } else {
            i += 1;
        }
    }
}

/// Overlap of two 1-D spans over the shorter one (0 when disjoint).
fn span_overlap(a0: f32, a1: f32, b0: f32, b1: f32) -> f32 {
    let inter = (a1.min(b1) - a0.max(b0)).max(0.0);
    let shorter = (a1 - a0).min(b1 - b0);
    if shorter <= 0.0 {
        0.0
    } else {
        inter / shorter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTO: u16 = 3;
    const PERSON: u16 = 0;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class_id: u16) -> Detection {
        Detection { bbox: BBox::new(x1, y1, x2, y2), score, class_id }
    }

    fn grid(rows: u32, cols: u32, overlap: f32, full_frame: bool) -> TilePlan {
        TilePlan { roi: None, grid: Some(TileGrid { rows, cols, overlap, full_frame }), merge: MergeOptions::default() }
    }

    /// Runs `per_view` (detections in each view's crop pixels) through collect + merge.
    fn merged(views: &[View], per_view: &[Vec<Detection>], w: u32, h: u32) -> Vec<Detection> {
        let mut cands = Vec::new();
        for (i, (v, d)) in views.iter().zip(per_view).enumerate() {
            collect(i, v, d, w, h, &mut cands);
        }
        let mut out = Vec::new();
        merge(&mut cands, &MergeOptions::default(), &mut out);
        out
    }

    /// Crop-local copy of a frame-pixel box for view `v`.
    fn local(v: &View, d: Detection) -> Detection {
        let (x, y) = (v.rect.x as f32, v.rect.y as f32);
        det(d.bbox.x1 - x, d.bbox.y1 - y, d.bbox.x2 - x, d.bbox.y2 - y, d.score, d.class_id)
    }

    #[test]
    fn tiles_cover_the_roi_with_the_requested_overlap() {
        let plan = TilePlan {
            roi: Some(NormRect { x0: 0.1, y0: 0.3, x1: 0.9, y1: 1.0 }),
            ..grid(2, 3, 0.2, true)
        };
        let (w, h) = (1568, 778);
        let roi = roi_pixels(w, h, plan.roi);
        // floor(0.1·1568) = 156, ceil(0.9·1568) = 1412, floor(0.3·778) = 233.
        assert_eq!(roi, PixelRect { x: 156, y: 233, width: 1412 - 156, height: 778 - 233 });
        let views = plan_views(w, h, &plan);
        assert_eq!(views.len(), 7, "2×3 tiles + the full pass");
        assert_eq!(views[6], View { rect: roi, seams: 0 });
        let tiles = &views[..6];
        // Every ROI pixel is in some tile, and no tile leaves the ROI.
        for t in tiles {
            assert!(t.rect.x >= roi.x && t.rect.right() <= roi.right() && t.rect.y >= roi.y && t.rect.bottom() <= roi.bottom());
        }
        for py in (roi.y..roi.bottom()).step_by(7) {
            for px in (roi.x..roi.right()).step_by(7) {
                assert!(tiles.iter().any(|t| (t.rect.x..t.rect.right()).contains(&px) && (t.rect.y..t.rect.bottom()).contains(&py)));
            }
        }
        // Neighbours overlap by at least 20 % of the tile size, and by at most 2 px more
        // (tile sizes are rounded up to whole pixels).
        let close = |overlap: f32, tile: u32| overlap >= 0.2 * tile as f32 && overlap <= 0.2 * tile as f32 + 2.0;
        for row in tiles.chunks(3) {
            for pair in row.windows(2) {
                let overlap = pair[0].rect.right() as f32 - pair[1].rect.x as f32;
                assert!(close(overlap, pair[0].rect.width), "x overlap {overlap} of {pair:?}");
            }
        }
        let v_overlap = tiles[0].rect.bottom() as f32 - tiles[3].rect.y as f32;
        assert!(close(v_overlap, tiles[0].rect.height), "y overlap {v_overlap} of {:?}", &tiles[..4]);
        // Seams: the middle top tile continues left, right and below; the corners only inward.
        assert_eq!(tiles[0].seams, RIGHT | BOTTOM);
        assert_eq!(tiles[1].seams, LEFT | RIGHT | BOTTOM);
        assert_eq!(tiles[5].seams, LEFT | TOP);
        assert_eq!(tiles[5].rect.right(), roi.right());
        assert_eq!(tiles[5].rect.bottom(), roi.bottom());
    }

    #[test]
    fn an_object_straddling_a_seam_comes_out_once() {
        // 1×2 tiles over 1000×400, overlap 0.2: tile 0 = [0, 556), tile 1 = [444, 1000).
        let (w, h) = (1000, 400);
        let views = plan_views(w, h, &grid(1, 2, 0.2, false));
        assert_eq!((views[0].rect.right(), views[1].rect.x), (556, 444));
        // A motorbike at x 520..600 (frame pixels): tile 0 sees its left part, cut at 556,
        // with a *higher* score; tile 1 sees it whole.
        let partial = det(520.0, 100.0, 556.0, 180.0, 0.9, MOTO);
        let whole = det(521.0, 101.0, 600.0, 181.0, 0.7, MOTO);
        let out = merged(&views, &[vec![local(&views[0], partial)], vec![local(&views[1], whole)]], w, h);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].bbox, whole.bbox, "the whole box wins over the higher-scored partial one");
    }

    #[test]
    fn a_partial_box_that_pokes_out_of_the_whole_one_is_still_a_duplicate() {
        // The detector guesses the hidden half: the cut box reaches 60 % into the whole one.
        let (w, h) = (1000, 400);
        let views = plan_views(w, h, &grid(1, 2, 0.2, false));
        let partial = det(500.0, 95.0, 555.0, 170.0, 0.8, PERSON);
        let whole = det(520.0, 100.0, 610.0, 190.0, 0.6, PERSON);
        let out = merged(&views, &[vec![local(&views[0], partial)], vec![local(&views[1], whole)]], w, h);
        assert_eq!(out.iter().map(|d| d.bbox).collect::<Vec<_>>(), vec![whole.bbox]);
    }

    #[test]
    fn two_adjacent_objects_near_a_seam_stay_two() {
        let (w, h) = (1000, 400);
        let views = plan_views(w, h, &grid(1, 2, 0.2, false));
        // Two motorbikes side by side at 480..530 and 532..582, both inside the overlap
        // [444, 556): tile 1 sees both whole; tile 0 sees the first whole and the second cut.
        let a = det(480.0, 100.0, 530.0, 180.0, 0.8, MOTO);
        let b = det(532.0, 102.0, 582.0, 182.0, 0.75, MOTO);
        let b_cut = det(532.0, 102.0, 556.0, 182.0, 0.6, MOTO);
        let out = merged(
            &views,
            &[vec![local(&views[0], a), local(&views[0], b_cut)], vec![local(&views[1], a), local(&views[1], b)]],
            w,
            h,
        );
        let mut boxes: Vec<BBox> = out.iter().map(|d| d.bbox).collect();
        boxes.sort_by(|p, q| p.x1.total_cmp(&q.x1));
        assert_eq!(boxes, vec![a.bbox, b.bbox]);
        // Two classes on one object (rider and bike) are never merged.
        let rider = det(482.0, 60.0, 528.0, 170.0, 0.7, PERSON);
        let out = merged(&views, &[vec![local(&views[0], a), local(&views[0], rider)], vec![local(&views[1], a)]], w, h);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn an_object_larger_than_the_overlap_is_stitched_from_its_parts() {
        // A bus across the seam, wider than the overlap: each tile sees a part, none whole.
        let (w, h) = (1000, 400);
        let views = plan_views(w, h, &grid(1, 2, 0.2, false));
        let left = det(300.0, 100.0, 556.0, 250.0, 0.7, 5);
        let right = det(444.0, 102.0, 700.0, 252.0, 0.6, 5);
        let out = merged(&views, &[vec![local(&views[0], left)], vec![local(&views[1], right)]], w, h);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].bbox, BBox::new(300.0, 100.0, 700.0, 252.0));
        assert_eq!(out[0].score, 0.7);
    }

    #[test]
    fn the_full_pass_removes_cut_boxes_and_keeps_small_tile_finds() {
        let (w, h) = (1000, 400);
        let views = plan_views(w, h, &grid(1, 2, 0.2, true));
        assert_eq!(views.len(), 3);
        let car_full = det(300.0, 100.0, 700.0, 250.0, 0.6, 2);
        let left = det(300.0, 100.0, 556.0, 250.0, 0.9, 2);
        let right = det(444.0, 102.0, 700.0, 252.0, 0.9, 2);
        let far_bike = det(900.0, 20.0, 910.0, 35.0, 0.5, MOTO);
        let out = merged(
            &views,
            &[vec![local(&views[0], left)], vec![local(&views[1], right), local(&views[1], far_bike)], vec![car_full]],
            w,
            h,
        );
        let mut got: Vec<BBox> = out.iter().map(|d| d.bbox).collect();
        got.sort_by(|p, q| p.x1.total_cmp(&q.x1));
        assert_eq!(got, vec![car_full.bbox, far_bike.bbox]);
    }

    #[test]
    fn boxes_of_one_view_are_left_to_the_detectors_nms() {
        // A small person in front of a large one, both from the same tile: IoS = 1 but
        // they are two people.
        let views = plan_views(640, 480, &grid(1, 1, 0.0, false));
        let big = det(100.0, 100.0, 200.0, 400.0, 0.9, PERSON);
        let small = det(120.0, 250.0, 170.0, 390.0, 0.8, PERSON);
        assert_eq!(merged(&views, &[vec![big, small]], 640, 480).len(), 2);
    }

    #[test]
    fn roi_boxes_map_back_to_frame_pixels() {
        let plan = TilePlan { roi: Some(NormRect { x0: 0.25, y0: 0.5, x1: 0.75, y1: 1.0 }), grid: None, merge: MergeOptions::default() };
        let views = plan_views(1920, 1080, &plan);
        assert_eq!(views, vec![View { rect: PixelRect { x: 480, y: 540, width: 960, height: 540 }, seams: 0 }]);
        // A box at the crop's origin and one at its bottom-right corner (ROI edges are not
        // seams: nothing is cut).
        let dets = [det(0.0, 0.0, 40.0, 30.0, 0.9, MOTO), det(900.0, 500.0, 960.0, 540.0, 0.8, 2)];
        let mut cands = Vec::new();
        collect(0, &views[0], &dets, 1920, 1080, &mut cands);
        assert_eq!(cands[0].det.bbox, BBox::new(480.0, 540.0, 520.0, 570.0));
        assert_eq!(cands[1].det.bbox, BBox::new(1380.0, 1040.0, 1440.0, 1080.0));
        assert!(cands.iter().all(|c| c.cut == 0));
        // Boxes the model stretches past the crop are clamped to the frame.
        collect(0, &views[0], &[det(900.0, 500.0, 1100.0, 600.0, 0.5, 2)], 1920, 1080, &mut cands);
        assert_eq!(cands[2].det.bbox, BBox::new(1380.0, 1040.0, 1580.0, 1080.0));
    }

    #[test]
    fn degenerate_rois_stay_inside_the_frame() {
        let r = roi_pixels(100, 50, Some(NormRect { x0: 1.0, y0: 1.0, x1: 1.0, y1: 1.0 }));
        assert!(r.width >= 1 && r.height >= 1 && r.right() <= 100 && r.bottom() <= 50, "{r:?}");
        assert_eq!(roi_pixels(100, 50, None), PixelRect { x: 0, y: 0, width: 100, height: 50 });
    }
}
