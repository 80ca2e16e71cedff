#!/usr/bin/env bash
# The demo (README): set-up, then edge-agent on a sample clip — detections, tracks, line
# counts — writing events to out/demo-events.jsonl and a preview image to out/demo-preview.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
cargo build --workspace --bins
mkdir -p out
BIN=target/debug/edge-agent
CONFIG=samples/intersection_day_960x540.toml
rm -f out/demo-events.jsonl
"$BIN" preview --config "$CONFIG" --frame 120 --detect --out out/demo-preview.png
"$BIN" run --config "$CONFIG" --events out/demo-events.jsonl --state-dir out/demo-state
echo
echo "Events by type:"
grep -o '"type":"[a-z_]*"' out/demo-events.jsonl | sort | uniq -c
echo
echo "Line crossings:"
grep '"type":"line_crossing"' out/demo-events.jsonl | head -n 10
echo
echo "Events: out/demo-events.jsonl   Preview: out/demo-preview.png"
