#!/usr/bin/env python3
"""Independent AP50 of the bundled detectors on the NGSIM ground truth, under switchable
evaluation protocols (investigation tool: which protocol reproduces ../shared/models/README.md,
"Measured facts": yolox_nano 0.56, deimv2_atto 0.53, deimv2_femto 0.91).

Python only (OpenCV + onnxruntime + numpy); shares no code with edge-agent. Pre/post-processing
follows ../shared/models/README.md. Raw model outputs are cached (npz) so that protocol
variants cost no inference.

  PY=~/.cache/roadsight/pybaseline/bin/python      # scripts/python_baseline/run.sh makes it
  $PY scripts/reference/ngsim_ap.py --models yolox_nano --cand-score 0.05          # one protocol
  $PY scripts/reference/ngsim_ap.py --table                                        # variant table
  $PY scripts/reference/ngsim_ap.py --models yolox_nano --cand-score 0.01 --dump x.csv  # predictions

Protocol flags (defaults = the edge-agent pipeline as of writing: yolox max-class score,
class-wise NMS 0.45, merge car/truck/bus/motorcycle, class-agnostic NMS 0.5, VOC all-point AP,
VOC matching, IoU >= 0.5).

Finding: the README figures are reproduced by `--decoder cv2 --cand-score 0.05` (OpenCV/FFmpeg
frames, candidate cutoff 0.05): 0.561 / 0.525 / 0.908, and P/R at 0.3 of 0.97/0.058 (yolox)
and 0.96/0.690 (femto). GStreamer's videoconvert (edge-agent's frames) is 1-4 levels darker
than textbook BT.601, which alone moves yolox to 0.592 at the same cutoff.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared")
CLIP = os.path.join(SHARED, "samples", "highway_ngsim_us101_640x480.mp4")
GT = os.path.join(SHARED, "samples", "highway_ngsim_us101_640x480.gt.csv")
MODELS = os.path.join(SHARED, "models")
LABELS = open(os.path.join(MODELS, "coco80_labels.txt")).read().split("\n")
VEHICLES = {"car": 2, "motorcycle": 3, "bus": 5, "truck": 7}
DETR_SIZE = {"deimv2_femto": 416, "deimv2_atto": 320}
ALL_MODELS = ["yolox_nano", "deimv2_atto", "deimv2_femto"]


# ---------------------------------------------------------------------------------------------
# Frames and inference (cached)

def decode_frames(decoder):
    """All frames of the clip as BGR uint8 arrays."""
    if decoder == "cv2":
        cap = cv2.VideoCapture(CLIP)
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        return frames
    # gst: GStreamer as edge-agent decodes (uridecodebin -> videoconvert -> RGB).
    # gst-bt601: the same decoded I420, converted here with the textbook BT.601 limited-range
    # matrix (nearest chroma), i.e. without videoconvert's 8-bit fast path.
    fmt = "RGB" if decoder == "gst" else "I420"
    with tempfile.TemporaryDirectory() as tmp:
        pattern = os.path.join(tmp, "f_%05d.raw")
        subprocess.run(["gst-launch-1.0", "-q", "uridecodebin", "uri=file://" + os.path.abspath(CLIP), "!",
                        "videoconvert", "!", f"video/x-raw,format={fmt}", "!", "multifilesink",
                        f"location={pattern}"], check=True)
        frames, i = [], 0
        while os.path.exists(pattern % i):
            raw = np.fromfile(pattern % i, dtype=np.uint8)
            if fmt == "RGB":
                frames.append(np.ascontiguousarray(raw.reshape(480, 640, 3)[:, :, ::-1]))
            else:
                frames.append(i420_to_bgr_bt601(raw, 640, 480))
            i += 1
        return frames


def i420_to_bgr_bt601(raw, w, h):
    y = raw[:w * h].reshape(h, w).astype(np.float64)
    u = raw[w * h:w * h * 5 // 4].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1) - 128.0
    v = raw[w * h * 5 // 4:].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1) - 128.0
    y = 1.164383 * (y - 16.0)
    bgr = np.stack([y + 2.017232 * u, y - 0.391762 * u - 0.812968 * v, y + 1.596027 * v], -1)
    return np.clip(np.rint(bgr), 0, 255).astype(np.uint8)


def session(name):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(MODELS, name + ".onnx"), so, providers=["CPUExecutionProvider"])


def run_yolox(sess, bgr, size=416):
    """Decoded YOLOX cells: boxes [N,4] x1y1x2y2 (frame px), obj [N], cls [N,80] (all cells)."""
    h, w = bgr.shape[:2]
    r = min(size / h, size / w)
    rw, rh = int(round(w * r)), int(round(h * r))
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[:rh, :rw] = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
    x = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    out = sess.run(None, {"images": x})[0][0]
    grids, strides = [], []
    for s in (8, 16, 32):
        gy, gx = np.meshgrid(np.arange(size // s), np.arange(size // s), indexing="ij")
        grids.append(np.stack([gx, gy], -1).reshape(-1, 2))
        strides.append(np.full((grids[-1].shape[0], 1), s))
    grids, strides = np.concatenate(grids), np.concatenate(strides)
    cxy = (out[:, :2] + grids) * strides
    wh = np.exp(out[:, 2:4]) * strides
    boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], 1) / r
    return boxes.astype(np.float32), out[:, 4].copy(), out[:, 5:].copy()


def run_detr(sess, bgr, size):
    h, w = bgr.shape[:2]
    rgb = cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    x = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    labels, boxes, scores = sess.run(["labels", "boxes", "scores"],
                                     {"images": x, "orig_target_sizes": np.array([[w, h]], dtype=np.int64)})
    return labels[0], boxes[0], scores[0]


def raw_outputs(model, frames_idx, args):
    """Per-frame raw outputs for the annotated frames, cached as npz."""
    os.makedirs(args.cache, exist_ok=True)
    path = os.path.join(args.cache, f"{model}_{args.decoder}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {f: tuple(z[f"{k}_{f}"] for k in z["keys"]) for f in frames_idx}
    frames = decode_frames(args.decoder)
    print(f"{model}: {len(frames)} frames decoded ({args.decoder}), running inference", file=sys.stderr)
    sess = session(model)
    res, store = {}, {}
    for f in frames_idx:
        if model.startswith("yolox"):
            boxes, obj, cls = run_yolox(sess, frames[f])
            keep = obj >= 1e-4  # obj*cls <= obj: nothing below this can matter
            res[f] = (boxes[keep], obj[keep], cls[keep])
            keys = ["boxes", "obj", "cls"]
        else:
            res[f] = run_detr(sess, frames[f], DETR_SIZE[model])
            keys = ["labels", "boxes", "scores"]
        for k, v in zip(keys, res[f]):
            store[f"{k}_{f}"] = v
    np.savez_compressed(path, keys=np.array(keys), **store)
    return res


# ---------------------------------------------------------------------------------------------
# Post-processing variants

def iou_matrix(a, b):
    """IoU of boxes a [N,4] against b [M,4] (x1y1x2y2), pixel-continuous (no +1)."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(aa[:, None] + ab[None, :] - inter, 1e-9)


