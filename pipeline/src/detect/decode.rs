//! Model outputs → detections in source-frame pixels (pure; no ONNX Runtime types).

use super::preprocess::InputTransform;
use super::Detection;
use crate::geometry::BBox;

/// Decodes a YOLOX raw grid `[cells, 5 + classes]` for an input of `in_w` × `in_h`.
/// Cells are ordered stride 8, 16, 32, row-major within each stride. Each row is
/// `tx, ty, tw, th, obj, cls…` with obj/cls already sigmoided; the score is
/// `obj × max cls`. Appends candidates at or above `score_threshold` to `out` (before NMS).
pub fn decode_yolox(
    data: &[f32],
    row_len: usize,
    in_w: u32,
    in_h: u32,
    transform: &InputTransform,
    score_threshold: f32,
    out: &mut Vec<Detection>,
) -> Result<(), String> {
    let classes = row_len.checked_sub(5).filter(|&c| c > 0).ok_or("YOLOX rows need 5 + classes values")?;
    let expected: usize = [8u32, 16, 32].iter().map(|s| ((in_w / s) * (in_h / s)) as usize).sum();
    if data.len() != expected * row_len {
        return Err(format!(
            "YOLOX output has {} cells, a {in_w}×{in_h} input gives {expected}",
            data.len() / row_len
        ));
    }
    let mut rows = data.chunks_exact(row_len);
    for stride in [8u32, 16, 32] {
        let (gw, gh) = (in_w / stride, in_h / stride);
        let s = stride as f32;
        for gy in 0..gh {
            for gx in 0..gw {
                let row = rows.next().ok_or("short YOLOX output")?;
                let obj = row[4];
                if obj < score_threshold {
                    continue; // obj × cls ≤ obj
                }
                let (best, cls) = row[5..5 + classes]
                    .iter()
                    .enumerate()
                    .fold((0usize, f32::MIN), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc });
                let score = obj * cls;
                if score < score_threshold {
                    continue;
                }
                let cx = (row[0] + gx as f32) * s;
                let cy = (row[1] + gy as f32) * s;
                let w = row[2].exp() * s;
                let h = row[3].exp() * s;
                let (x1, y1) = transform.to_source(cx - w / 2.0, cy - h / 2.0);
                let (x2, y2) = transform.to_source(cx + w / 2.0, cy + h / 2.0);
                out.push(Detection { bbox: BBox::new(x1, y1, x2, y2), score, class_id: best as u16 });
            }
        }
    }
    Ok(())
}

/// Decodes one image of a DETR-style output: `labels [Q]`, `boxes [Q, 4]` (x1,y1,x2,y2 in
/// source pixels already), `scores [Q]`. Boxes are clipped to the frame.
pub fn decode_detr(
    labels: &[i64],
    boxes: &[f32],
    scores: &[f32],
    frame_w: f32,
    frame_h: f32,
    score_threshold: f32,
    out: &mut Vec<Detection>,
) -> Result<(), String> {
    if labels.len() != scores.len() || boxes.len() != 4 * scores.len() {
        return Err(format!(
            "DETR outputs disagree: {} labels, {} scores, {} box values",
            labels.len(),
            scores.len(),
            boxes.len()
        ));
    }
    for ((&label, b), &score) in labels.iter().zip(boxes.chunks_exact(4)).zip(scores) {
        if score < score_threshold || label < 0 {
            continue;
        }
        let bbox = BBox::new(b[0], b[1], b[2], b[3]).clamp_to(frame_w, frame_h);
        if bbox.area() <= 0.0 {
            continue;
        }
        out.push(Detection { bbox, score, class_id: label as u16 });
    }
    Ok(())
}

/// Greedy non-maximum suppression, in place. With `class_aware`, boxes only suppress boxes of
/// their own class. Survivors are ordered by descending score (ties by position, so the
/// result is deterministic).
pub fn nms(dets: &mut Vec<Detection>, iou_threshold: f32, class_aware: bool) {
    dets.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.bbox.x1.total_cmp(&b.bbox.x1))
            .then(a.bbox.y1.total_cmp(&b.bbox.y1))
    });
    let mut keep = vec![true; dets.len()];
    for i in 0..dets.len() {
        if !keep[i] {
            continue;
        }
        for j in i + 1..dets.len() {
            if keep[j]
                && (!class_aware || dets[i].class_id == dets[j].class_id)
                && dets[i].bbox.iou(&dets[j].bbox) > iou_threshold
            {
                keep[j] = false;
            }
        }
    }
    let mut k = keep.iter();
    dets.retain(|_| *k.next().unwrap_or(&false));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32, class_id: u16) -> Detection {
        Detection { bbox: BBox::new(x, 0.0, x + 10.0, 10.0), score, class_id }
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let mut d = vec![det(0.0, 0.5, 2), det(1.0, 0.9, 2), det(1.0, 0.8, 3), det(50.0, 0.4, 2)];
        nms(&mut d, 0.45, true);
        let got: Vec<_> = d.iter().map(|d| (d.bbox.x1, d.class_id)).collect();
        assert_eq!(got, vec![(1.0, 2), (1.0, 3), (50.0, 2)]);
        nms(&mut d, 0.45, false);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn yolox_decodes_a_cell() {
        // 32×32 input: 16 + 4 + 1 cells; 1 class.
        let row_len = 6;
        let mut data = vec![0.0f32; 21 * row_len];
        // Stride-8 cell (gx=1, gy=2): centre (1.5·8, 2.5·8) = (12, 20), size e^0·8 = 8.
        let cell = 2 * 4 + 1;
        data[cell * row_len..(cell + 1) * row_len].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 0.9, 0.8]);
        let mut out = Vec::new();
        let t = InputTransform { scale_x: 0.5, scale_y: 0.5 };
        decode_yolox(&data, row_len, 32, 32, &t, 0.3, &mut out).expect("decode");
        assert_eq!(out.len(), 1);
        assert!((out[0].score - 0.72).abs() < 1e-6);
        assert_eq!(out[0].bbox, BBox::new(16.0, 32.0, 32.0, 48.0));
        assert!(decode_yolox(&data[..row_len * 20], row_len, 32, 32, &t, 0.3, &mut out).is_err());
    }

    #[test]
    fn detr_clips_and_filters() {
        let mut out = Vec::new();
        decode_detr(&[2, 3], &[-5.0, 0.0, 20.0, 20.0, 0.0, 0.0, 5.0, 5.0], &[0.9, 0.1], 10.0, 10.0, 0.4, &mut out)
            .expect("decode");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(0.0, 0.0, 10.0, 10.0));
    }
}
