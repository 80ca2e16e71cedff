#!/usr/bin/env python3
"""The pipeline a user would write in Python instead of edge-agent: the baseline we compare to.

Per stream, one loop, in order: OpenCV decode (cv2.VideoCapture) → YOLOX-Nano preprocessing,
onnxruntime inference, grid decode + NMS (imported from scripts/reference/yolox_reference.py,
the independent reference our detector is checked against) → supervision ByteTrack →
supervision LineZone (y = 0.6) and PolygonZone (centre), as `edge-agent bench`'s built-in scene.

Streams run as one OS process each by default (`--mode process`: what a Python user does to
use more than one core, since the GIL serialises tracking and numpy glue); `--mode thread`
runs them as threads of one process instead; a single stream runs in the main process either
way (no launcher process to count). Model sessions are created and warmed up before
the clock starts, as the bench does (its detectors are loaded before its pipeline phase).

Prints a summary and, with --json, writes a report whose keys follow `edge-agent bench --json`
where they mean the same thing (pipeline.fps_total, pipeline.per_stream[].fps,
pipeline.cpu_percent, pipeline.stages[], peak_rss_mib, ...).

    scripts/python_baseline/run.sh --input CLIP --streams 4 --frames 300 --json out.json
"""
import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time
import warnings

import cv2
import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
import yolox_reference as yolox  # noqa: E402  (pre/post-processing, reused, not copied)

with warnings.catch_warnings():
    # sv.ByteTrack is deprecated in favour of the `trackers` package; it still works.
    warnings.simplefilter("ignore")
    import supervision as sv  # noqa: E402

DEFAULT_MODEL = os.path.join(
    os.environ.get("ROADSIGHT_HOME", os.path.join(os.path.expanduser("~"), ".cache", "roadsight")),
    "models", "yolox_nano.onnx")
# The classes edge-agent's built-in scene keeps (roadsight_events::ObjectClass::ALL).
CLASSES = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
WARMUP_RUNS = 3  # as the bench: the first runs allocate
ANALYTICS = "built-in scene equivalent: sv.LineZone (y = 0.6), sv.PolygonZone (centre), all 6 classes"


def make_session(model, threads):
    """The bench's settings: intra-op threads, inter-op 1, sequential, full graph
    optimisation, no spinning (edge-agent turns intra-op spinning off too)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def probe(clip):
    """Frame size and fps of the clip (what the user's code would read off the capture)."""
    cap = cv2.VideoCapture(clip)
    if not cap.isOpened():
        raise SystemExit(f"error: {clip}: OpenCV cannot open it")
    ok, frame = cap.read()
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    if not ok:
        raise SystemExit(f"error: {clip}: no video frame decoded")
    return frame.shape[1], frame.shape[0], fps


def detect(session, bgr, wanted):
    """YOLOX-Nano on one BGR frame → sv.Detections (source pixels, per-class NMS)."""
    t0 = time.perf_counter()
    # The reference takes RGB and flips it to BGR; a flipped view of the BGR frame flips
    # back to the original memory layout, so this costs no copy.
    tensor, r = yolox.preprocess(bgr[:, :, ::-1])
    t1 = time.perf_counter()
    out = session.run(None, {"images": tensor})[0][0]
    t2 = time.perf_counter()
    boxes, scores, cls = yolox.decode(out, r)
    keep_boxes, keep_scores, keep_cls = [], [], []
    for c in sorted(set(cls.tolist())):
        if c not in wanted:
            continue
        sel = np.where(cls == c)[0]
        for k in yolox.nms(boxes[sel], scores[sel], yolox.NMS_IOU):
            keep_boxes.append(boxes[sel][k])
            keep_scores.append(scores[sel][k])
            keep_cls.append(c)
    if keep_boxes:
        dets = sv.Detections(xyxy=np.array(keep_boxes, dtype=np.float32),
                             confidence=np.array(keep_scores, dtype=np.float32),
                             class_id=np.array(keep_cls, dtype=int))
    else:
        dets = sv.Detections.empty()
    t3 = time.perf_counter()
    return dets, (t1 - t0, t2 - t1, t3 - t2)


def summary(seconds):
    """Like the bench's LatencySummary (nearest-rank percentiles), in ms."""
    if not seconds:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "max_ms": 0.0}
    s = sorted(seconds)
    rank = lambda p: s[min(max(int(np.ceil(p / 100 * len(s))), 1), len(s)) - 1] * 1e3
    return {"count": len(s), "p50_ms": rank(50), "p99_ms": rank(99),
            "mean_ms": sum(s) / len(s) * 1e3, "max_ms": s[-1] * 1e3}


