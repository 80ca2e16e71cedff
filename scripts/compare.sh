#!/usr/bin/env bash
# edge-agent vs the Python baseline a user would write (scripts/python_baseline/), on the same
# clip, model (yolox_nano), ONNX Runtime threads, stream count and frame count, one after the
# other; prints both reports, then Rust fps / Python fps and the memory ratios.
#
#   scripts/compare.sh [--input CLIP] [--streams N] [--frames N] [--threads T] [--out DIR]
#
# Defaults: ../shared/samples/intersection_day_960x540.mp4, 1 stream, 300 frames, 2 threads,
# reports in out/compare/. Uses target/debug/edge-agent (our crates at opt-level 1, deps at 2:
# see the root Cargo.toml) unless PROFILE=release (target/release/edge-agent); this script
# builds nothing — run `cargo build --workspace --bins [--release]` first.
# Python streams run as one process each (PY_MODE=thread: threads of one process).
# Not part of CI: figures depend on what else the machine is doing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

input="$root/../shared/samples/intersection_day_960x540.mp4"
streams=1 frames=300 threads=2 out="$root/out/compare"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --input) input="$2"; shift 2 ;;
    --streams) streams="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

profile="${PROFILE:-debug}"
case "$profile" in
  debug) build_note="target/debug build (our crates opt-level 1, deps opt-level 2): NOT release speed" ;;
  release) build_note="target/release build" ;;
  *) echo "error: PROFILE must be debug or release, not '$profile'" >&2; exit 2 ;;
esac
bin="$root/target/$profile/edge-agent"
[[ -x "$bin" ]] || { echo "error: $bin not found: run cargo build --workspace --bins$([[ $profile == release ]] && echo ' --release')" >&2; exit 2; }
[[ -f "$input" ]] || { echo "error: clip $input: no such file" >&2; exit 2; }
home="${ROADSIGHT_HOME:-$HOME/.cache/roadsight}"
model="${ROADSIGHT_MODELS_DIR:-$home/models}/yolox_nano.onnx"
[[ -f "$model" ]] || { echo "error: model $model not found (run scripts/setup.sh)" >&2; exit 2; }

mkdir -p "$out"
tag="$(basename "${input%.*}")_${streams}s_${frames}f"
rust_json="$out/rust_$tag.json" py_json="$out/python_$tag.json"

echo "== compare: $(basename "$input"), yolox_nano, $streams stream(s), $frames frames each, $threads ORT thread(s)"
echo "== edge-agent: $bin ($build_note, built $(date -r "$bin" '+%F %T'))"
echo "== machine: $(nproc) core(s), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo
echo "---- edge-agent bench ----"
"$bin" bench --input "$input" --model yolox_nano --streams "$streams" --frames "$frames" \
  --threads "$threads" --json "$rust_json"
echo
echo "---- python baseline ----"
"$root/scripts/python_baseline/run.sh" --input "$input" --model "$model" --streams "$streams" \
  --frames "$frames" --threads "$threads" --mode "${PY_MODE:-process}" --json "$py_json"
echo

python3 - "$rust_json" "$py_json" "$build_note" <<'EOF'
import json, sys
rust, py = (json.load(open(p)) for p in sys.argv[1:3])
note = sys.argv[3]
rp, pp = rust["pipeline"], py["pipeline"]
ratio = lambda a, b: a / b if b else float("nan")
print(f"---- comparison ({note}) ----")
if rp["frames"] != pp["frames"]:
    print(f"WARNING: frames differ (rust {rp['frames']}, python {pp['frames']}): fps still compare, totals do not")
print(f"{'':26} {'edge-agent':>12} {'python':>12} {'rust/python':>12}")
rows = [
    ("fps total", rp["fps_total"], pp["fps_total"]),
    ("fps per stream (mean)", sum(s["fps"] for s in rp["per_stream"]) / len(rp["per_stream"]),
     sum(s["fps"] for s in pp["per_stream"]) / len(pp["per_stream"])),
    ("CPU % (100 = one core)", rp["cpu_percent"], pp["cpu_percent"]),
    ("CPU ms per frame", rp["cpu_percent"] * 10 / max(rp["fps_total"], 1e-9),
     pp["cpu_percent"] * 10 / max(pp["fps_total"], 1e-9)),
    ("peak RSS MiB (py: sum)", rust["peak_rss_mib"], py["peak_rss_mib"]),
    ("rust RSS / py PSS MiB", rust["peak_rss_mib"], py["peak_pss_mib"]),
]
for name, a, b in rows:
    print(f"{name:26} {a:12.1f} {b:12.1f} {ratio(a, b):12.2f}")
print(f"{'events':26} {rp['events']:12d} {pp['events']:12d}")
print()
stages = {s["stage"]: s for s in pp["stages"]}
print("p50 ms per frame: " + ", ".join(
    f"{r['stage']} {r['p50_ms']:.2f}/{stages[p]['p50_ms']:.2f}"
    for r, p in zip(rp["stages"], ["decode", "preprocess", "inference", "postprocess_nms", "track_analytics"])
) + "  (rust/python; rust decode is the wait for its source thread, python decodes inline)")
print(f"RESULT: Rust/Python fps = {ratio(rp['fps_total'], pp['fps_total']):.2f}, "
      f"RSS ratio = {ratio(rust['peak_rss_mib'], py['peak_rss_mib']):.2f} "
      f"(vs Python PSS {ratio(rust['peak_rss_mib'], py['peak_pss_mib']):.2f}), "
      f"{rust['streams']} stream(s) x {rust['frames_limit']} frames, {note}")
EOF
echo "reports: $rust_json $py_json"
