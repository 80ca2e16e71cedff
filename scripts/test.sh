#!/usr/bin/env bash
# The test command (README, CI): set-up (idempotent), build, then every test in the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
cargo build --workspace --bins
cargo test --workspace "$@"