def nms(boxes, scores, thr, groups=None):
    """Greedy NMS (suppress IoU > thr); with groups, only within a group. Returns kept indices
    in descending score order."""
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order
    b = boxes[order]
    g = None if groups is None else groups[order]
    iou = iou_matrix(b, b)
    keep = np.ones(len(order), bool)
    for i in range(len(order)):
        if not keep[i]:
            continue
        sup = iou[i, i + 1:] > thr
        if g is not None:
            sup &= g[i + 1:] == g[i]
        keep[i + 1:] &= ~sup
    return order[keep]


def frame_detections(model, raw, a):
    """One frame's detections before merging: boxes [N,4], scores [N], class ids [N]."""
    if model.startswith("yolox"):
        boxes, obj, cls = raw
        if a.score_mode == "max":
            c = cls.argmax(1)
            s = obj * cls[np.arange(len(c)), c]
            k = s >= a.cand_score
            boxes, s, c = boxes[k], s[k], c[k]
        else:  # every class above the cutoff is a candidate (YOLOX demo multiclass_nms)
            sc = obj[:, None] * cls
            i, c = np.nonzero(sc >= a.cand_score)
            boxes, s = boxes[i], sc[i, c]
        if a.classwise_nms is not None:
            k = nms(boxes, s, a.classwise_nms, c)
            boxes, s, c = boxes[k], s[k], c[k]
    else:
        labels, boxes, s = raw
        k = s >= a.cand_score
        boxes, s, c = boxes[k], s[k], labels[k].astype(np.int64)
        if a.clip_detr:
            boxes = boxes.copy()
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, 640)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, 480)
        if a.detr_nms is not None:
            k = nms(boxes, s, a.detr_nms, c)
            boxes, s, c = boxes[k], s[k], c[k]
    if a.max_det_pre:
        k = np.argsort(-s, kind="stable")[:a.max_det_pre]
        boxes, s, c = boxes[k], s[k], c[k]
    return boxes, s, c


