#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine with Rust:
#   1. system packages (GStreamer + plugins, RTSP server lib, mosquitto, PostgreSQL),
#   2. ONNX Runtime shared library from the pinned PyPI wheel (sha256-checked),
#   3. the detection models (from ../shared/models when present, else their manifest's
#      source URL), sha256-checked.
# Everything lands in $ROADSIGHT_HOME (default ~/.cache/roadsight), where edge-agent looks
# by itself. Safe to run again: each step is skipped when its result is already in place.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${ROADSIGHT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/roadsight}"
ORT_VERSION="1.31.1"
ORT_LIB_SHA256="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
SHARED_MODELS="${ROADSIGHT_SHARED_MODELS:-$ROOT/../shared/models}"

log() { printf '[setup] %s\n' "$*" >&2; }

apt_packages=(
  pkg-config build-essential curl ca-certificates unzip python3 python3-pip
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  mosquitto mosquitto-clients postgresql chromium
)

install_apt() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { log "system packages present"; return; }
  log "installing: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  for attempt in 1 2 3; do
    mkdir -p "$HOME_DIR"
    if $sudo apt-get update -qq >"$HOME_DIR/apt.log" 2>&1 &&
       $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$HOME_DIR/apt.log" 2>&1; then
      log "system packages installed (log: $HOME_DIR/apt.log)"; return
    fi
    tail -n 20 "$HOME_DIR/apt.log" >&2
    log "apt failed (attempt $attempt), retrying in 10 s"; sleep 10
  done
  log "ERROR: could not install system packages"; exit 1
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

install_onnxruntime() {
  local lib="$HOME_DIR/onnxruntime/libonnxruntime.so.$ORT_VERSION"
  if [ -f "$lib" ] && [ "$(sha_of "$lib")" = "$ORT_LIB_SHA256" ]; then
    log "onnxruntime $ORT_VERSION present"; return
  fi
  local tmp; tmp="$(mktemp -d)"
  log "fetching onnxruntime $ORT_VERSION wheel from PyPI"
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.11 "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$HOME_DIR/onnxruntime"
  unzip -q -o -j "$tmp"/onnxruntime-"$ORT_VERSION"-*.whl "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$tmp/lib"
  local got; got="$(sha_of "$tmp/lib/libonnxruntime.so.$ORT_VERSION")"
  if [ "$got" != "$ORT_LIB_SHA256" ]; then
    log "ERROR: libonnxruntime.so.$ORT_VERSION sha256 $got, expected $ORT_LIB_SHA256"; exit 1
  fi
  mv "$tmp/lib/libonnxruntime.so.$ORT_VERSION" "$lib"
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$HOME_DIR/onnxruntime/libonnxruntime.so"
  rm -rf "$tmp"
  log "onnxruntime installed at $lib"
}

# Prints "file sha256 source_url" for each manifest in models/.
manifest_rows() {
  python3 - "$ROOT/models" <<'PY'
import sys, tomllib, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.toml")):
    if p.name == "Cargo.toml":
        continue
    m = tomllib.loads(p.read_text())
    print(m["file"], m["sha256"], m.get("source_url", "-"))
PY
}

install_models() {
  mkdir -p "$HOME_DIR/models"
  local failed=0 rows
  rows="$(manifest_rows)" || { log "ERROR: cannot read the model manifests in $ROOT/models"; exit 1; }
  while read -r file sha url; do
    local dest="$HOME_DIR/models/$file"
    if [ -f "$dest" ] && [ "$(sha_of "$dest")" = "$sha" ]; then continue; fi
    if [ -f "$SHARED_MODELS/$file" ]; then
      cp "$SHARED_MODELS/$file" "$dest.part"
    elif [ "$url" != "-" ]; then
      log "downloading $file from $url"
      curl -fsSL --retry 3 -o "$dest.part" "$url" || { log "WARN: download of $file failed"; failed=1; continue; }
    else
      log "WARN: $file is not in $SHARED_MODELS and has no source URL; skipped"; continue
    fi
    local got; got="$(sha_of "$dest.part")"
    if [ "$got" != "$sha" ]; then
      rm -f "$dest.part"; log "ERROR: $file sha256 $got, expected $sha"; failed=1; continue
    fi
    mv "$dest.part" "$dest"
    log "model $file ready"
  done <<< "$rows"
  [ $failed -eq 0 ] || { log "ERROR: some models could not be installed"; exit 1; }
  log "models in $HOME_DIR/models"
}

# Node.js (for the dashboard's browser test): the machine's own if present, else Debian's.
install_node_deps() {
  if ! command -v npm >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log "installing nodejs and npm"
    $sudo apt-get install -y -qq --no-install-recommends nodejs npm >>"$HOME_DIR/apt.log" 2>&1
  fi
  local e2e="$ROOT/tests/e2e"
  if [ ! -f "$e2e/node_modules/playwright-core/package.json" ] ||
     ! grep -q "\"version\": \"$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' "$e2e/package.json")\"" "$e2e/node_modules/playwright-core/package.json"; then
    log "installing playwright-core for the dashboard test"
    (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

main() {
  [ "${ROADSIGHT_SKIP_APT:-0}" = 1 ] || install_apt
  install_node_deps
  install_onnxruntime
  install_models
}
main "$@"
