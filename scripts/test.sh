#!/usr/bin/env bash
# The test command (README, CI): set-up (idempotent), build, then every test in the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
# --tests too: dev-dependency features (the events crate's `proptest` generators) unify as in
# `cargo test`, so the test run below reuses this build instead of compiling the workspace again.
cargo build --workspace --bins --tests
cargo test --workspace "$@"
