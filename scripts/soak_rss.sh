#!/usr/bin/env bash
# RSS soak: does `edge-agent run` hold its memory steady on live cameras over a long run, and
# does each camera's evidence ring stay within its cap?
#
#   DURATION=30m scripts/soak_rss.sh            # default 30m; also 90s, 2h, or seconds
#
# Starts one `edge-agent simulate-camera` per clip (looping RTSP, real time), writes an agent
# config for them into a temp dir (each camera takes the lines, zones and rules of its sample
# config in samples/, with the RTSP URL as source), runs the real agent (live mode, outbox,
# JSON-lines delivery to a file) and samples its RSS (VmRSS) every INTERVAL seconds.
# At the end: first / last / max RSS and whether every sample after warm-up stays within
# ±TOLERANCE % of the first post-warm-up sample. Exit 0 when it does, 1 when it does not,
# 2 when the run itself failed (agent died, no frames processed, ...).
#
# Environment: DURATION (30m), INTERVAL (10 s), WARMUP (default 20 % of DURATION),
# TOLERANCE (5), CLIPS (space-separated sample clip names, default four yolox_nano samples),
# PROFILE (debug | release; the script builds nothing), KEEP_DIR (keep the temp dir; it is
# kept anyway on failure), PASSTHROUGH (1, the default: the simulated cameras send the clips'
# own H.264 without re-encoding — ≈1 % of a core per 720p camera instead of ≈18 % for x264, so
# the run measures the agent, not the encoder; every .mp4 sample is H.264. 0: re-encode, as
# before; needed for a clip that is not H.264, which a pass-through camera refuses by name).
# Not part of CI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
samples="$(cd "$root/.." && pwd)/shared/samples"

seconds_of() { # 90 | 90s | 30m | 2h → seconds
  local v="$1"
  case "$v" in
    *h) echo $(( ${v%h} * 3600 )) ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
duration="$(seconds_of "${DURATION:-30m}")"
interval="$(seconds_of "${INTERVAL:-10}")"
warmup="$(seconds_of "${WARMUP:-$(( duration / 5 ))}")"
tolerance="${TOLERANCE:-5}"
# MAX_DETECT_FPS: cap detection per camera (max_detect_fps), e.g. 12.5 for the 4×720p target.
clips=(${CLIPS:-intersection_day_960x540 motorbikes_vn_intersection_1006x720 parking_topdown_768x432 motorbikes_jakarta_boulevard_1024x576})
bin="$root/target/${PROFILE:-debug}/edge-agent"
passthrough=()
case "${PASSTHROUGH:-1}" in
  1) passthrough=(--passthrough) ;;
  0) ;;
  *) echo "error: PASSTHROUGH must be 0 or 1, not '$PASSTHROUGH'" >&2; exit 2 ;;
esac
[[ -x "$bin" ]] || { echo "error: $bin not found: run cargo build --workspace --bins" >&2; exit 2; }
(( duration > warmup + interval )) || { echo "error: DURATION ($duration s) must exceed WARMUP ($warmup s) + INTERVAL ($interval s)" >&2; exit 2; }

dir="$(mktemp -d /tmp/roadsight-soak.XXXXXX)"
pids=() agent=""
finish() {
  local rc=$?
  # The agent first (SIGINT: it drains and stops cleanly), then the cameras it reads.
  if [[ -n "$agent" ]] && kill -0 "$agent" 2>/dev/null; then
    kill -INT "$agent" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$agent" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$agent" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $rc -eq 0 && -z "${KEEP_DIR:-}" ]]; then rm -rf "$dir"; else echo "kept $dir (logs, config, samples)"; fi
}
trap finish EXIT
trap 'exit 2' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # port [pid log]: until something listens (30 s), or the process pid dies
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    if [[ -n "${2:-}" ]] && ! kill -0 "$2" 2>/dev/null; then
      echo "error: the simulated camera for port $1 exited; its log:" >&2; cat "$3" >&2; return 1
    fi
    sleep 0.1
  done
  echo "error: nothing listening on port $1 after 30 s" >&2; return 1
}
# A sample config's cameras, with the source replaced by the RTSP URL (as scripts/demo.sh does).
cameras_of() { # sample config, RTSP URL, index (+ max_detect_fps = $MAX_DETECT_FPS when set)
  # The camera id gets the index appended, so one clip can be served as several cameras.
  awk -v url="$2" -v i="$3" -v cap="${MAX_DETECT_FPS:-}" 'found || /^\[\[cameras\]\]/ {
    found = 1
    if ($1 == "source") { print "source = \"" url "\""; if (cap != "") print "max_detect_fps = " cap }
    else if ($1 == "id" && !renamed) { sub(/"$/, "_" i "\""); print; renamed = 1 }
    else print
  }' "$1"
}

