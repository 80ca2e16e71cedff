//! Multi-object tracking accuracy: CLEAR MOT (MOTA, MOTP, ID switches) and the identity
//! measures (IDF1, IDP, IDR) of Ristani et al. 2016, against MOT-style CSV
//! `frame,track_id,x,y,w,h[,…]` (header optional, further columns ignored: MOTChallenge files
//! and `edge-agent track` output both read as they are).
//!
//! Every frame that appears in either file is evaluated: a prediction on a frame without
//! ground truth is a false positive. A ground-truth box and a prediction can match when their
//! IoU is at least the threshold.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use anyhow::Context;
use roadsight_pipeline::geometry::BBox;
use serde::Serialize;

use super::assign::min_cost_assignment;

/// Boxes of one frame: (track id, box).
type FrameBoxes = Vec<(u64, BBox)>;

/// A whole sequence: frame → its boxes, each track id at most once per frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sequence {
    pub frames: BTreeMap<u64, FrameBoxes>,
}

impl Sequence {
    /// Adds one box; a track id twice in a frame is an error (the file is inconsistent).
    pub fn push(&mut self, frame: u64, id: u64, bbox: BBox) -> Result<(), String> {
        let boxes = self.frames.entry(frame).or_default();
        if boxes.iter().any(|(i, _)| *i == id) {
            return Err(format!("track {id} appears twice in frame {frame}"));
        }
        boxes.push((id, bbox));
        Ok(())
    }

    /// Drops the frames `other` has no boxes on.
    pub fn keep_frames_of(&mut self, other: &Sequence) {
        self.frames.retain(|f, _| other.frames.contains_key(f));
    }

    fn boxes(&self) -> usize {
        self.frames.values().map(Vec::len).sum()
    }

    fn ids(&self) -> BTreeSet<u64> {
        self.frames.values().flatten().map(|(id, _)| *id).collect()
    }
}

/// Reads a MOT-style CSV. The first line is skipped when its first field is not a number
/// (a header); a malformed line is an error naming the file and line.
pub fn read_sequence(path: &Path) -> anyhow::Result<Sequence> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut seq = Sequence::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if i == 0 && fields[0].parse::<f64>().is_err() {
            continue;
        }
        let (frame, id, bbox) =
            parse_row(&fields).with_context(|| format!("{}: line {}: expected frame,track_id,x,y,w,h", path.display(), i + 1))?;
        seq.push(frame, id, bbox).map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), i + 1))?;
    }
    Ok(seq)
}

fn parse_row(fields: &[&str]) -> anyhow::Result<(u64, u64, BBox)> {
    anyhow::ensure!(fields.len() >= 6, "{} field(s)", fields.len());
    let int = |k: usize, what: &str| -> anyhow::Result<u64> {
        fields[k].parse::<u64>().with_context(|| format!("{what} '{}' is not a non-negative integer", fields[k]))
    };
    let num = |k: usize, what: &str| -> anyhow::Result<f32> {
        fields[k].parse::<f32>().ok().filter(|v| v.is_finite()).with_context(|| format!("{what} '{}' is not a number", fields[k]))
    };
    let bbox = BBox::from_xywh(num(2, "x")?, num(3, "y")?, num(4, "w")?, num(5, "h")?);
    Ok((int(0, "frame")?, int(1, "track_id")?, bbox))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MotReport {
    pub iou_threshold: f32,
    /// Frames in either file.
    pub frames: usize,
    pub gt_boxes: usize,
    pub gt_ids: usize,
    pub pred_boxes: usize,
    pub pred_ids: usize,
    pub matches: usize,
    pub false_negatives: usize,
    pub false_positives: usize,
    pub id_switches: usize,
    /// 1 − (FN + FP + IDSW) / GT boxes (can be negative).
    pub mota: f64,
    /// Mean IoU of the matched pairs (higher is better; 0 when nothing matched).
    pub motp: f64,
    pub idtp: usize,
    pub idfp: usize,
    pub idfn: usize,
    pub idf1: f64,
    pub idp: f64,
    pub idr: f64,
}

/// What part of a clip a MOT evaluation scores (ground truth made for part of a clip).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MotScope {
    /// Only frames `first..=last`.
    pub frames: Option<(u64, u64)>,
    /// Only boxes whose bottom centre lies in `[x1, y1, x2, y2]` (pixels), on both sides.
    pub region: Option<[f32; 4]>,
    /// Only the frames the predictions have rows for, anywhere in the picture (tracks made at
    /// a reduced detection rate have none for the frames not detected).
    pub pred_frames_only: bool,
}

