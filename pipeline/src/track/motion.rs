//! Where an object will be at the next detection, for association that survives large motion.
//!
//! A track seen once has no velocity, and when detections are far apart in time (a camera
//! detected a few times a second) a vehicle moves more than its own length between them, so
//! its second box does not overlap the first. [`MotionPrior`] proposes displacements for such
//! a track, in box heights per second (a perspective-free unit: a vehicle's speed in pixels and
//! its box both shrink with distance):
//! - the **local flow** learned from confirmed tracks that passed the same part of the image
//!   recently (a coarse grid, each cell a time-decayed mean velocity); a queue has ≈ zero flow,
//!   a moving platoon its own speed;
//! - where no flow is known yet, the scene's configured **directions of travel**: across a
//!   counting line (either way) near it, a zone's `direction` inside it, at the camera's
//!   typical speed (configured, else learned from confirmed tracks);
//! - standing still (a parked or queueing vehicle), slightly less preferred when another
//!   hypothesis exists.
//!
//! Pure and deterministic: it learns only from what the tracker feeds it, on stream time.

use std::time::Duration;

use crate::geometry::BBox;

pub type Point = (f32, f32);

/// A part of the image with known directions of travel (pixels).
#[derive(Debug, Clone, PartialEq)]
pub enum PriorRegion {
    /// Near a counting line `a`–`b`: objects travel across it, either way.
    Line { a: Point, b: Point },
    /// Inside a polygon whose traffic travels along `direction`.
    Zone { polygon: Vec<Point>, direction: Point },
}

/// A line's region reaches this many box heights from the segment (beyond every line's
/// region, the nearest line's direction is used).
const LINE_REACH_HEIGHTS: f32 = 4.0;
/// Typical speed before any is configured or learned (box heights per second).
pub const DEFAULT_TYPICAL_SPEED: f32 = 3.0;
/// Flow cells: this many columns and rows over the frame.
const FLOW_COLS: usize = 12;
const FLOW_ROWS: usize = 8;
/// A flow sample's weight halves after this long (stream time).
const FLOW_HALF_LIFE_SECS: f32 = 20.0;
/// A cell's flow is used once its decayed weight reaches this (about two tracks' samples).
const FLOW_MIN_WEIGHT: f32 = 2.0;
const FLOW_MAX_WEIGHT: f32 = 30.0;
/// Speeds below this (box heights per second) are a standing object, not a typical speed.
const MOVING_SPEED: f32 = 0.5;
/// Preference of the standing-still hypothesis when a moving one exists.
const STANDING_FACTOR: f32 = 0.9;

#[derive(Debug, Clone, Copy, Default)]
struct FlowCell {
    /// Mean velocity, box heights per second.
    vx: f32,
    vy: f32,
    weight: f32,
    at: Duration,
}

impl FlowCell {
    fn decayed(&self, now: Duration) -> f32 {
        let age = now.saturating_sub(self.at).as_secs_f32();
        self.weight * 0.5f32.powf(age / FLOW_HALF_LIFE_SECS)
    }
}

/// One proposed displacement: pixels per second, and how much it is preferred (≤ 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hypothesis {
    pub velocity: Point,
    pub factor: f32,
}

#[derive(Debug, Clone)]
pub struct MotionPrior {
    width: f32,
    height: f32,
    regions: Vec<PriorRegion>,
    cells: Vec<FlowCell>,
    /// Typical speed, box heights per second.
    speed: f32,
    /// Whether `speed` is learned (not configured).
    learn_speed: bool,
}

impl MotionPrior {
    /// For a `width` × `height` frame; `typical_speed` in box heights per second (`None`:
    /// start at [`DEFAULT_TYPICAL_SPEED`] and learn it).
    pub fn new(width: u32, height: u32, regions: Vec<PriorRegion>, typical_speed: Option<f32>) -> Self {
        MotionPrior {
            width: width.max(1) as f32,
            height: height.max(1) as f32,
            regions,
            cells: vec![FlowCell::default(); FLOW_COLS * FLOW_ROWS],
            speed: typical_speed.unwrap_or(DEFAULT_TYPICAL_SPEED),
            learn_speed: typical_speed.is_none(),
        }
    }

    /// Typical speed now, box heights per second.
    pub fn typical_speed(&self) -> f32 {
        self.speed
    }

    fn cell(&self, p: Point) -> usize {
        let c = ((p.0 / self.width * FLOW_COLS as f32).floor().max(0.0) as usize).min(FLOW_COLS - 1);
        let r = ((p.1 / self.height * FLOW_ROWS as f32).floor().max(0.0) as usize).min(FLOW_ROWS - 1);
        r * FLOW_COLS + c
    }

    /// A confirmed track's velocity (pixels per second) at box `b`, seen at `now`.
    pub fn learn(&mut self, b: &BBox, velocity: Point, now: Duration) {
        let h = b.height().max(1.0);
        let (vx, vy) = (velocity.0 / h, velocity.1 / h);
        if !(vx.is_finite() && vy.is_finite()) {
            return;
        }
        let i = self.cell(b.center());
        let cell = &mut self.cells[i];
        let w = cell.decayed(now);
        cell.vx = (cell.vx * w + vx) / (w + 1.0);
        cell.vy = (cell.vy * w + vy) / (w + 1.0);
        cell.weight = (w + 1.0).min(FLOW_MAX_WEIGHT);
        cell.at = now;
        let speed = (vx * vx + vy * vy).sqrt();
        if self.learn_speed && speed > MOVING_SPEED {
            self.speed += 0.05 * (speed.min(20.0) - self.speed);
        }
    }

