#!/usr/bin/env python3
"""Independent reference for yolox_nano boxes (Python: OpenCV resize + onnxruntime + numpy).

Writes tests/fixtures/yolox_nano_intersection_day_ref.csv, which the Rust test
`tests/tests/detect_reference.rs` compares against `edge-agent detect` (within 1 px).

Frames are decoded by GStreamer as edge-agent decodes them (uridecodebin → I420) and turned
into RGB here with the textbook BT.601 limited-range equations in floating point (the clip's
caps carry no colorimetry, so GStreamer assumes BT.601 for this SD size), independently of
the agent's fixed-point `pipeline::colour`; the comparison isolates colour conversion,
preprocessing, inference, decoding and NMS.
Needs: gst-launch-1.0, pip install opencv-python-headless onnxruntime==1.31.1 numpy.
Run from the repository root:  python3 scripts/reference/yolox_reference.py
"""
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(ROOT, "..", "shared", "samples", "intersection_day_960x540.mp4")
MODEL = os.path.join(os.path.expanduser("~"), ".cache", "roadsight", "models", "yolox_nano.onnx")
LABELS = open(os.path.join(ROOT, "models", "coco80_labels.txt")).read().split("\n")
FRAMES = [0, 60, 120, 180, 240]
W, H, SIZE, SCORE, NMS_IOU = 960, 540, 416, 0.3, 0.45


def decode_frames():
    with tempfile.TemporaryDirectory() as tmp:
        pattern = os.path.join(tmp, "f_%05d.yuv")
        uri = "file://" + os.path.abspath(CLIP)
        subprocess.run(
            ["gst-launch-1.0", "-q", "uridecodebin", f"uri={uri}", "!", "videoconvert", "!",
             "video/x-raw,format=I420", "!", "multifilesink", f"location={pattern}"],
            check=True)
        for i in FRAMES:
            yield i, i420_to_rgb(np.fromfile(pattern % i, dtype=np.uint8))


def i420_to_rgb(raw):
    """BT.601, limited range, each chroma sample shared by a 2×2 block (W, H even here)."""
    y = raw[: W * H].reshape(H, W).astype(np.float64)
    u = raw[W * H : W * H * 5 // 4].reshape(H // 2, W // 2).repeat(2, 0).repeat(2, 1).astype(np.float64)
    v = raw[W * H * 5 // 4 : W * H * 3 // 2].reshape(H // 2, W // 2).repeat(2, 0).repeat(2, 1).astype(np.float64)
    kr, kb = 0.299, 0.114
    kg = 1 - kr - kb
    yn, pb, pr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r = yn + 2 * (1 - kr) * pr
    b = yn + 2 * (1 - kb) * pb
    g = (yn - kr * r - kb * b) / kg
    return np.clip(np.rint(np.stack([r, g, b], -1) * 255), 0, 255).astype(np.uint8)


def preprocess(rgb):
    bgr = rgb[:, :, ::-1]
    r = min(SIZE / H, SIZE / W)
    rw, rh = int(round(W * r)), int(round(H * r))
    canvas = np.full((SIZE, SIZE, 3), 114, dtype=np.uint8)
    canvas[:rh, :rw] = cv2.resize(np.ascontiguousarray(bgr), (rw, rh), interpolation=cv2.INTER_LINEAR)
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), r


def decode(out, r):
    grids, strides = [], []
    for s in (8, 16, 32):
        gy, gx = np.meshgrid(np.arange(SIZE // s), np.arange(SIZE // s), indexing="ij")
        grids.append(np.stack([gx, gy], -1).reshape(-1, 2))
        strides.append(np.full((grids[-1].shape[0], 1), s))
    grids, strides = np.concatenate(grids), np.concatenate(strides)
    xy = (out[:, :2] + grids) * strides
    wh = np.exp(out[:, 2:4]) * strides
    cls = out[:, 5:].argmax(1)
    score = out[:, 4] * out[np.arange(len(out)), 5 + cls]
    keep = score >= SCORE
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)[keep] / r
    return boxes, score[keep], cls[keep]


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    kept = []
    while len(order):
        i = order[0]
        kept.append(i)
        x1 = np.maximum(boxes[i, 0], boxes[order[1:], 0]); y1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        x2 = np.minimum(boxes[i, 2], boxes[order[1:], 2]); y2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        ious = inter / (area(boxes[[i]]) + area(boxes[order[1:]]) - inter)
        order = order[1:][ious <= iou]
    return kept


def main():
    sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    rows = ["frame,x,y,w,h,label,score"]
    for idx, rgb in decode_frames():
        tensor, r = preprocess(rgb)
        out = sess.run(None, {"images": tensor})[0][0]
        boxes, scores, cls = decode(out, r)
        for c in sorted(set(cls.tolist())):
            sel = np.where(cls == c)[0]
            for k in nms(boxes[sel], scores[sel], NMS_IOU):
                b = boxes[sel][k]
                rows.append(f"{idx},{b[0]:.2f},{b[1]:.2f},{b[2]-b[0]:.2f},{b[3]-b[1]:.2f},{LABELS[c]},{scores[sel][k]:.4f}")
    dest = os.path.join(ROOT, "tests", "fixtures", "yolox_nano_intersection_day_ref.csv")
    open(dest, "w").write("\n".join(rows) + "\n")
    print(f"wrote {len(rows) - 1} boxes to {dest}", file=sys.stderr)


if __name__ == "__main__":
    main()
