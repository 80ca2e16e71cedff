#!/usr/bin/env bash
# Line counts at several detection rates against the hand counts (README, Accuracy: counts at
# low detection rates), for the five clips with hand counts in samples/:
#   highway_cdnet_320x240 and intersection_day_960x540 with their sample configs (all classes),
#   the three Vietnamese motorbike clips with their `.two_wheelers.toml` set-ups (two-wheelers).
# Each clip is detected once (every frame) and replayed at each rate's `max_detect_fps`
# schedule (`edge-agent eval --counts-sweep`); detections are cached in CACHE_DIR, so a re-run
# after a tracker change takes seconds.
# Usage: scripts/counts_sweep.sh [CACHE_DIR] [RATES]   (default rates all,12.5,5,2.5; needs a
# built edge-agent, debug by default, EDGE_AGENT=path for another build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${EDGE_AGENT:-target/debug/edge-agent}"
cache="${1:-${TMPDIR:-/tmp}/roadsight-counts-sweep}"
rates="${2:-all,12.5,5,2.5}"
mkdir -p "$cache"
runs=(
  "highway_cdnet_320x240:highway_cdnet_320x240.toml:highway_cdnet_320x240.counts.csv"
  "intersection_day_960x540:intersection_day_960x540.toml:intersection_day_960x540.counts.csv"
  "motorbikes_vn_intersection_wide_1280x720:motorbikes_vn_intersection_wide_1280x720.two_wheelers.toml:motorbikes_vn_intersection_wide_1280x720.twowheeler_counts.csv"
  "motorbikes_vn_boulevard_1568x778:motorbikes_vn_boulevard_1568x778.two_wheelers.toml:motorbikes_vn_boulevard_1568x778.twowheeler_counts.csv"
  "motorbikes_vn_intersection_1006x720:motorbikes_vn_intersection_1006x720.two_wheelers.toml:motorbikes_vn_intersection_1006x720.twowheeler_counts.csv"
)
for run in "${runs[@]}"; do
  IFS=: read -r clip config hand <<<"$run"
  echo "== $clip ($config)"
  "$bin" eval --counts-sweep --config "samples/$config" --counts-gt "samples/$hand" --rates "$rates" \
    --detections-cache "$cache/$clip.detections.json" --json "$cache/$clip.sweep.json"
  echo
done
python3 - "$cache" "${runs[@]}" <<'PY'
import json, sys
cache, runs = sys.argv[1], sys.argv[2:]
rows, totals = [], None
for run in runs:
    clip = run.split(":")[0]
    r = json.load(open(f"{cache}/{clip}.sweep.json"))["counts_sweep"]
    rates = [x["rate"] for x in r["rates"]]
    label = lambda x: "all frames" if x == "AllFrames" else f'{x["Fps"]} fps'
    hand = r["rates"][0]["counts"]["total"]["hand_count"]
    cells = [x["counts"]["total"]["counted"] for x in r["rates"]]
    rows.append((clip, hand, cells, [label(x) for x in rates]))
print("| clip | hand | " + " | ".join(rows[0][3]) + " |")
print("|---|---|" + "---|" * len(rows[0][3]))
for clip, hand, cells, _ in rows:
    print(f"| {clip} | {hand} | " + " | ".join(f"{c} ({100*(c-hand)/hand:+.0f} %)" if hand else str(c) for c in cells) + " |")
moto = [r for r in rows if r[0].startswith("motorbikes_vn")]
hand = sum(r[1] for r in moto)
print(f"| two-wheelers, three motorbike clips | {hand} | " + " | ".join(f"{s} ({100*(s-hand)/hand:+.0f} %)" for s in (sum(r[2][i] for r in moto) for i in range(len(moto[0][2])))) + " |")
PY
