//! Multi-object tracking: ByteTrack (Zhang et al., 2022).
//!
//! Per frame: predict every track (Kalman, stream-time steps); associate high-score detections
//! with tracked and lost tracks by IoU (optimal assignment); associate the remaining tracked
//! tracks with low-score detections (this is ByteTrack's key idea: occluded objects score low);
//! let unconfirmed tracks take what is left; start tracks from unmatched confident detections;
//! drop tracks lost for longer than `lost_timeout`. Pure, synchronous and deterministic:
//! the same detections and timestamps always give the same tracks and ids.
//!
//! Large motion (few detections a second, fast vehicles): each association cascades from the
//! strict IoU match to a **buffered** one (C-BIoU: both boxes enlarged by a buffer that grows
//! with the time since the track was last seen), gated by the predicted centre's distance in
//! box heights and by size. A track seen once has no velocity; its candidates come from the
//! [`MotionPrior`] (learned local flow, or the scene's directions of travel at a typical speed,
//! or standing still), so the second box of a fast vehicle is looked for where it will be.
//! The lost timeout and an unconfirmed track's grace stretch with the detection interval.

mod kalman;
pub mod motion;

use std::time::Duration;

use pathfinding::prelude::{kuhn_munkres, Matrix};

use crate::cadence::Cadence;
use crate::geometry::BBox;
pub use kalman::Kalman;
pub use motion::{Hypothesis, MotionPrior, PriorRegion};

/// What the tracker consumes: a box, its score and its (model) class id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackInput {
    pub bbox: BBox,
    pub score: f32,
    pub class_id: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Detections at or above this score take part in the first association.
    pub high_score: f32,
    /// Detections between `low_score` and `high_score` only extend existing tracks.
    pub low_score: f32,
    /// An unmatched detection at or above this score starts a track.
    pub new_track_score: f32,
    /// Minimum IoU for a match in the first association.
    pub match_iou: f32,
    /// Minimum IoU for a match with a low-score detection.
    pub low_match_iou: f32,
    /// Minimum IoU for an unconfirmed track to take a detection.
    pub unconfirmed_match_iou: f32,
    /// A track not seen for this long (stream time) is removed; at low detection rates at
    /// least [`LOST_INTERVALS`] detection intervals.
    pub lost_timeout: Duration,
    /// Buffered association: buffer (fraction of the box's size added on each side) at a gap
    /// of zero, its growth per second since the track was last seen, and its cap.
    pub buffer_base: f32,
    pub buffer_per_sec: f32,
    pub buffer_max: f32,
    /// Least buffered IoU of a buffered match.
    pub buffered_match_iou: f32,
    /// Typical speed of the camera's traffic in box heights per second, for tracks seen once
    /// (`None`: learned from confirmed tracks).
    pub typical_speed: Option<f32>,
    /// The large-motion association (buffered cascade, motion prior, rate-scaled timeouts).
    /// Off: plain ByteTrack, as before it existed (for comparisons in one run).
    pub large_motion: bool,
}

/// The lost timeout is at least this many detection intervals (a track at 2.5 detected
/// frames per second survives two missed detections).
pub const LOST_INTERVALS: f32 = 3.0;
/// Below this many detected frames per second an unconfirmed track survives one missed
/// detection instead of none (at 2.5 fps a vehicle is in view for a handful of detections).
const UNCONFIRMED_GRACE_BELOW_FPS: f32 = 10.0;
/// A buffered match's centre lies within this many (track) box heights of the prediction,
/// plus [`GATE_HEIGHTS_PER_SEC`] per second since the track was last seen.
const GATE_HEIGHTS: f32 = 0.25;
const GATE_HEIGHTS_PER_SEC: f32 = 3.0;
/// A buffered match's height and width differ from the track's by at most this factor.
const SIZE_RATIO: f32 = 1.8;
/// Buffered association is for tracks last seen at most this many detection intervals ago.
const BUFFERED_MAX_INTERVALS: f32 = 2.5;

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            high_score: 0.5,
            low_score: 0.1,
            new_track_score: 0.6,
            match_iou: 0.2,
            low_match_iou: 0.5,
            unconfirmed_match_iou: 0.3,
            lost_timeout: Duration::from_secs(1),
            buffer_base: 0.3,
            buffer_per_sec: 0.5,
            buffer_max: 1.0,
            buffered_match_iou: 0.2,
            typical_speed: None,
            large_motion: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackState {
    /// Seen once, not yet confirmed.
    New,
    /// Matched in the current frame.
    Tracked,
    /// Not matched in the current frame; kept until `lost_timeout`.
    Lost,
}

