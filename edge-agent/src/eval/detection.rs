//! Detection accuracy against ground truth.
//!
//! Ground truth: CSV `frame,x,y,w,h,label` (the NGSIM format). Predictions: the CSV that
//! `edge-agent detect` writes (`frame,x,y,w,h,label,score`). Only frames that appear in the
//! ground truth are evaluated (annotations may be sparse). AP is the VOC all-point
//! interpolated average precision; AP50 at IoU 0.5, AP at IoU 0.50:0.05:0.95 averaged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use roadsight_pipeline::detect::{decode::nms, Detection};
use roadsight_pipeline::geometry::BBox;
use serde::{Deserialize, Serialize};

use super::read_csv;

#[derive(Debug, Deserialize)]
struct GtRow {
    frame: u64,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    label: String,
}

#[derive(Debug, Deserialize)]
struct PredRow {
    frame: u64,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    label: String,
    score: f32,
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Labels merged into one class (`vehicle`) in both files; other labels are dropped when
    /// this is non-empty.
    pub merge: Vec<String>,
    /// Boxes (both sides) whose height is below this many pixels are ignored.
    pub min_height: f32,
    /// Score threshold at which precision and recall are reported.
    pub score_threshold: f32,
    /// Class-agnostic NMS IoU applied to predictions after merging (none if `None`).
    pub merged_nms_iou: Option<f32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassReport {
    pub label: String,
    pub ground_truth: usize,
    pub predictions: usize,
    pub ap50: f64,
    pub ap50_95: f64,
    pub precision: f64,
    pub recall: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DetectionReport {
    pub frames: usize,
    pub score_threshold: f32,
    pub classes: Vec<ClassReport>,
    /// Mean over classes.
    pub map50: f64,
    pub map50_95: f64,
}

struct Scored {
    frame: u64,
    bbox: BBox,
    score: f32,
}

fn class_of(label: &str, merge: &[String]) -> Option<String> {
    if merge.is_empty() {
        Some(label.to_owned())
    } else if merge.iter().any(|m| m == label) {
        Some("vehicle".to_owned())
    } else {
        None
    }
}

pub fn evaluate_files(gt: &Path, pred: &Path, opts: &EvalOptions) -> anyhow::Result<DetectionReport> {
    let gt_rows: Vec<GtRow> = read_csv(gt)?;
    let pred_rows: Vec<PredRow> = read_csv(pred)?;
    let frames: BTreeSet<u64> = gt_rows.iter().map(|r| r.frame).collect();
    let mut gts: BTreeMap<String, HashMap<u64, Vec<BBox>>> = BTreeMap::new();
    for r in gt_rows.iter().filter(|r| r.h >= opts.min_height) {
        if let Some(c) = class_of(&r.label, &opts.merge) {
            gts.entry(c).or_default().entry(r.frame).or_default().push(BBox::from_xywh(r.x, r.y, r.w, r.h));
        }
    }
    let mut preds: BTreeMap<String, BTreeMap<u64, Vec<Detection>>> = BTreeMap::new();
    for r in pred_rows.iter().filter(|r| r.h >= opts.min_height && frames.contains(&r.frame)) {
        if let Some(c) = class_of(&r.label, &opts.merge) {
            let d = Detection { bbox: BBox::from_xywh(r.x, r.y, r.w, r.h), score: r.score, class_id: 0 };
            preds.entry(c).or_default().entry(r.frame).or_default().push(d);
        }
    }
    if let Some(iou) = opts.merged_nms_iou {
        for per_frame in preds.values_mut() {
            for dets in per_frame.values_mut() {
                nms(dets, iou, false);
            }
        }
    }
    let labels: BTreeSet<String> = gts.keys().chain(preds.keys()).cloned().collect();
    let classes: Vec<ClassReport> = labels
        .into_iter()
        .map(|label| {
            let empty_gt = HashMap::new();
            let g = gts.get(&label).unwrap_or(&empty_gt);
            let p: Vec<Scored> = preds
                .get(&label)
                .map(|m| {
                    m.iter()
                        .flat_map(|(&frame, ds)| ds.iter().map(move |d| Scored { frame, bbox: d.bbox, score: d.score }))
                        .collect()
                })
                .unwrap_or_default();
            class_report(label, g, p, opts.score_threshold)
        })
        .collect();
    let n = classes.len().max(1) as f64;
    Ok(DetectionReport {
        frames: frames.len(),
        score_threshold: opts.score_threshold,
        map50: classes.iter().map(|c| c.ap50).sum::<f64>() / n,
        map50_95: classes.iter().map(|c| c.ap50_95).sum::<f64>() / n,
        classes,
    })
}

impl fmt::Display for DetectionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "frames evaluated: {}", self.frames)?;
        writeln!(f, "{:<12} {:>6} {:>7} {:>7} {:>7} {:>9} {:>7}", "class", "gt", "pred", "AP50", "AP", "precision", "recall")?;
        for c in &self.classes {
            writeln!(
                f,
                "{:<12} {:>6} {:>7} {:>7.3} {:>7.3} {:>9.3} {:>7.3}",
                c.label, c.ground_truth, c.predictions, c.ap50, c.ap50_95, c.precision, c.recall
            )?;
        }
        write!(f, "mAP50 {:.3}  mAP50:95 {:.3}  (precision/recall at score ≥ {})", self.map50, self.map50_95, self.score_threshold)
    }
}

