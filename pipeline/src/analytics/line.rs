//! Directional counting lines with hysteresis.
//!
//! A track's anchor point is on side `Forward`-origin (left of p1→p2, image coordinates) or
//! the other side only when it is more than `hysteresis_px` from the line; inside that band
//! its side does not change. A crossing is counted when the confirmed side flips *and* the
//! anchor's path between the two confirmed positions cuts the line segment. So: box jitter
//! near the line never counts, a track that touches the line and turns back never counts, a
//! track that disappears (occlusion) and reappears on the other side counts once, and each
//! track counts at most once per line. When the track's velocity is known, a side flip that
//! goes against it (a box that suddenly grows or shrinks across the line while the object
//! moves the other way) is treated as noise: no count, side unchanged.
//!
//! Sparse observations (a few detections a second): a track first seen inside the band and
//! next seen beyond it on the other side crossed too — when that step across the line is large
//! against the band (at least twice its width: motion, not jitter), the band's first position
//! stands for the side it came from. A track can hand its state over to a track that continues
//! it ([`CountingLine::hand_over`]), so an object whose track broke at the line counts once.

use std::collections::HashMap;

use crate::geometry::BBox;

pub type Point = (f32, f32);

/// Which point of a box stands for the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Middle of the bottom edge (where a vehicle meets the road).
    BottomCenter,
    Center,
}

impl Anchor {
    pub fn of(self, b: &BBox) -> Point {
        match self {
            Anchor::BottomCenter => b.bottom_center(),
            Anchor::Center => b.center(),
        }
    }
}

/// Direction of a crossing relative to the line's p1→p2 vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crossing {
    /// From the left of p1→p2 to its right (image coordinates, y down).
    Forward,
    /// From the right to the left.
    Backward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

#[derive(Debug, Clone, Copy)]
struct TrackLineState {
    /// `None` while every observation so far was inside the band.
    side: Option<Side>,
    /// The last position with a decided side (or the first one, inside the band).
    at: Point,
    /// Signed distance of `at`.
    d: f32,
    /// Whether the latest observation was `at` (not one inside the band since); read only
    /// once `side` is decided.
    latest_is_at: bool,
    counted: bool,
}

/// One counting line in pixels, with the per-track state it needs.
#[derive(Debug, Clone)]
pub struct CountingLine {
    p1: Point,
    p2: Point,
    hysteresis_px: f32,
    tracks: HashMap<u64, TrackLineState>,
}

impl CountingLine {
    pub fn new(p1: Point, p2: Point, hysteresis_px: f32) -> Self {
        CountingLine { p1, p2, hysteresis_px, tracks: HashMap::new() }
    }

    pub fn endpoints(&self) -> (Point, Point) {
        (self.p1, self.p2)
    }

    /// Signed distance of `p` from the line (positive on the right of p1→p2, y down).
    fn signed_distance(&self, p: Point) -> f32 {
        let (dx, dy) = (self.p2.0 - self.p1.0, self.p2.1 - self.p1.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-6);
        // Cross product (p2 - p1) × (p - p1); in y-down image coordinates positive = right.
        (dx * (p.1 - self.p1.1) - dy * (p.0 - self.p1.0)) / len
    }