/// A track as reported to analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u64,
    /// The last matched detection's box (source pixels).
    pub bbox: BBox,
    pub score: f32,
    /// Most likely class: the one with the highest summed detection score.
    pub class_id: u16,
    /// Centre velocity in pixels per second of stream time.
    pub velocity: (f32, f32),
    pub state: TrackState,
    /// Stream time the track was last matched.
    pub last_seen: Duration,
    pub first_seen: Duration,
    /// The box it was first seen with (at `first_seen`), before it was confirmed.
    pub first_bbox: BBox,
    pub hits: u32,
}

struct TrackSlot {
    track: Track,
    kalman: Kalman,
    class_votes: Vec<(u16, f32)>,
}

impl TrackSlot {
    fn predicted_box(&self) -> BBox {
        let [cx, cy, a, h] = self.kalman.state();
        BBox::from_center(cx, cy, a * h, h)
    }

    fn vote(&mut self, class_id: u16, score: f32) {
        match self.class_votes.iter_mut().find(|(c, _)| *c == class_id) {
            Some((_, s)) => *s += score,
            None => self.class_votes.push((class_id, score)),
        }
        self.track.class_id = self
            .class_votes
            .iter()
            .fold((class_id, f32::MIN), |best, &(c, s)| if s > best.1 { (c, s) } else { best })
            .0;
    }

    fn apply(&mut self, det: &TrackInput, now: Duration) {
        self.kalman.update(measure(&det.bbox));
        self.track.bbox = det.bbox;
        self.track.score = det.score;
        self.track.velocity = self.kalman.velocity();
        self.track.last_seen = now;
        self.track.hits += 1;
        self.track.state = TrackState::Tracked;
        self.vote(det.class_id, det.score);
    }
}

fn measure(b: &BBox) -> [f32; 4] {
    let (cx, cy) = b.center();
    let h = b.height().max(1e-3);
    [cx, cy, b.width() / h, h]
}

/// What one [`Tracker::update`] reports.
#[derive(Debug, Default)]
pub struct TrackUpdate {
    /// Confirmed tracks matched in this frame.
    pub active: Vec<Track>,
    /// Ids of confirmed tracks removed in this frame (lost for longer than the timeout).
    pub removed: Vec<Track>,
}

pub struct Tracker {
    config: TrackerConfig,
    slots: Vec<TrackSlot>,
    next_id: u64,
    frames: u64,
    /// How often updates come (the detection rate).
    cadence: Cadence,
    prior: Option<MotionPrior>,
    hyps: Vec<Hypothesis>,
}

/// Buffered IoU: both boxes enlarged by `buffer` of their size on each side.
fn buffered_iou(a: &BBox, b: &BBox, buffer: f32) -> f32 {
    let grow = |x: &BBox| {
        let (cx, cy) = x.center();
        BBox::from_center(cx, cy, x.width() * (1.0 + 2.0 * buffer), x.height() * (1.0 + 2.0 * buffer))
    };
    grow(a).iou(&grow(b))
}

