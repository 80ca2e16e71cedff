#!/usr/bin/env bash
# Two-wheeler accuracy before/after (README, Accuracy): for each of the three motorbike clips
# with hand-made ground truth in samples/, scores
#   - box recall of two-wheelers (motorcycle+bicycle merged, boxes >= 24 px high, IoU >= 0.5,
#     score >= 0.3) with `edge-agent detect` + `edge-agent eval --gt`;
#   - two-wheeler line counts with `edge-agent run` + `edge-agent eval --counts-gt`;
# "before" = the clip's sample config (yolox_nano at 416 × 416), "after" = its
# `<clip>.two_wheelers.toml` (yolox_nano_dynamic_hw at input_long_side 1280, class thresholds,
# rider–bike fusion, carriageway zones).
# Usage: scripts/eval_two_wheelers.sh [OUT_DIR]   (needs a built edge-agent; debug by default,
# EDGE_AGENT=path to use another build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${EDGE_AGENT:-target/debug/edge-agent}"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
clips=(motorbikes_vn_intersection_wide_1280x720 motorbikes_vn_boulevard_1568x778 motorbikes_vn_intersection_1006x720)

recall() { # CSV → recall of the merged two-wheeler class at score 0.3
  "$bin" eval --gt "samples/$1.boxes.csv" --pred "$2" --merge motorcycle,bicycle --min-height 24 --json "$2.json" >/dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r["detection"]["classes"][0]; print("%.2f" % c["recall"])' "$2.json"
}

counts() { # config → "hand/counted" per line and direction
  rm -f "$2"
  "$bin" run --config "$1" --events "$2" --state-dir "$out/state" >/dev/null 2>&1
  "$bin" eval --counts-gt "samples/$3.twowheeler_counts.csv" --events "$2" --json "$2.json" >/dev/null
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("; ".join("%s %s: %d / %d" % (l["line_id"], l["direction"], l["hand_count"], l["counted"]) for l in r["counts"]["rows"]))' "$2.json"
}

printf '%-42s | %-22s | %s\n' "clip" "recall before → after" "line, direction: hand / counted (before → after)"
for clip in "${clips[@]}"; do
  # Boxes exactly as each config's camera detects them (model, input size, tiles), from 0.05.
  "$bin" detect --config "samples/$clip.toml" --score 0.05 --out "$out/$clip.before.csv" 2>/dev/null
  "$bin" detect --config "samples/$clip.two_wheelers.toml" --score 0.05 --out "$out/$clip.after.csv" 2>/dev/null
  r_before=$(recall "$clip" "$out/$clip.before.csv")
  r_after=$(recall "$clip" "$out/$clip.after.csv")
  c_before=$(counts "samples/$clip.toml" "$out/$clip.before.jsonl" "$clip")
  c_after=$(counts "samples/$clip.two_wheelers.toml" "$out/$clip.after.jsonl" "$clip")
  printf '%-42s | %-22s | before: %s\n' "$clip" "$r_before → $r_after" "$c_before"
  printf '%-42s | %-22s | after:  %s\n' "" "" "$c_after"
done
echo "(reports and events in $out)"