impl MotScope {
    fn apply(&self, seq: &mut Sequence) {
        if let Some((first, last)) = self.frames {
            seq.frames.retain(|f, _| (first..=last).contains(f));
        }
        if let Some([x1, y1, x2, y2]) = self.region {
            for boxes in seq.frames.values_mut() {
                boxes.retain(|(_, b)| {
                    let (x, y) = b.bottom_center();
                    (x1..=x2).contains(&x) && (y1..=y2).contains(&y)
                });
            }
            seq.frames.retain(|_, boxes| !boxes.is_empty());
        }
    }
}

pub fn evaluate_files(gt: &Path, pred: &Path, iou_threshold: f32, scope: &MotScope) -> anyhow::Result<MotReport> {
    anyhow::ensure!((0.0..=1.0).contains(&iou_threshold) && iou_threshold > 0.0, "--iou {iou_threshold} is outside (0, 1]");
    let mut gt_seq = read_sequence(gt)?;
    anyhow::ensure!(gt_seq.boxes() > 0, "{}: no ground-truth boxes", gt.display());
    let mut pred_seq = read_sequence(pred)?;
    // Frames with any prediction anywhere (before the region narrows them): the frames the
    // tracker ran on, whether or not it had a track in the region.
    if scope.pred_frames_only {
        gt_seq.keep_frames_of(&pred_seq);
    }
    scope.apply(&mut gt_seq);
    scope.apply(&mut pred_seq);
    anyhow::ensure!(gt_seq.boxes() > 0, "{}: no ground-truth box within the frames and region scored", gt.display());
    Ok(evaluate(&gt_seq, &pred_seq, iou_threshold))
}

/// CLEAR MOT and identity measures of `pred` against `gt`.
pub fn evaluate(gt: &Sequence, pred: &Sequence, iou_threshold: f32) -> MotReport {
    let clear = clear_mot(gt, pred, iou_threshold);
    let idtp = identity_true_positives(gt, pred, iou_threshold);
    let (gt_boxes, pred_boxes) = (gt.boxes(), pred.boxes());
    let (idfn, idfp) = (gt_boxes - idtp, pred_boxes - idtp);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let frames: BTreeSet<u64> = gt.frames.keys().chain(pred.frames.keys()).copied().collect();
    MotReport {
        iou_threshold,
        frames: frames.len(),
        gt_boxes,
        gt_ids: gt.ids().len(),
        pred_boxes,
        pred_ids: pred.ids().len(),
        matches: clear.matches,
        false_negatives: clear.false_negatives,
        false_positives: clear.false_positives,
        id_switches: clear.id_switches,
        mota: if gt_boxes == 0 {
            0.0
        } else {
            1.0 - (clear.false_negatives + clear.false_positives + clear.id_switches) as f64 / gt_boxes as f64
        },
        motp: if clear.matches == 0 { 0.0 } else { clear.iou_sum / clear.matches as f64 },
        idtp,
        idfp,
        idfn,
        idf1: ratio(2 * idtp, 2 * idtp + idfp + idfn),
        idp: ratio(idtp, pred_boxes),
        idr: ratio(idtp, gt_boxes),
    }
}

#[derive(Debug, Default)]
struct Clear {
    matches: usize,
    false_negatives: usize,
    false_positives: usize,
    id_switches: usize,
    iou_sum: f64,
}