def vm_hwm_mib(pid="self"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stream(index, args, ready, results):
    """One camera; a failure releases the other streams waiting at the start line."""
    try:
        results.put(run_stream(index, args, ready))
    except BaseException as e:  # reported by the parent, which exits 1
        results.put({"stream": index, "error": f"{type(e).__name__}: {e}"})
        ready.abort()


def run_stream(index, args, ready):
    """Set up, wait for every stream, then decode → detect → track → count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = make_session(args.model, args.threads)
        w, h, fps = probe(args.input)
        # The reference module is written for one frame size: give it this clip's.
        yolox.W, yolox.H = w, h
        wanted = {yolox.LABELS.index(c) for c in CLASSES}
        warm = cv2.VideoCapture(args.input).read()[1]
        for _ in range(WARMUP_RUNS):
            detect(session, warm, wanted)
        # The bench's tracker defaults: high score 0.5 (new tracks at 0.6, supervision's
        # +0.1), low 0.1 (fixed in supervision), match IoU 0.2 (cost 0.8), lost after 1 s.
        tracker = sv.ByteTrack(track_activation_threshold=0.5, lost_track_buffer=30,
                               minimum_matching_threshold=0.8, frame_rate=fps)
    line = sv.LineZone(start=sv.Point(0.05 * w, 0.6 * h), end=sv.Point(0.95 * w, 0.6 * h),
                       triggering_anchors=[sv.Position.BOTTOM_CENTER])
    zone = sv.PolygonZone(polygon=(np.array([[0.2, 0.4], [0.8, 0.4], [0.9, 0.9], [0.1, 0.9]])
                                   * [w, h]).astype(np.int64),
                          triggering_anchors=[sv.Position.BOTTOM_CENTER])
    ready.wait()

    cpu0, start = time.process_time(), time.monotonic()
    cap = cv2.VideoCapture(args.input)
    timings = {k: [] for k in ("decode", "preprocess", "inference", "postprocess_nms",
                               "track_analytics", "frame_to_event")}
    frames = events = 0
    in_zone = set()
    while args.frames is None or frames < args.frames:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        t1 = time.perf_counter()
        dets, (pre, inf, post) = detect(session, frame, wanted)
        t2 = time.perf_counter()
        tracked = tracker.update_with_detections(dets)
        crossed_in, crossed_out = line.trigger(tracked)
        inside = zone.trigger(tracked)
        ids = set(tracked.tracker_id[inside].tolist()) if len(tracked) else set()
        # Events as the agent counts them: crossings, zone entries and exits.
        events += int(crossed_in.sum() + crossed_out.sum()) + len(ids ^ in_zone)
        in_zone = ids
        t3 = time.perf_counter()
        for k, v in zip(timings, (t1 - t0, pre, inf, post, t3 - t2, t3 - t1)):
            timings[k].append(v)
        frames += 1
    end, cpu1 = time.monotonic(), time.process_time()
    cap.release()
    # Process CPU clocks: in thread mode every stream reads the same process's clock, and
    # the parent combines them (first start to last end).
    return {"stream": index, "frames": frames, "events": events, "start": start, "end": end,
            "cpu0": cpu0, "cpu1": cpu1, "timings": timings,
            "peak_rss_mib": vm_hwm_mib(), "frame_size": [w, h]}


def pss_mib(pids):
    """Proportional set size of these processes, summed: shared library pages counted once."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += sum(int(l.split()[1]) for l in f if l.startswith("Pss:"))
        except OSError:
            pass
    return total / 1024


def run(args):
    n = args.streams
    # One stream needs no second process: run it in this one, as a user would.
    if n == 1:
        args.mode = "thread"
    if args.mode == "process":
        ctx = mp.get_context("fork")
        ready, results = ctx.Barrier(n), ctx.Queue()
        workers = [ctx.Process(target=stream, args=(i, args, ready, results)) for i in range(n)]
    else:
        import queue
        ready, results = threading.Barrier(n), queue.Queue()
        workers = [threading.Thread(target=stream, args=(i, args, ready, results)) for i in range(n)]
    for wk in workers:
        wk.start()
    pids = [os.getpid()] + ([wk.pid for wk in workers] if args.mode == "process" else [])
    peak_pss, got = 0.0, []
    # Sample the footprint while the streams run; collect results as they arrive (a full
    # queue would block a child's exit).
    while len(got) < n:
        peak_pss = max(peak_pss, pss_mib(pids))
        try:
            r = results.get(timeout=0.2)
        except Exception:
            if not any(wk.is_alive() for wk in workers):
                raise SystemExit(f"error: {n - len(got)} stream(s) died without a result")
            continue
        if "error" in r:
            if args.mode == "process":
                for wk in workers:
                    wk.terminate()
            raise SystemExit(f"error: stream {r['stream']}: {r['error']}")
        got.append(r)
    for wk in workers:
        wk.join()
    got.sort(key=lambda r: r["stream"])

    wall = max(r["end"] for r in got) - min(r["start"] for r in got)
    frames = sum(r["frames"] for r in got)
    if args.mode == "process":
        cpu_secs = sum(r["cpu1"] - r["cpu0"] for r in got)
        rss = sum(r["peak_rss_mib"] for r in got) + vm_hwm_mib()
    else:
        cpu_secs = max(r["cpu1"] for r in got) - min(r["cpu0"] for r in got)
        rss = vm_hwm_mib()
    merged = {k: [v for r in got for v in r["timings"][k]] for k in got[0]["timings"]}
    stage_names = ["decode", "preprocess", "inference", "postprocess_nms", "track_analytics"]
    return {
        "implementation": f"python {sys.version.split()[0]}: opencv {cv2.__version__}, "
                          f"onnxruntime {ort.__version__}, supervision {sv.__version__}, numpy {np.__version__}",
        "mode": args.mode,
        "clip": args.input,
        "model": args.model,
        "model_input": [yolox.SIZE, yolox.SIZE],
        "frame_size": got[0]["frame_size"],
        "streams": n,
        "threads": args.threads,
        "frames_limit": args.frames,
        "cores": os.cpu_count(),
        "analytics": ANALYTICS,
        "pipeline": {
            "frames": frames,
            "dropped": 0,
            "events": sum(r["events"] for r in got),
            "wall_secs": wall,
            "fps_total": frames / max(wall, 1e-9),
            "per_stream": [{"stream": r["stream"], "frames": r["frames"], "dropped": 0, "events": r["events"],
                            "fps": r["frames"] / max(r["end"] - r["start"], 1e-9)} for r in got],
            "cpu_percent": cpu_secs / max(wall, 1e-9) * 100,
            "stages": [dict(stage=s, **summary(merged[s])) for s in stage_names],
            "frame_to_event": summary(merged["frame_to_event"]),
        },
        # Sum of every process's VmHWM (the parent's included): what `ps` would add up. Shared
        # library pages count once per process here; peak_pss_mib counts them once.
        "peak_rss_mib": rss,
        "peak_pss_mib": peak_pss,
    }


def to_text(rep):
    p = rep["pipeline"]
    how = ("in one process" if rep["streams"] == 1 else
           "as processes" if rep["mode"] == "process" else "as threads of one process")
    lines = [
        f"python baseline: {rep['clip']} ({rep['frame_size'][0]}×{rep['frame_size'][1]}), model "
        f"{os.path.basename(rep['model'])}, {rep['streams']} stream(s) {how}, "
        f"{rep['threads']} ORT thread(s) each, {rep['cores']} core(s)",
        f"  {rep['implementation']}",
        "",
        f"pipeline      {p['fps_total']:8.1f} fps total   per stream: "
        + " / ".join(f"{s['fps']:.1f}" for s in p["per_stream"])
        + f"   ({p['frames']} frames in {p['wall_secs']:.2f} s, {p['events']} events)",
        "",
        f"{'stage (ms per frame)':<22} {'p50':>9} {'p99':>9} {'mean':>9} {'max':>9}",
    ]
    for st in p["stages"] + [dict(stage="frame → events", **p["frame_to_event"])]:
        lines.append(f"{st['stage']:<22} {st['p50_ms']:9.3f} {st['p99_ms']:9.3f} {st['mean_ms']:9.3f} {st['max_ms']:9.3f}")
    lines += ["", f"CPU: pipeline {p['cpu_percent']:.0f} % (100 % = one core)   peak RSS {rep['peak_rss_mib']:.0f} MiB "
                  + (f"(sum over processes; PSS {rep['peak_pss_mib']:.0f} MiB)" if rep["mode"] == "process"
                   else f"(PSS {rep['peak_pss_mib']:.0f} MiB)")]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True, help="clip to replay (every stream decodes its own copy)")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--frames", type=int, default=None, help="frames per stream (default: the whole clip)")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="yolox_nano.onnx (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads per stream")
    ap.add_argument("--mode", choices=["process", "thread"], default="process",
                    help="one process per stream (default) or one thread per stream")
    ap.add_argument("--json", help="also write the report as JSON here")
    args = ap.parse_args()
    if args.streams < 1 or (args.frames is not None and args.frames < 1):
        ap.error("--streams and --frames must be at least 1")
    for path, what in ((args.input, "clip"), (args.model, "model")):
        if not os.path.isfile(path):
            raise SystemExit(f"error: {what} {path}: no such file")
    rep = run(args)
    sys.stdout.write(to_text(rep))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