    /// Displacements to try for an object at box `b` without a velocity of its own.
    pub fn hypotheses(&self, b: &BBox, now: Duration, out: &mut Vec<Hypothesis>) {
        out.clear();
        let h = b.height().max(1.0);
        let c = b.center();
        let cell = &self.cells[self.cell(c)];
        if cell.decayed(now) >= FLOW_MIN_WEIGHT {
            let (vx, vy) = (cell.vx * h, cell.vy * h);
            let moving = (cell.vx * cell.vx + cell.vy * cell.vy).sqrt() > MOVING_SPEED;
            out.push(Hypothesis { velocity: (vx, vy), factor: 1.0 });
            if moving {
                out.push(Hypothesis { velocity: (0.0, 0.0), factor: STANDING_FACTOR });
            }
            return;
        }
        let speed = self.speed * h;
        let across = |a: Point, end: Point, out: &mut Vec<Hypothesis>| {
            let (dx, dy) = (end.0 - a.0, end.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-6);
            let n = (-dy / len, dx / len);
            out.push(Hypothesis { velocity: (n.0 * speed, n.1 * speed), factor: 1.0 });
            out.push(Hypothesis { velocity: (-n.0 * speed, -n.1 * speed), factor: 1.0 });
        };
        // Zones containing it, lines near it; else the nearest line (the road it is on most
        // likely leads there).
        let mut nearest: Option<(f32, Point, Point)> = None;
        for region in &self.regions {
            match region {
                PriorRegion::Line { a, b: end } => {
                    let d = distance_to_segment(c, *a, *end);
                    if d <= LINE_REACH_HEIGHTS * h {
                        across(*a, *end, out);
                    } else if nearest.is_none_or(|(best, _, _)| d < best) {
                        nearest = Some((d, *a, *end));
                    }
                }
                PriorRegion::Zone { polygon, direction } => {
                    if !crate::geometry::point_in_polygon(c, polygon) {
                        continue;
                    }
                    let len = (direction.0 * direction.0 + direction.1 * direction.1).sqrt().max(1e-6);
                    out.push(Hypothesis { velocity: (direction.0 / len * speed, direction.1 / len * speed), factor: 1.0 });
                }
            }
        }
        if let (true, Some((_, a, end))) = (out.is_empty(), nearest) {
            across(a, end, out);
        }
        let factor = if out.is_empty() { 1.0 } else { STANDING_FACTOR };
        out.push(Hypothesis { velocity: (0.0, 0.0), factor });
    }
}

fn distance_to_segment(p: Point, a: Point, b: Point) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = (dx * dx + dy * dy).max(1e-9);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0);
    let (qx, qy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - qx).powi(2) + (p.1 - qy).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn near_a_line_both_crossing_directions_and_standing_still() {
        let prior = MotionPrior::new(400, 400, vec![PriorRegion::Line { a: (0.0, 200.0), b: (400.0, 200.0) }], Some(4.0));
        let mut hyps = Vec::new();
        prior.hypotheses(&BBox::from_center(100.0, 150.0, 20.0, 20.0), ms(0), &mut hyps);
        let v: Vec<Point> = hyps.iter().map(|h| h.velocity).collect();
        // Normal of a left-to-right line in y-down coordinates is (0, 1): 4 heights/s = 80 px/s.
        assert!(v.contains(&(0.0, 80.0)) && v.contains(&(-0.0, -80.0)) && v.contains(&(0.0, 0.0)), "{v:?}");
        // Far from the line: still its direction (the nearest line), and standing still.
        prior.hypotheses(&BBox::from_center(100.0, 20.0, 10.0, 10.0), ms(0), &mut hyps);
        assert_eq!(hyps.len(), 3, "{hyps:?}");
        // No line, no zone: only standing still.
        let bare = MotionPrior::new(400, 400, vec![], None);
        bare.hypotheses(&BBox::from_center(100.0, 20.0, 10.0, 10.0), ms(0), &mut hyps);
        assert_eq!(hyps, vec![Hypothesis { velocity: (0.0, 0.0), factor: 1.0 }]);
    }

    #[test]
    fn learned_flow_takes_over_and_fades() {
        let mut prior = MotionPrior::new(400, 400, vec![], None);
        let b = BBox::from_center(100.0, 100.0, 20.0, 20.0);
        for i in 0..5 {
            prior.learn(&b, (0.0, 100.0), ms(i * 100));
        }
        let mut hyps = Vec::new();
        prior.hypotheses(&b, ms(500), &mut hyps);
        assert!(hyps[0].velocity.0.abs() < 1e-3 && (hyps[0].velocity.1 - 100.0).abs() < 1e-3, "{hyps:?}");
        assert!(prior.typical_speed() > DEFAULT_TYPICAL_SPEED, "learned towards 5 heights/s");
        // A minute later the cell's samples have faded: back to standing still only.
        prior.hypotheses(&b, ms(80_000), &mut hyps);
        assert_eq!(hyps.len(), 1);
        assert_eq!(hyps[0].velocity, (0.0, 0.0));
    }
}
