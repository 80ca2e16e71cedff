#!/usr/bin/env bash
# The demo (README's run command). One command, nothing else to set up:
#   - ioc-api (SQLite + its built-in MQTT broker) on http://127.0.0.1:8080,
#   - two shared clips served as looping RTSP cameras on loopback,
#   - edge-agent watching both cameras and publishing over MQTT,
# then it prints the dashboard URL (with an operator key) — counts and incidents arrive within
# a minute. Ctrl-C stops everything. Ports: DEMO_HTTP, DEMO_MQTT_PORT, DEMO_RTSP_PORT(+1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
cargo build --workspace --bins

HTTP="${DEMO_HTTP:-127.0.0.1:8080}"
MQTT_PORT="${DEMO_MQTT_PORT:-1883}"
RTSP_PORT="${DEMO_RTSP_PORT:-8554}"
SAMPLES="$(cd .. && pwd)/shared/samples"
OUT=out/demo
BIN=target/debug
rm -rf "$OUT" && mkdir -p "$OUT"

pids=()
cleanup() {
  # Last started first: the agent flushes its outbox to the still-running broker, then the
  # cameras and ioc-api stop. (Each runs in its own session, so a Ctrl-C reaches only this
  # script, which stops them in this order.)
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -INT "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 1 75); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.2; done
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

OPERATOR_KEY="$("$BIN/ioc-api" keys create --role operator --name demo-operator --data-dir "$OUT/ioc" 2>/dev/null)"
# The agent's credential: bound to site "demo", valid for MQTT (the broker refuses anyone else).
AGENT_CREDENTIAL="$("$BIN/ioc-api" agents create --site demo --name demo-edge-01 --data-dir "$OUT/ioc" 2>/dev/null)"
# A person to sign in on the dashboard (the password goes through a file, never argv).
DEMO_PASSWORD="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
(umask 077; printf '%s\n' "$DEMO_PASSWORD" >"$OUT/demo-operator.password")
"$BIN/ioc-api" users create --name demo --role operator --password-file "$OUT/demo-operator.password" --data-dir "$OUT/ioc" >/dev/null
setsid "$BIN/ioc-api" serve --listen "$HTTP" --data-dir "$OUT/ioc" --embedded-broker "127.0.0.1:$MQTT_PORT" \
  >"$OUT/ioc-api.log" 2>&1 &
pids+=($!)
setsid "$BIN/edge-agent" simulate-camera --input "$SAMPLES/intersection_day_960x540.mp4" --port "$RTSP_PORT" --mount /intersection \
  >"$OUT/camera-1.log" 2>&1 &
pids+=($!)
setsid "$BIN/edge-agent" simulate-camera --input "$SAMPLES/motorbikes_vn_intersection_1006x720.mp4" --port "$((RTSP_PORT + 1))" --mount /junction \
  >"$OUT/camera-2.log" 2>&1 &
pids+=($!)

# Agent config: the sample cameras' lines, zones and rules, reading the simulated RTSP cameras.
cameras_of() { # sample config, RTSP URL
  awk -v url="$2" 'found || /^\[\[cameras\]\]/ { found = 1; if ($1 == "source") print "source = \"" url "\""; else print }' "samples/$1"
}
{
  printf 'site_id = "demo"\nagent_id = "demo-edge-01"\n\n[mqtt]\nurl = "mqtt://127.0.0.1:%s"\n%s\n\n' "$MQTT_PORT" "$AGENT_CREDENTIAL"
  cameras_of intersection_day_960x540.toml "rtsp://127.0.0.1:$RTSP_PORT/intersection"
  echo
  cameras_of motorbikes_vn_intersection_1006x720.toml "rtsp://127.0.0.1:$((RTSP_PORT + 1))/junction"
} >"$OUT/agent.toml"
chmod 600 "$OUT/agent.toml"

for _ in $(seq 1 100); do
  curl -fs "http://$HTTP/health" >/dev/null 2>&1 && break
  sleep 0.1
done
setsid "$BIN/edge-agent" run --config "$OUT/agent.toml" --state-dir "$OUT/agent-state" --log info >"$OUT/edge-agent.log" 2>&1 &
pids+=($!)

cat <<EOF

  Roadsight demo running.
  Dashboard:   http://$HTTP/   (user demo, password $DEMO_PASSWORD)
  API docs:    http://$HTTP/api/v1/docs
  Operator key (X-Api-Key, for scripts): $OPERATOR_KEY
  Logs:        $OUT/*.log      Ctrl-C to stop.

EOF
wait