fn class_report(label: String, gt: &HashMap<u64, Vec<BBox>>, mut preds: Vec<Scored>, thr: f32) -> ClassReport {
    preds.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.frame.cmp(&b.frame)));
    let n_gt: usize = gt.values().map(Vec::len).sum();
    let ap_at = |iou: f32| -> (f64, Vec<bool>) {
        let tp = match_greedy(gt, &preds, iou);
        (average_precision(&tp, n_gt), tp)
    };
    let (ap50, tp50) = ap_at(0.5);
    let ap50_95 = (0..10).map(|i| ap_at(0.5 + 0.05 * i as f32).0).sum::<f64>() / 10.0;
    let kept = preds.iter().take_while(|p| p.score >= thr).count();
    let tp_kept = tp50[..kept].iter().filter(|&&t| t).count();
    ClassReport {
        label,
        ground_truth: n_gt,
        predictions: preds.len(),
        ap50,
        ap50_95,
        precision: if kept == 0 { 0.0 } else { tp_kept as f64 / kept as f64 },
        recall: if n_gt == 0 { 0.0 } else { tp_kept as f64 / n_gt as f64 },
    }
}

/// For predictions sorted by descending score: true positive or not, each ground-truth box
/// matched at most once (to its best-overlapping prediction in score order).
fn match_greedy(gt: &HashMap<u64, Vec<BBox>>, preds: &[Scored], iou_thr: f32) -> Vec<bool> {
    let mut used: HashMap<u64, Vec<bool>> = gt.iter().map(|(&f, b)| (f, vec![false; b.len()])).collect();
    preds
        .iter()
        .map(|p| {
            let Some(boxes) = gt.get(&p.frame) else { return false };
            let best = boxes
                .iter()
                .enumerate()
                .map(|(i, g)| (i, g.iou(&p.bbox)))
                .fold(None, |acc: Option<(usize, f32)>, (i, v)| match acc {
                    Some((_, bv)) if bv >= v => acc,
                    _ => Some((i, v)),
                });
            match best {
                Some((i, v)) if v >= iou_thr => {
                    let flags = used.get_mut(&p.frame).expect("frame has ground truth");
                    if flags[i] {
                        false
                    } else {
                        flags[i] = true;
                        true
                    }
                }
                _ => false,
            }
        })
        .collect()
}

/// VOC all-point interpolated AP.
fn average_precision(tp: &[bool], n_gt: usize) -> f64 {
    if n_gt == 0 {
        return 0.0;
    }
    let mut recall = Vec::with_capacity(tp.len());
    let mut precision = Vec::with_capacity(tp.len());
    let mut hits = 0usize;
    for (i, &t) in tp.iter().enumerate() {
        hits += t as usize;
        recall.push(hits as f64 / n_gt as f64);
        precision.push(hits as f64 / (i + 1) as f64);
    }
    for i in (0..precision.len().saturating_sub(1)).rev() {
        precision[i] = precision[i].max(precision[i + 1]);
    }
    let mut ap = 0.0;
    let mut prev_r = 0.0;
    for (r, p) in recall.iter().zip(&precision) {
        ap += (r - prev_r) * p;
        prev_r = *r;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ap_of_perfect_and_half_detections() {
        assert!((average_precision(&[true, true], 2) - 1.0).abs() < 1e-9);
        // One hit then one miss, two ground-truth boxes: recall 0.5 at precision 1.
        assert!((average_precision(&[true, false], 2) - 0.5).abs() < 1e-9);
        // A false positive first: precision 0.5 at recall 1.
        assert!((average_precision(&[false, true], 1) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn evaluates_csv_files_with_merged_classes() {
        let dir = tempfile::tempdir().expect("tmp");
        let gt = dir.path().join("gt.csv");
        let pred = dir.path().join("pred.csv");
        std::fs::write(&gt, "frame,x,y,w,h,label\n0,0,0,10,10,car\n0,50,50,10,10,car\n1,0,0,10,10,car\n").expect("w");
        std::fs::write(
            &pred,
            "frame,x,y,w,h,label,score\n0,0,0,10,10,truck,0.9\n0,1,1,10,10,car,0.8\n0,50,50,10,10,car,0.7\n1,30,30,5,5,car,0.6\n2,0,0,10,10,car,0.9\n0,0,0,10,10,person,0.99\n",
        )
        .expect("w");
        let opts = EvalOptions { merge: vec!["car".into(), "truck".into()], min_height: 0.0, score_threshold: 0.5, merged_nms_iou: Some(0.5) };
        let r = evaluate_files(&gt, &pred, &opts).expect("eval");
        assert_eq!(r.classes.len(), 1);
        let c = &r.classes[0];
        // NMS removes the 0.8 duplicate; frame 2 has no ground truth and is not evaluated.
        assert_eq!(c.predictions, 3);
        assert_eq!(c.ground_truth, 3);
        assert!((c.recall - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.ap50 - 2.0 / 3.0).abs() < 1e-9);
    }
}
