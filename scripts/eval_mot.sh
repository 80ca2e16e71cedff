#!/usr/bin/env bash
# MOT figures on the hand-checked track ground truth (README, Accuracy: tracking):
# samples/motorbikes_vn_boulevard_1568x778.mot.csv, frames 8–67, near carriageway (box bottom
# centre in x 560–1300, y ≥ 280), every two-wheeler with its identity (see samples/README.md).
# Tracks come from `edge-agent track` with the clip's two-wheeler set-up, plain ByteTrack
# (`[cameras.tracker] large_motion = false`, "before") and the default large-motion association
# ("after"), at every frame and at 5 and 2.5 detected frames a second.
# Usage: scripts/eval_mot.sh [OUT_DIR]   (EDGE_AGENT=path for another build; debug by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${EDGE_AGENT:-target/debug/edge-agent}"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
clip=motorbikes_vn_boulevard_1568x778
after="samples/$clip.two_wheelers.toml"
# "before": the same config with the large-motion association off (written beside the sample,
# whose source path is relative to its folder; removed on exit).
before="samples/.$clip.before.toml"
trap 'rm -f "$before"' EXIT
sed 's/^\[\[cameras.lines\]\]$/[cameras.tracker]\nlarge_motion = false\n\n[[cameras.lines]]/; t done; b; :done; n; b done' "$after" > "$before"
grep -q "large_motion = false" "$before"
printf '%-8s %-10s %7s %7s %6s %6s %6s\n' tracker rate MOTA IDF1 IDSW FP FN
for variant in before after; do
  config=$before; [ "$variant" = after ] && config=$after
  for rate in all 5 2.5; do
    csv="$out/$variant.$rate.csv"
    fps=(); [ "$rate" != all ] && fps=(--max-detect-fps "$rate")
    "$bin" track --config "$config" --out "$csv" --frames 68 "${fps[@]}" 2>/dev/null
    "$bin" eval --mot-gt "samples/$clip.mot.csv" --mot-pred "$csv" --mot-frames 8-67 \
      --mot-region 560,280,1300,778 --mot-pred-frames-only --json "$csv.json" >/dev/null
    python3 - "$csv.json" "$variant" "$rate" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["mot"]
print("%-8s %-10s %7.3f %7.3f %6d %6d %6d" % (sys.argv[2], sys.argv[3], m["mota"], m["idf1"], m["id_switches"], m["false_positives"], m["false_negatives"]))
PY
  done
done
echo "(track CSVs and reports in $out)"