def merged_predictions(model, raws, a, merge_ids):
    """Per frame: merged-class boxes and scores after class-agnostic NMS and caps."""
    out = {}
    for f, raw in raws.items():
        boxes, s, c = frame_detections(model, raw, a)
        k = np.isin(c, merge_ids)
        boxes, s = boxes[k], s[k]
        if a.merged_nms is not None:
            k = nms(boxes, s, a.merged_nms)
            boxes, s = boxes[k], s[k]
        if a.max_det:
            k = np.argsort(-s, kind="stable")[:a.max_det]
            boxes, s = boxes[k], s[k]
        h = boxes[:, 3] - boxes[:, 1]
        k = h >= a.min_height
        out[f] = (boxes[k], s[k])
    return out


# ---------------------------------------------------------------------------------------------
# AP

def load_gt(min_height):
    gt = {}
    with open(GT) as fh:
        for r in csv.DictReader(fh):
            x, y, w, h = (float(r[k]) for k in "xywh")
            if h >= min_height:
                gt.setdefault(int(r["frame"]), []).append([x, y, x + w, y + h])
    return {f: np.array(b, np.float32) for f, b in gt.items()}


def evaluate(preds, gt, a, iou_thr=0.5):
    """AP, and precision/recall at a.pr_score. preds: frame -> (boxes, scores)."""
    n_gt = sum(len(b) for b in gt.values())
    flat = [(s, f, i) for f, (b, ss) in preds.items() for i, s in enumerate(ss)]
    flat.sort(key=lambda t: (-t[0], t[1]))
    ious = {f: iou_matrix(preds[f][0], gt[f]) if f in gt and len(preds[f][0]) else None for f in preds}
    used = {f: np.zeros(len(b), bool) for f, b in gt.items()}
    tp = np.zeros(len(flat), bool)
    for n, (s, f, i) in enumerate(flat):
        m = ious.get(f)
        if m is None or m.shape[1] == 0:
            continue
        row = m[i]
        if a.match == "coco":  # best still-unmatched ground truth
            row = np.where(used[f], -1.0, row)
        j = int(row.argmax())
        ok = row[j] >= iou_thr if a.iou_cmp == "ge" else row[j] > iou_thr
        if ok and not used[f][j]:
            used[f][j] = True
            tp[n] = True
    hits = np.cumsum(tp)
    recall = hits / max(n_gt, 1)
    precision = hits / np.arange(1, len(tp) + 1)
    ap = average_precision(recall, precision, a.ap)
    scores = np.array([t[0] for t in flat])
    kept = int((scores >= a.pr_score).sum())
    p = hits[kept - 1] / kept if kept else 0.0
    r = hits[kept - 1] / n_gt if kept else 0.0
    return ap, p, r, len(flat), n_gt


def average_precision(recall, precision, kind):
    if len(recall) == 0:
        return 0.0
    if kind == "voc11":
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    if kind == "coco101":
        ts = np.linspace(0, 1, 101)
        idx = np.searchsorted(mrec[1:-1], ts, side="left")
        return float(np.mean([mpre[1:-1][i] if i < len(recall) else 0.0 for i in idx]))
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


# ---------------------------------------------------------------------------------------------