fn shifted(b: &BBox, dx: f32, dy: f32) -> BBox {
    BBox { x1: b.x1 + dx, y1: b.y1 + dy, x2: b.x2 + dx, y2: b.y2 + dy }
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker { config, slots: Vec::new(), next_id: 1, frames: 0, cadence: Cadence::default(), prior: None, hyps: Vec::new() }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The scene's directions of travel for a `width` × `height` frame (the processor sets it
    /// at the first frame). Without it, a track seen once is only looked for standing still
    /// or along the flow learned so far... which needs a frame size: so no prior at all.
    pub fn set_scene(&mut self, width: u32, height: u32, regions: Vec<PriorRegion>) {
        self.prior = Some(MotionPrior::new(width, height, regions, self.config.typical_speed));
    }

    fn lost_timeout(&self) -> Duration {
        if !self.config.large_motion {
            return self.config.lost_timeout;
        }
        self.config.lost_timeout.max(self.cadence.times(LOST_INTERVALS))
    }

    /// Whether detections come so rarely that unconfirmed tracks get a grace and any
    /// high-score detection may start a track.
    fn low_rate(&self) -> bool {
        self.config.large_motion && self.cadence.slower_than(UNCONFIRMED_GRACE_BELOW_FPS)
    }

    /// Buffer for a track last seen `gap` seconds ago.
    fn buffer(&self, gap: f32) -> f32 {
        (self.config.buffer_base + self.config.buffer_per_sec * gap).min(self.config.buffer_max)
    }

    /// Feeds one frame's detections at stream time `now`.
    pub fn update(&mut self, detections: &[TrackInput], now: Duration) -> TrackUpdate {
        let dt = self.cadence.observe(now);
        self.frames += 1;
        for slot in &mut self.slots {
            slot.kalman.predict(dt);
        }
        let (high_score, low_score, match_iou) = (self.config.high_score, self.config.low_score, self.config.match_iou);
        let high: Vec<usize> = (0..detections.len()).filter(|&i| detections[i].score >= high_score).collect();
        let low: Vec<usize> =
            (0..detections.len()).filter(|&i| detections[i].score >= low_score && detections[i].score < high_score).collect();

        // 1. High-score detections ↔ confirmed tracks (tracked or lost).
        let confirmed: Vec<usize> = (0..self.slots.len()).filter(|&s| self.slots[s].track.state != TrackState::New).collect();
        let (m1, unmatched_tracks, unmatched_high) = self.associate(&confirmed, &high, detections, match_iou);
        for &(s, d) in &m1 {
            self.slots[s].apply(&detections[d], now);
        }
        // 1b. What is left of both, buffered (large motion, a long gap).
        let (m1b, unmatched_tracks, unmatched_high) = self.associate_buffered(&unmatched_tracks, &unmatched_high, detections, now);
        for &(s, d) in &m1b {
            self.slots[s].apply(&detections[d], now);
        }
        // 2. Remaining tracks that were tracked last frame ↔ low-score detections.
        let still_tracked: Vec<usize> =
            unmatched_tracks.iter().copied().filter(|&s| self.slots[s].track.state == TrackState::Tracked).collect();
        let (m2, unmatched_after_low, _) = self.associate(&still_tracked, &low, detections, self.config.low_match_iou);
        for &(s, d) in &m2 {
            self.slots[s].apply(&detections[d], now);
        }
        for &s in &unmatched_after_low {
            self.slots[s].track.state = TrackState::Lost;
        }
        for &s in &unmatched_tracks {
            if !still_tracked.contains(&s) {
                self.slots[s].track.state = TrackState::Lost;
            }
        }
        // 3. Unconfirmed tracks ↔ leftover high-score detections.
        let unconfirmed: Vec<usize> = (0..self.slots.len()).filter(|&s| self.slots[s].track.state == TrackState::New).collect();
        let (m3, failed_new, leftover) =
            self.associate(&unconfirmed, &unmatched_high, detections, self.config.unconfirmed_match_iou);
        for &(s, d) in &m3 {
            self.slots[s].apply(&detections[d], now); // New → Tracked: confirmed
        }
        let (m3b, failed_new, leftover) = self.associate_buffered(&failed_new, &leftover, detections, now);
        for &(s, d) in &m3b {
            self.slots[s].apply(&detections[d], now);
        }
        // An unconfirmed track dies when unmatched; at low detection rates it may miss one.
        let grace = if self.low_rate() { self.cadence.times(1.5).as_secs_f32() } else { 0.0 };
        let mut dead = vec![false; self.slots.len()];
        for &s in &failed_new {
            dead[s] = now.saturating_sub(self.slots[s].track.last_seen).as_secs_f32() > grace;
        }
        // 4. New tracks from confident leftovers (confirmed at once on the very first frame).
        // At low detection rates every high-score detection may start one: a vehicle is seen
        // a handful of times, and the track still needs a second match to be confirmed.
        let first_frame = self.frames == 1;
        let new_track_score =
            if self.low_rate() { self.config.new_track_score.min(self.config.high_score) } else { self.config.new_track_score };
        for &d in &leftover {
            let det = &detections[d];
            if det.score < new_track_score {
                continue;
            }
            let mut slot = TrackSlot {
                track: Track {
                    id: 0,
                    bbox: det.bbox,
                    score: det.score,
                    class_id: det.class_id,
                    velocity: (0.0, 0.0),
                    state: if first_frame { TrackState::Tracked } else { TrackState::New },
                    last_seen: now,
                    first_seen: now,
                    first_bbox: det.bbox,
                    hits: 1,
                },
                kalman: Kalman::new(measure(&det.bbox)),
                class_votes: Vec::with_capacity(2),
            };
            slot.vote(det.class_id, det.score);
            self.slots.push(slot);
            dead.push(false);
        }
        // 5. Expire lost tracks; assign ids to tracks confirmed this frame.
        let timeout = self.lost_timeout();
        let mut update = TrackUpdate::default();
        let mut i = 0;
        self.slots.retain(|slot| {
            let expired = dead[i]
                || (slot.track.state == TrackState::Lost && now.saturating_sub(slot.track.last_seen) > timeout);
            i += 1;
            if expired && slot.track.id != 0 {
                update.removed.push(slot.track.clone());
            }
            !expired
        });
        for slot in &mut self.slots {
            if slot.track.state == TrackState::Tracked {
                if slot.track.id == 0 {
                    slot.track.id = self.next_id;
                    self.next_id += 1;
                }
                if slot.track.last_seen == now {
                    update.active.push(slot.track.clone());
                }
            }
        }
        if let Some(prior) = &mut self.prior {
            // Velocity is trustworthy from the third observation on.
            for t in update.active.iter().filter(|t| t.hits >= 3) {
                prior.learn(&t.bbox, t.velocity, now);
            }
        }
        update
    }

    /// Buffered association of what the strict stage left: candidate boxes (the Kalman
    /// prediction for a track with a velocity, the motion prior's hypotheses for one seen
    /// once) against detections, both enlarged by the gap-dependent buffer; gated by centre
    /// distance (box heights) and size. Weight: the best hypothesis's buffered IoU × its factor.
    fn associate_buffered(
        &mut self,
        tracks: &[usize],
        dets: &[usize],
        detections: &[TrackInput],
        now: Duration,
    ) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
        if tracks.is_empty() || dets.is_empty() || !self.config.large_motion {
            return (Vec::new(), tracks.to_vec(), dets.to_vec());
        }
        // Only tracks that missed at most a detection or two: a track lost for longer is found
        // again by the strict stage or not at all (its prediction has drifted too far to trust
        // a loose match next to other objects).
        let max_gap = self.cadence.times(BUFFERED_MAX_INTERVALS).as_secs_f32();
        let (tracks, stale): (Vec<usize>, Vec<usize>) =
            tracks.iter().partition(|&&s| now.saturating_sub(self.slots[s].track.last_seen).as_secs_f32() <= max_gap + 1e-4);
        let mut hyps = std::mem::take(&mut self.hyps);
        // Per track: candidate boxes with their factor, buffer and gate radius (pixels).
        let candidates: Vec<(Vec<(BBox, f32)>, f32, f32, f32)> = tracks
            .iter()
            .map(|&s| {
                let slot = &self.slots[s];
                let gap = now.saturating_sub(slot.track.last_seen).as_secs_f32();
                let h = slot.track.bbox.height().max(1.0);
                let gate = (GATE_HEIGHTS + GATE_HEIGHTS_PER_SEC * gap) * h;
                let boxes = if slot.track.hits >= 2 {
                    vec![(slot.predicted_box(), 1.0)]
                } else {
                    match &self.prior {
                        Some(prior) => {
                            prior.hypotheses(&slot.track.bbox, now, &mut hyps);
                            hyps.iter()
                                .map(|hy| (shifted(&slot.track.bbox, hy.velocity.0 * gap, hy.velocity.1 * gap), hy.factor))
                                .collect()
                        }
                        None => vec![(slot.track.bbox, 1.0)],
                    }
                };
                (boxes, self.buffer(gap), gate, h)
            })
            .collect();
        self.hyps = hyps;
        let min_iou = self.config.buffered_match_iou;
        let weight = |t: usize, d: usize| -> f32 {
            let det = &detections[dets[d]].bbox;
            let (boxes, buffer, gate, h) = &candidates[t];
            let w_track = self.slots[tracks[t]].track.bbox.width().max(1.0);
            let ratio = |a: f32, b: f32| if a > b { a / b } else { b / a.max(1e-3) };
            if ratio(det.height().max(1e-3), *h) > SIZE_RATIO || ratio(det.width().max(1e-3), w_track) > SIZE_RATIO {
                return 0.0;
            }
            let (dx, dy) = det.center();
            boxes
                .iter()
                .filter(|(b, _)| {
                    let (cx, cy) = b.center();
                    ((cx - dx).powi(2) + (cy - dy).powi(2)).sqrt() <= *gate
                })
                .map(|(b, factor)| buffered_iou(b, det, *buffer) * factor)
                .filter(|&v| v >= min_iou)
                .fold(0.0, f32::max)
        };
        let (matches, mut unmatched, dets) = assign(&tracks, dets, weight);
        unmatched.extend(stale);
        unmatched.sort_unstable();
        (matches, unmatched, dets)
    }

    /// Optimal assignment of `tracks` to `dets` maximising total IoU of the predicted boxes;
    /// pairs below `min_iou` are not matches. Returns (matches (slot, det), unmatched slots,
    /// unmatched dets).
    fn associate(
        &self,
        tracks: &[usize],
        dets: &[usize],
        detections: &[TrackInput],
        min_iou: f32,
    ) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
        if tracks.is_empty() || dets.is_empty() {
            return (Vec::new(), tracks.to_vec(), dets.to_vec());
        }
        let predicted: Vec<BBox> = tracks.iter().map(|&s| self.slots[s].predicted_box()).collect();
        assign(tracks, dets, |t, d| {
            let iou = predicted[t].iou(&detections[dets[d]].bbox);
            if iou >= min_iou {
                iou
            } else {
                0.0
            }
        })
    }
}