/// The CLEAR MOT procedure (Bernardin & Stiefelhagen 2008), frame by frame: a ground-truth
/// object keeps the prediction it was last matched to while their IoU stays above the
/// threshold; the rest are matched by an optimal assignment on IoU; an object matched to a
/// different prediction than last time is an ID switch.
fn clear_mot(gt: &Sequence, pred: &Sequence, thr: f32) -> Clear {
    let empty = Vec::new();
    let frames: BTreeSet<u64> = gt.frames.keys().chain(pred.frames.keys()).copied().collect();
    // Ground-truth id → the prediction id it was last matched to (kept across gaps).
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut c = Clear::default();
    for f in frames {
        let g = gt.frames.get(&f).unwrap_or(&empty);
        let p = pred.frames.get(&f).unwrap_or(&empty);
        let mut g_free = vec![true; g.len()];
        let mut p_free = vec![true; p.len()];
        let mut matched: Vec<(usize, usize, f32)> = Vec::new();
        for (gi, (gid, gbox)) in g.iter().enumerate() {
            let Some(&pid) = last.get(gid) else { continue };
            let Some(pi) = p.iter().position(|(id, _)| *id == pid) else { continue };
            let iou = gbox.iou(&p[pi].1);
            if p_free[pi] && iou >= thr {
                g_free[gi] = false;
                p_free[pi] = false;
                matched.push((gi, pi, iou));
            }
        }
        for (gi, pi, iou) in assign_free(g, p, &g_free, &p_free, thr) {
            let (gid, pid) = (g[gi].0, p[pi].0);
            if last.insert(gid, pid).is_some_and(|prev| prev != pid) {
                c.id_switches += 1;
            }
            g_free[gi] = false;
            p_free[pi] = false;
            matched.push((gi, pi, iou));
        }
        c.matches += matched.len();
        c.iou_sum += matched.iter().map(|m| m.2 as f64).sum::<f64>();
        c.false_negatives += g_free.iter().filter(|&&f| f).count();
        c.false_positives += p_free.iter().filter(|&&f| f).count();
    }
    c
}

/// Optimal matching of the still-free boxes of one frame: as many pairs with IoU ≥ `thr` as
/// possible, then the least total (1 − IoU). Returns (gt index, pred index, IoU).
fn assign_free(g: &FrameBoxes, p: &FrameBoxes, g_free: &[bool], p_free: &[bool], thr: f32) -> Vec<(usize, usize, f32)> {
    let gs: Vec<usize> = (0..g.len()).filter(|&i| g_free[i]).collect();
    let ps: Vec<usize> = (0..p.len()).filter(|&i| p_free[i]).collect();
    // A pair below the threshold costs more than all valid pairs together, so the
    // assignment only uses one when nothing else is left (and it is dropped below).
    let invalid = (gs.len().min(ps.len()) + 1) as f64;
    let ious: Vec<f32> = gs.iter().flat_map(|&gi| ps.iter().map(move |&pi| g[gi].1.iou(&p[pi].1))).collect();
    let cost: Vec<f64> = ious.iter().map(|&v| if v >= thr { 1.0 - v as f64 } else { invalid }).collect();
    min_cost_assignment(gs.len(), ps.len(), &cost)
        .into_iter()
        .map(|(r, c)| (gs[r], ps[c], ious[r * ps.len() + c]))
        .filter(|&(_, _, iou)| iou >= thr)
        .collect()
}

/// IDTP: the most frames in which ground-truth ids and prediction ids overlap (IoU ≥ `thr`)
/// under one global one-to-one mapping of ground-truth ids to prediction ids.
fn identity_true_positives(gt: &Sequence, pred: &Sequence, thr: f32) -> usize {
    let gt_ids: Vec<u64> = gt.ids().into_iter().collect();
    let pred_ids: Vec<u64> = pred.ids().into_iter().collect();
    let gt_index: HashMap<u64, usize> = gt_ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let pred_index: HashMap<u64, usize> = pred_ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let cols = pred_ids.len();
    let mut overlap = vec![0usize; gt_ids.len() * cols];
    for (f, g) in &gt.frames {
        let Some(p) = pred.frames.get(f) else { continue };
        for (gid, gbox) in g {
            for (pid, pbox) in p {
                if gbox.iou(pbox) >= thr {
                    overlap[gt_index[gid] * cols + pred_index[pid]] += 1;
                }
            }
        }
    }
    // Maximising overlap = minimising IDFN + IDFP (each is a total minus IDTP).
    let cost: Vec<f64> = overlap.iter().map(|&n| -(n as f64)).collect();
    min_cost_assignment(gt_ids.len(), cols, &cost).into_iter().map(|(r, c)| overlap[r * cols + c]).sum()
}