    /// Feeds a track's anchor position and (if known) its velocity in pixels per second;
    /// returns a crossing when one is confirmed.
    pub fn observe(&mut self, track_id: u64, p: Point, velocity: Option<(f32, f32)>) -> Option<Crossing> {
        let d = self.signed_distance(p);
        let band = self.hysteresis_px;
        // A step this large across the line is motion, not jitter: it decides the side even
        // when it ends inside the band (at a few detections a second the next observation may
        // come after the vehicle has left the picture).
        let moved_across = |st: &TrackLineState| {
            st.side.is_some() && st.latest_is_at && st.d * d < 0.0 && (d - st.d).abs() >= MOTION_STEP_BANDS * band
        };
        let decided = d.abs() > band || (d != 0.0 && self.tracks.get(&track_id).is_some_and(moved_across));
        if !decided {
            // Inside the band: no decision (`latest_is_at` only matters once a side is decided).
            let fresh = TrackLineState { side: None, at: p, d, latest_is_at: false, counted: false };
            self.tracks.entry(track_id).or_insert(fresh).latest_is_at = false;
            return None;
        }
        let side = if d > 0.0 { Side::Right } else { Side::Left };
        let (p1, p2) = (self.p1, self.p2);
        let Some(st) = self.tracks.get_mut(&track_id) else {
            self.tracks.insert(track_id, TrackLineState { side: Some(side), at: p, d, latest_is_at: true, counted: false });
            return None;
        };
        let previous = *st;
        let came_from = match previous.side {
            Some(s) if s == side => {
                st.at = p;
                st.d = d;
                st.latest_is_at = true;
                return None;
            }
            Some(_) => previous.at,
            // Only seen inside the band so far: a large step from its far half is a crossing.
            None if previous.d * d < 0.0 && (d - previous.d).abs() >= 2.0 * band => previous.at,
            None => {
                *st = TrackLineState { side: Some(side), at: p, d, latest_is_at: true, counted: previous.counted };
                return None;
            }
        };
        if let Some((vx, vy)) = velocity {
            // Component of the velocity along the right-hand normal of p1→p2.
            let (dx, dy) = (p2.0 - p1.0, p2.1 - p1.1);
            let along_normal = (-dy * vx + dx * vy) / (dx * dx + dy * dy).sqrt().max(1e-6);
            let moving_right = along_normal > 0.0;
            if along_normal.abs() > MIN_NORMAL_SPEED && moving_right != (side == Side::Right) {
                return None;
            }
        }
        *st = TrackLineState { side: Some(side), at: p, d, latest_is_at: true, counted: previous.counted };
        if previous.counted || !segments_intersect(came_from, p, p1, p2) {
            return None;
        }
        st.counted = true;
        Some(if side == Side::Right { Crossing::Forward } else { Crossing::Backward })
    }

    /// Whether the line has seen track `track_id`.
    pub fn knows(&self, track_id: u64) -> bool {
        self.tracks.contains_key(&track_id)
    }

    /// Track `to` continues track `from` (the same object, its track broken): `to` takes over
    /// `from`'s side, position and whether it was counted; `from` counts no more.
    pub fn hand_over(&mut self, from: u64, to: u64) {
        let Some(st) = self.tracks.get_mut(&from) else { return };
        let state = *st;
        st.counted = true;
        self.tracks.entry(to).or_insert(state);
    }

    /// Forgets a track (it ended).
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }
}

/// A step across the line of at least this many band widths decides the side inside the band.
const MOTION_STEP_BANDS: f32 = 3.0;

/// Below this speed across the line (px/s) the velocity is too uncertain to veto a crossing.
const MIN_NORMAL_SPEED: f32 = 5.0;

fn orient(a: Point, b: Point, c: Point) -> f32 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