{
  printf 'site_id = "soak"\nagent_id = "soak-agent"\n\n'
  for i in "${!clips[@]}"; do
    clip="${clips[$i]}"
    [[ -f "$root/samples/$clip.toml" ]] || { echo "error: no sample config samples/$clip.toml" >&2; exit 2; }
    port="$(free_port)"
    "$bin" simulate-camera --input "$samples/$clip.mp4" --port "$port" --mount "/cam$i" "${passthrough[@]}" >"$dir/camera-$i.log" 2>&1 &
    pids+=($!)
    wait_port "$port" "$!" "$dir/camera-$i.log"
    cameras_of "$root/samples/$clip.toml" "rtsp://127.0.0.1:$port/cam$i" "$i"
    echo
  done
} >"$dir/agent.toml"

ops_port="$(free_port)"
"$bin" run --config "$dir/agent.toml" --events "$dir/events.jsonl" --state-dir "$dir/state" --log info \
  --http-listen "127.0.0.1:$ops_port" >"$dir/agent.log" 2>&1 &
agent=$!
echo "soak: edge-agent run (pid $agent, $bin) on ${#clips[@]} looping RTSP cameras ($([[ ${#passthrough[@]} -gt 0 ]] && echo "H.264 pass-through" || echo "re-encoded")): ${clips[*]}"
echo "soak: ${duration} s, RSS every ${interval} s, warm-up ${warmup} s, tolerance ±${tolerance} %; files in $dir"

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
# The largest evidence ring of any camera now (MiB), from /metrics.
ring_mib() {
  curl -fsS "http://127.0.0.1:$ops_port/metrics" 2>/dev/null |
    awk '/^roadsight_agent_evidence_ring_bytes/ { if ($2 > m) m = $2 } END { printf "%.1f", m / 1048576 }'
}
ring_cap_mib=16 # [cameras.evidence] ring_max_mb, its default (the sample configs do not set it)
ring_max=0
echo "elapsed_s,rss_mib,evidence_ring_max_mib" >"$dir/rss.csv"
start=$SECONDS
while :; do
  elapsed=$(( SECONDS - start ))
  rss="$(rss_mib "$agent")"
  [[ -n "$rss" ]] || { echo "error: edge-agent exited during the soak (after $elapsed s); tail of its log:" >&2; tail -n 20 "$dir/agent.log" >&2; exit 2; }
  ring="$(ring_mib)"
  ring_max="$(awk -v a="$ring_max" -v b="${ring:-0}" 'BEGIN { print (b > a ? b : a) }')"
  echo "$elapsed,$rss,$ring" >>"$dir/rss.csv"
  printf '  %6d s  RSS %8.1f MiB  evidence ring %5s MiB  events %s\n' "$elapsed" "$rss" "$ring" "$(cat "$dir/events.jsonl" 2>/dev/null | wc -l)"
  (( elapsed >= duration )) && break
  sleep "$(( interval < duration - elapsed ? interval : duration - elapsed ))"
done

