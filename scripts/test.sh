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
echo "== server suites again on PostgreSQL (a throwaway cluster on a loopback port)"
PG_URL=$(bash scripts/pg-cluster.sh start)
trap 'bash scripts/pg-cluster.sh stop' EXIT
REACH_TEST_POSTGRES="$PG_URL" cargo nextest run --workspace --locked --no-fail-fast -E 'package(reach-server)'
bash scripts/pg-cluster.sh stop
trap - EXIT
echo "== browser tests (real headless Chromium against the real reach binary)"
cargo build -p reach-cli --locked
(cd web && npm test)
echo "== USB on a real Linux kernel (QEMU guest with dummy_hcd gadgets)"
if [ -d ../shared/qemu-usb ]; then
  # A software-emulated guest boots in 10-25 s. Exit 2 means the guest never reported (boot
  # trouble): retry that once. A failed check (exit 1) fails the run.
  status=0
  bash scripts/qemu-usb-test.sh || status=$?
  if [ "$status" -eq 2 ]; then bash scripts/qemu-usb-test.sh; elif [ "$status" -ne 0 ]; then exit "$status"; fi
else
  echo "skipped: ../shared/qemu-usb (the QEMU USB kit) is not next to this checkout"
fi
