#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and all tests (nextest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== web typecheck"
(cd web && npm run --silent typecheck)
echo "== cargo nextest"
cargo nextest run --workspace --locked --no-fail-fast
echo "== browser tests (real headless Chromium against the real reach binary)"
cargo build -p reach-cli --locked
(cd web && npm test)