# The agent must have been doing the work: every camera running and producing events.
# Real-time check: every camera's processing rate and drops, from the agent's /health.
curl -fsS "http://127.0.0.1:$ops_port/health" >"$dir/health.json" && python3 - "$dir/health.json" <<'PY' || echo "  (no /health answer)"
import json, sys
h = json.load(open(sys.argv[1]))
for cam, c in h["cameras"].items():
    print(f"  {cam:<36} {c['state']:<9} {c['fps']:6.1f} detected fps  {c['frames']:7d} frames  {c['dropped']:6d} dropped")
PY
curl -fsS "http://127.0.0.1:$ops_port/metrics" >"$dir/metrics.txt" || true
python3 - "$dir/metrics.txt" <<'PY' || true
# frame → events p99 per camera from the Prometheus histogram (upper bucket bound).
import re, sys, collections
buckets = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r'roadsight_agent_stage_seconds_bucket\{([^}]*)\} (\S+)', line)
    if not m:
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    if labels.get("stage") == "frame_to_events":
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        buckets[labels["camera"]].append((le, float(m.group(2))))
for cam, bs in sorted(buckets.items()):
    bs.sort()
    total = bs[-1][1]
    p99 = next(le for le, n in bs if n >= 0.99 * total)
    p50 = next(le for le, n in bs if n >= 0.50 * total)
    print(f"  {cam:<36} frame→events p50 ≤ {p50 * 1000:.0f} ms, p99 ≤ {p99 * 1000:.0f} ms ({int(total)} frames)")
PY

echo "evidence ring: at most ${ring_max} MiB for any camera (cap ${ring_cap_mib} MiB)"
if awk -v m="$ring_max" -v c="$ring_cap_mib" 'BEGIN { exit !(m > c) }'; then
  echo "FAIL: an evidence ring exceeded its cap"; exit 1
fi

python3 - "$dir/rss.csv" "$dir/events.jsonl" "$warmup" "$tolerance" "${#clips[@]}" <<'EOF'
import collections, csv, json, sys
rss_csv, events_path, warmup, tolerance, cameras = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
samples = [(float(r["elapsed_s"]), float(r["rss_mib"])) for r in csv.DictReader(open(rss_csv))]
per_camera, running = collections.Counter(), set()
try:
    for line in open(events_path):
        e = json.loads(line)
        per_camera[e["camera_id"]] += 1
        if e["type"] == "camera_status" and e.get("state") == "running":
            running.add(e["camera_id"])
except FileNotFoundError:
    pass
print(f"events per camera: {dict(per_camera)}; cameras that reached 'running': {len(running)}/{cameras}")
if len(running) < cameras:
    print("FAILED: not every camera ran, so this soak measured less than it should")
    sys.exit(2)

rss = [r for _, r in samples]
after = [r for t, r in samples if t >= warmup]
if len(after) < 2:
    print("FAILED: fewer than 2 samples after warm-up; lengthen DURATION or shorten WARMUP")
    sys.exit(2)
ref = after[0]
lo, hi = min(after), max(after)
dev_lo, dev_hi = (lo / ref - 1) * 100, (hi / ref - 1) * 100
# Least-squares slope over the post-warm-up samples: a leak shows as a steady climb.
ts = [t for t, _ in samples if t >= warmup]
mt, mr = sum(ts) / len(ts), sum(after) / len(after)
slope = sum((t - mt) * (r - mr) for t, r in zip(ts, after)) / max(sum((t - mt) ** 2 for t in ts), 1e-9)
print(f"RSS MiB: first {rss[0]:.1f}, after warm-up {ref:.1f}, last {rss[-1]:.1f}, max {max(rss):.1f}; "
      f"after warm-up min {lo:.1f} ({dev_lo:+.1f} %), max {hi:.1f} ({dev_hi:+.1f} %); "
      f"trend {slope * 3600:+.1f} MiB/h over {len(after)} samples")
ok = -tolerance <= dev_lo and dev_hi <= tolerance
print(f"{'PASS' if ok else 'FAIL'}: RSS {'stays' if ok else 'does not stay'} within ±{tolerance:g} % after {warmup:g} s of warm-up")
sys.exit(0 if ok else 1)
EOF