def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(ALL_MODELS))
    p.add_argument("--decoder", choices=["cv2", "gst", "gst-bt601"], default="gst", help="frame decoder (gst = as edge-agent)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "ngsim_ap_cache"))
    p.add_argument("--cand-score", type=float, default=0.01, help="candidate score cutoff (all models)")
    p.add_argument("--score-mode", choices=["max", "all"], default="max",
                   help="yolox: one candidate per cell (max class) or one per class above the cutoff")
    p.add_argument("--classwise-nms", type=lambda v: None if v == "none" else float(v), default=0.45,
                   help="yolox class-wise NMS IoU before merging ('none' to skip)")
    p.add_argument("--detr-nms", type=lambda v: None if v == "none" else float(v), default=0.9,
                   help="DETR class-wise NMS IoU (edge-agent drops repeats at 0.9; 'none' to skip)")
    p.add_argument("--clip-detr", type=int, default=1, help="clip DETR boxes to the frame (1/0)")
    p.add_argument("--merge", default="car,truck,bus,motorcycle")
    p.add_argument("--merged-nms", type=lambda v: None if v == "none" else float(v), default=0.5,
                   help="class-agnostic NMS IoU after merging ('none' to skip)")
    p.add_argument("--max-det-pre", type=int, default=0, help="cap per frame over all classes before merging (0 = none)")
    p.add_argument("--max-det", type=int, default=0, help="cap per frame after merging (0 = none)")
    p.add_argument("--min-height", type=float, default=0.0, help="ignore GT and predictions lower than this")
    p.add_argument("--frame-offset", type=int, default=0, help="prediction frame = GT frame + offset")
    p.add_argument("--ap", choices=["voc", "voc11", "coco101"], default="voc")
    p.add_argument("--match", choices=["voc", "coco"], default="voc",
                   help="voc: best-IoU GT, FP if already taken; coco: best still-free GT")
    p.add_argument("--iou-cmp", choices=["ge", "gt"], default="ge")
    p.add_argument("--pr-score", type=float, default=0.3, help="score for the precision/recall figures")
    p.add_argument("--dump", help="write the merged predictions (edge-agent detect CSV format) here")
    p.add_argument("--table", action="store_true", help="print the built-in variant table")
    return p


def run(models, a, cache):
    gt = load_gt(a.min_height)
    merge_ids = [VEHICLES[n] for n in a.merge.split(",")]
    res = {}
    for m in models:
        if m not in cache:
            cache[m] = raw_outputs(m, list(range(177)), a)
        raws_all = cache[m]
        raws = {f: raws_all[f + a.frame_offset] for f in gt if 0 <= f + a.frame_offset < 177}
        preds = merged_predictions(m, raws, a, merge_ids)
        res[m] = evaluate(preds, gt, a)
        if a.dump:
            with open(a.dump if len(models) == 1 else f"{a.dump}.{m}.csv", "w") as fh:
                fh.write("frame,x,y,w,h,label,score\n")
                for f, (b, s) in sorted(preds.items()):
                    for bb, ss in zip(b, s):
                        fh.write(f"{f},{bb[0]:.2f},{bb[1]:.2f},{bb[2]-bb[0]:.2f},{bb[3]-bb[1]:.2f},car,{ss:.4f}\n")
    return res


VARIANTS = [
    ("edge-agent as is, cand 0.01", {}),
    ("cand 0.001", {"cand_score": 0.001}),
    ("cand 0.05", {"cand_score": 0.05}),
    ("cand 0.1", {"cand_score": 0.1}),
    ("cand 0.3 (README thresholds)", {"cand_score": 0.3}),
    ("cand 0.01, every class (multiclass_nms)", {"score_mode": "all"}),
    ("cand 0.01, no class-wise NMS", {"classwise_nms": None}),
    ("cand 0.01, no merged NMS", {"merged_nms": None}),
    ("cand 0.01, max 100/frame pre-merge", {"max_det_pre": 100}),
    ("cand 0.01, max 100/frame post-merge", {"max_det": 100}),
    ("cand 0.01, merge car only", {"merge": "car"}),
    ("cand 0.01, min height 8", {"min_height": 8.0}),
    ("cand 0.01, frame offset +1", {"frame_offset": 1}),
    ("cand 0.01, VOC 11-point", {"ap": "voc11"}),
    ("cand 0.01, COCO 101-point", {"ap": "coco101"}),
    ("cand 0.01, COCO matching", {"match": "coco"}),
    ("cand 0.01, IoU > 0.5", {"iou_cmp": "gt"}),
    ("cand 0.01, OpenCV/FFmpeg decoding", {"decoder": "cv2"}),
    ("cand 0.05, OpenCV/FFmpeg decoding", {"decoder": "cv2", "cand_score": 0.05}),
    ("cand 0.05, textbook BT.601 conversion", {"decoder": "gst-bt601", "cand_score": 0.05}),
    ("cand 0.055 (gst)", {"cand_score": 0.055}),
]


def main():
    a = parser().parse_args()
    models = a.models.split(",")
    cache = {}
    if not a.table:
        for m, (ap, p, r, n, n_gt) in run(models, a, cache).items():
            print(f"{m:<14} AP50 {ap:.3f}  P/R@{a.pr_score} {p:.3f}/{r:.3f}  preds {n}  gt {n_gt}")
        return
    print("| variant | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    base = vars(a).copy()
    caches = {a.decoder: cache}
    for name, over in VARIANTS:
        v = argparse.Namespace(**{**base, **over})
        c = caches.setdefault(v.decoder, {})
        res = run(models, v, c)
        print(f"| {name} | " + " | ".join(f"{res[m][0]:.3f}" for m in models) + " |", flush=True)


if __name__ == "__main__":
    main()