impl fmt::Display for MotReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "MOT: {} frames, ground truth {} boxes / {} ids, predictions {} boxes / {} ids (IoU ≥ {})",
            self.frames, self.gt_boxes, self.gt_ids, self.pred_boxes, self.pred_ids, self.iou_threshold
        )?;
        writeln!(f, "{:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5}", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "matches", "FN", "FP", "IDSW")?;
        write!(
            f,
            "{:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7} {:>7} {:>7} {:>5}",
            self.mota, self.motp, self.idf1, self.idp, self.idr, self.matches, self.false_negatives, self.false_positives, self.id_switches
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 × 10 box at (x, y).
    fn b(x: f32, y: f32) -> BBox {
        BBox::from_xywh(x, y, 10.0, 10.0)
    }

    /// Rows (frame, id, x, y) → a sequence of 10 × 10 boxes.
    fn seq(rows: &[(u64, u64, f32, f32)]) -> Sequence {
        let mut s = Sequence::default();
        for &(f, id, x, y) in rows {
            s.push(f, id, b(x, y)).expect("unique ids per frame");
        }
        s
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// IoU is computed in f32: MOTP is exact to about 1e-7.
    fn close_iou(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// Two objects moving right over five frames.
    fn two_objects() -> Vec<(u64, u64, f32, f32)> {
        (0..5u64).flat_map(|f| [(f, 1, f as f32 * 5.0, 0.0), (f, 2, f as f32 * 5.0, 100.0)]).collect()
    }

    #[test]
    fn perfect_tracking_scores_one() {
        let gt = seq(&two_objects());
        // Different id numbers: only consistency matters.
        let pred = seq(&two_objects().iter().map(|&(f, id, x, y)| (f, id + 40, x, y)).collect::<Vec<_>>());
        let r = evaluate(&gt, &pred, 0.5);
        assert_eq!((r.false_negatives, r.false_positives, r.id_switches, r.matches), (0, 0, 0, 10));
        assert!(close(r.mota, 1.0) && close(r.idf1, 1.0) && close(r.motp, 1.0), "{r:?}");
    }

    #[test]
    fn one_id_switch() {
        // One object over four frames; the tracker calls it 10, then 20.
        let gt = seq(&[(0, 1, 0.0, 0.0), (1, 1, 1.0, 0.0), (2, 1, 2.0, 0.0), (3, 1, 3.0, 0.0)]);
        let pred = seq(&[(0, 10, 0.0, 0.0), (1, 10, 1.0, 0.0), (2, 20, 2.0, 0.0), (3, 20, 3.0, 0.0)]);
        let r = evaluate(&gt, &pred, 0.5);
        assert_eq!((r.false_negatives, r.false_positives, r.id_switches), (0, 0, 1));
        assert!(close(r.mota, 0.75), "1 − 1/4: {r:?}");
        // Best global mapping 1 → 10 covers 2 of 4 frames: IDTP 2, IDFN 2, IDFP 2.
        assert_eq!((r.idtp, r.idfn, r.idfp), (2, 2, 2));
        assert!(close(r.idf1, 0.5), "{r:?}");
    }

    #[test]
    fn a_missed_object_is_a_false_negative() {
        let mut rows = two_objects();
        rows.truncate(6); // frames 0..=2
        let gt = seq(&rows);
        // Object 2 is not detected in frame 1.
        let pred = seq(&rows.iter().copied().filter(|&(f, id, _, _)| !(f == 1 && id == 2)).collect::<Vec<_>>());
        let r = evaluate(&gt, &pred, 0.5);
        assert_eq!((r.false_negatives, r.false_positives, r.id_switches), (1, 0, 0));
        assert!(close(r.mota, 1.0 - 1.0 / 6.0), "{r:?}");
        assert_eq!((r.idtp, r.idfn, r.idfp), (5, 1, 0));
        assert!(close(r.idf1, 10.0 / 11.0), "{r:?}");
    }

    #[test]
    fn a_prediction_off_target_is_a_false_positive_and_a_miss() {
        let gt = seq(&[(0, 1, 0.0, 0.0)]);
        // IoU of boxes 5 px apart horizontally: 50/150 = 1/3 < 0.5.
        let pred = seq(&[(0, 7, 5.0, 0.0)]);
        let r = evaluate(&gt, &pred, 0.5);
        assert_eq!((r.false_negatives, r.false_positives, r.matches), (1, 1, 0));
        assert!(close(r.mota, -1.0) && close(r.idf1, 0.0), "{r:?}");
        // A lower threshold accepts the pair.
        let r = evaluate(&gt, &pred, 0.3);
        assert_eq!((r.false_negatives, r.false_positives, r.matches), (0, 0, 1));
        assert!(close_iou(r.motp, 1.0 / 3.0), "{r:?}");
    }

    #[test]
    fn a_still_valid_match_is_kept_even_if_another_prediction_fits_better() {
        // Frame 0: only prediction 5 (IoU 1). Frame 1: prediction 5 at IoU 9/11 ≈ 0.82 and
        // prediction 6 exactly on the object; CLEAR MOT keeps 5, so no switch and 6 is a FP.
        let gt = seq(&[(0, 1, 0.0, 0.0), (1, 1, 0.0, 0.0)]);
        let pred = seq(&[(0, 5, 0.0, 0.0), (1, 5, 1.0, 0.0), (1, 6, 0.0, 0.0)]);
        let r = evaluate(&gt, &pred, 0.5);
        assert_eq!((r.id_switches, r.false_positives, r.matches), (0, 1, 2));
        assert!(close_iou(r.motp, (1.0 + 9.0 / 11.0) / 2.0), "{r:?}");
    }

    #[test]
    fn reads_headerless_mot_challenge_rows_and_track_csv() {
        let dir = tempfile::tempdir().expect("tmp");
        let mot = dir.path().join("gt.txt");
        std::fs::write(&mot, "1,1,10,20,30,40,1,3,1.0\n2,1,12,20,30,40,1,3,1.0\n").expect("write");
        let s = read_sequence(&mot).expect("MOTChallenge rows");
        assert_eq!(s.frames.len(), 2);
        assert_eq!(s.frames[&1], vec![(1, BBox::from_xywh(10.0, 20.0, 30.0, 40.0))]);
        let ours = dir.path().join("tracks.csv");
        std::fs::write(&ours, "frame,track_id,x,y,w,h,class,score\n0,3,1.5,2,3,4,car,0.9\n").expect("write");
        assert_eq!(read_sequence(&ours).expect("track CSV").boxes(), 1);
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "frame,track_id,x,y,w,h\n0,1,1,2,3,4\n0,1,5,5,3,4\n").expect("write");
        let e = format!("{:#}", read_sequence(&bad).expect_err("duplicate id"));
        assert!(e.contains("line 3") && e.contains("track 1 appears twice in frame 0"), "{e}");
    }

    #[test]
    fn a_scope_narrows_frames_and_region_on_both_sides() {
        let dir = tempfile::tempdir().expect("tmp");
        // GT: objects 1 (top, y 0) and 2 (bottom, y 100) in frames 0–4. Predictions: only
        // object 2, and only in frames 0, 2 and 4 (a reduced detection rate), plus a box in
        // frame 9 outside the span.
        let gt = dir.path().join("gt.csv");
        let pred = dir.path().join("pred.csv");
        let rows = |r: &[(u64, u64, f32, f32)]| r.iter().map(|(f, id, x, y)| format!("{f},{id},{x},{y},10,10\n")).collect::<String>();
        std::fs::write(&gt, rows(&two_objects())).expect("gt");
        let p: Vec<_> = two_objects().into_iter().filter(|r| r.1 == 2 && r.0 % 2 == 0).chain([(9, 7, 0.0, 0.0)]).collect();
        std::fs::write(&pred, rows(&p)).expect("pred");
        // Everything: object 1 is missed throughout, object 2 in frames 1 and 3; one FP.
        let all = evaluate_files(&gt, &pred, 0.5, &MotScope::default()).expect("all");
        assert_eq!((all.false_negatives, all.false_positives), (7, 1));
        // Frames 0–4, the bottom half, frames with predictions only: a perfect score.
        let scope = MotScope { frames: Some((0, 4)), region: Some([0.0, 50.0, 100.0, 200.0]), pred_frames_only: true };
        let r = evaluate_files(&gt, &pred, 0.5, &scope).expect("scoped");
        assert_eq!((r.gt_boxes, r.false_negatives, r.false_positives, r.mota), (3, 0, 0, 1.0));
    }
}