/// Optimal assignment (Kuhn–Munkres) of `tracks` to `dets` maximising the total weight
/// (`weight(t, d)` for indexes into both; 0 = not a match). Returns (matches (slot, det),
/// unmatched slots, unmatched dets).
fn assign(tracks: &[usize], dets: &[usize], weight: impl Fn(usize, usize) -> f32) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    if tracks.is_empty() || dets.is_empty() {
        return (Vec::new(), tracks.to_vec(), dets.to_vec());
    }
    // Weights in parts per million: integer, so the assignment is exact and deterministic.
    let w: Vec<i64> = (0..tracks.len() * dets.len()).map(|i| (weight(i / dets.len(), i % dets.len()) * 1e6) as i64).collect();
    let at = |t: usize, d: usize| w[t * dets.len() + d];
    let transpose = tracks.len() > dets.len();
    let (rows, cols) = if transpose { (dets.len(), tracks.len()) } else { (tracks.len(), dets.len()) };
    let matrix = Matrix::from_fn(rows, cols, |(r, c)| if transpose { at(c, r) } else { at(r, c) });
    let (_, assignment) = kuhn_munkres(&matrix);
    let mut matches = Vec::new();
    let mut track_used = vec![false; tracks.len()];
    let mut det_used = vec![false; dets.len()];
    for (r, &c) in assignment.iter().enumerate() {
        let (t, d) = if transpose { (c, r) } else { (r, c) };
        if at(t, d) > 0 {
            matches.push((tracks[t], dets[d]));
            track_used[t] = true;
            det_used[d] = true;
        }
    }
    matches.sort_unstable();
    let unmatched_tracks = tracks.iter().zip(&track_used).filter(|(_, &u)| !u).map(|(&s, _)| s).collect();
    let unmatched_dets = dets.iter().zip(&det_used).filter(|(_, &u)| !u).map(|(&d, _)| d).collect();
    (matches, unmatched_tracks, unmatched_dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, score: f32) -> TrackInput {
        TrackInput { bbox: BBox::from_xywh(x, y, 40.0, 30.0), score, class_id: 2 }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn keeps_ids_for_two_moving_objects() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut ids = Vec::new();
        for f in 0..30u64 {
            let x = f as f32 * 5.0;
            let up = t.update(&[det(x, 0.0, 0.9), det(400.0 - x, 100.0, 0.8)], ms(f * 40));
            assert_eq!(up.active.len(), 2, "frame {f}");
            let mut frame_ids: Vec<u64> = up.active.iter().map(|t| t.id).collect();
            frame_ids.sort_unstable();
            ids.push(frame_ids);
        }
        assert!(ids.iter().all(|i| i == &ids[0]), "ids changed: {ids:?}");
    }

    #[test]
    fn low_score_detections_keep_a_track_alive() {
        let mut t = Tracker::new(TrackerConfig::default());
        let first = t.update(&[det(0.0, 0.0, 0.9)], ms(0)).active[0].id;
        // Occluded: score drops to 0.3 — only the second association can take it.
        for f in 1..5u64 {
            let up = t.update(&[det(f as f32 * 2.0, 0.0, 0.3)], ms(f * 40));
            assert_eq!(up.active.len(), 1);
            assert_eq!(up.active[0].id, first);
        }
    }

    #[test]
    fn survives_an_occlusion_gap_and_expires_after_timeout() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut id = 0;
        for f in 0..10u64 {
            id = t.update(&[det(f as f32 * 4.0, 0.0, 0.9)], ms(f * 40)).active[0].id;
        }
        // 8 frames (320 ms) with no detection, then it reappears where it should be.
        for f in 10..18u64 {
            assert!(t.update(&[], ms(f * 40)).active.is_empty());
        }
        let back = t.update(&[det(18.0 * 4.0, 0.0, 0.9)], ms(18 * 40));
        assert_eq!(back.active.len(), 1);
        assert_eq!(back.active[0].id, id, "re-identified after the gap");
        // Gone for longer than the 1 s timeout: removed and reported.
        let mut removed = Vec::new();
        for f in 19..50u64 {
            removed.extend(t.update(&[], ms(f * 40)).removed);
        }
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].id, id);
    }

    #[test]
    fn spurious_single_detection_never_gets_an_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(&[det(0.0, 0.0, 0.9)], ms(0));
        let up = t.update(&[det(0.0, 0.0, 0.9), det(500.0, 500.0, 0.9)], ms(40));
        assert_eq!(up.active.len(), 1, "the new detection is unconfirmed");
        let up = t.update(&[det(0.0, 0.0, 0.9)], ms(80));
        assert_eq!(up.active.len(), 1);
        assert_eq!(up.active[0].id, 1);
        // The next confirmed track gets id 2: unconfirmed ones consume no id.
        t.update(&[det(0.0, 0.0, 0.9), det(300.0, 300.0, 0.9)], ms(120));
        let up = t.update(&[det(0.0, 0.0, 0.9), det(300.0, 300.0, 0.9)], ms(160));
        let ids: Vec<u64> = up.active.iter().map(|t| t.id).collect();
        assert!(ids.contains(&2), "{ids:?}");
    }

    #[test]
    fn deterministic() {
        let run = || {
            let mut t = Tracker::new(TrackerConfig::default());
            let mut out = Vec::new();
            for f in 0..50u64 {
                let dets: Vec<_> = (0..20).map(|k| det(k as f32 * 50.0 + f as f32, (k % 3) as f32 * 60.0, 0.7)).collect();
                out.push(t.update(&dets, ms(f * 33)).active);
            }
            out
        };
        assert_eq!(run(), run());
    }
}