/// True if segment a–b intersects segment c–d (touching counts).
pub fn segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool {
    let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
    (o1 * o2 <= 0.0) && (o3 * o4 <= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Horizontal line y = 100 from x = 0 to 200, drawn left to right: "right" is y > 100.
    fn line() -> CountingLine {
        CountingLine::new((0.0, 100.0), (200.0, 100.0), 5.0)
    }

    fn feed(l: &mut CountingLine, id: u64, ys: &[f32]) -> Vec<Crossing> {
        ys.iter().filter_map(|&y| l.observe(id, (100.0, y), None)).collect()
    }

    #[test]
    fn a_clean_crossing_counts_once_with_its_direction() {
        let mut l = line();
        assert_eq!(feed(&mut l, 1, &[60.0, 80.0, 95.0, 102.0, 110.0, 140.0]), vec![Crossing::Forward]);
        assert_eq!(feed(&mut l, 2, &[140.0, 120.0, 90.0, 60.0]), vec![Crossing::Backward]);
    }

    #[test]
    fn jitter_across_the_line_does_not_count() {
        let mut l = line();
        // Oscillates ±4 px around the line, inside the 5 px band.
        let ys: Vec<f32> = (0..50).map(|i| 100.0 + if i % 2 == 0 { 4.0 } else { -4.0 }).collect();
        assert!(feed(&mut l, 1, &ys).is_empty());
    }

    #[test]
    fn jitter_after_a_real_crossing_counts_once() {
        let mut l = line();
        let mut ys = vec![50.0, 80.0, 120.0];
        ys.extend((0..20).map(|i| if i % 2 == 0 { 94.0 } else { 106.0 })); // beyond the band, both ways
        assert_eq!(feed(&mut l, 1, &ys), vec![Crossing::Forward]);
    }

    #[test]
    fn touching_and_turning_back_does_not_count() {
        let mut l = line();
        assert!(feed(&mut l, 1, &[50.0, 80.0, 97.0, 100.0, 103.0, 96.0, 70.0, 40.0]).is_empty());
    }

    #[test]
    fn crossing_beside_the_segment_does_not_count() {
        let mut l = line();
        let got: Vec<_> = [60.0, 140.0].iter().filter_map(|&y| l.observe(1, (300.0, y), None)).collect();
        assert!(got.is_empty());
    }

    #[test]
    fn occlusion_gap_still_counts_once() {
        let mut l = line();
        // Seen above, then (after a gap with no observations) far below.
        assert_eq!(feed(&mut l, 1, &[40.0, 50.0, 180.0, 190.0]), vec![Crossing::Forward]);
    }

    #[test]
    fn a_box_jump_against_the_motion_does_not_count() {
        let mut l = line();
        // The object moves up (away) but its box grows downwards across the line, then shrinks.
        let up = Some((0.0, -50.0));
        assert_eq!(l.observe(1, (100.0, 90.0), up), None);
        assert_eq!(l.observe(1, (100.0, 130.0), up), None, "jump across against the velocity");
        assert_eq!(l.observe(1, (100.0, 85.0), up), None, "back on its side: nothing to count");
        // A real crossing with the velocity still counts.
        let down = Some((0.0, 50.0));
        assert_eq!(l.observe(2, (100.0, 90.0), down), None);
        assert_eq!(l.observe(2, (100.0, 110.0), down), Some(Crossing::Forward));
    }

    #[test]
    fn first_seen_in_the_band_then_far_beyond_counts_but_band_jitter_does_not() {
        let mut l = line();
        // Seen at 98 (inside the 5 px band), next at 140: a 42 px step across the line.
        assert_eq!(feed(&mut l, 1, &[98.0, 140.0]), vec![Crossing::Forward]);
        // Seen at 98, then at 106: a small step (8 px < 2 × band) is jitter, not a crossing.
        assert!(feed(&mut l, 2, &[98.0, 106.0, 112.0]).is_empty());
        // Seen at 103 (inside, right half), then at 140: never on the other side.
        assert!(feed(&mut l, 3, &[103.0, 140.0]).is_empty());
        // Seen well above, then just past the line (inside the band) after a 38 px step: the
        // vehicle moved across; the next observation may never come.
        assert_eq!(feed(&mut l, 4, &[60.0, 98.0]), Vec::<Crossing>::new(), "still on its side");
        assert_eq!(feed(&mut l, 5, &[60.0, 102.0]), vec![Crossing::Forward]);
        // Jitter from just outside the band to just inside the other half is not motion.
        assert!(feed(&mut l, 6, &[94.0, 102.0, 93.0, 103.0]).is_empty());
    }

    #[test]
    fn a_track_handed_over_counts_once() {
        let mut l = line();
        // Track 1 is seen above the line and lost; track 2 continues it below: one crossing.
        assert!(feed(&mut l, 1, &[40.0, 60.0]).is_empty());
        l.hand_over(1, 2);
        assert_eq!(feed(&mut l, 2, &[150.0, 170.0]), vec![Crossing::Forward]);
        // Track 1 reappearing below does not count the same object again.
        assert!(feed(&mut l, 1, &[160.0]).is_empty());
        // A track that already counted hands over "counted": its continuation counts no more.
        assert_eq!(feed(&mut l, 3, &[60.0, 150.0]), vec![Crossing::Forward]);
        l.hand_over(3, 4);
        assert!(feed(&mut l, 4, &[170.0, 60.0, 40.0]).is_empty());
    }

    #[test]
    fn two_way_traffic_counts_each_direction() {
        let mut l = line();
        let mut got = Vec::new();
        for step in 0..20 {
            let t = step as f32 * 10.0;
            // Tracks 1–3 go down, 4–5 go up, at different x.
            for id in 1..=3u64 {
                got.extend(l.observe(id, (id as f32 * 30.0, 20.0 + t), Some((0.0, 100.0))));
            }
            for id in 4..=5u64 {
                got.extend(l.observe(id, (id as f32 * 30.0, 190.0 - t), Some((0.0, -100.0))));
            }
        }
        assert_eq!(got.iter().filter(|c| **c == Crossing::Forward).count(), 3);
        assert_eq!(got.iter().filter(|c| **c == Crossing::Backward).count(), 2);
    }
}
