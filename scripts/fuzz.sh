#!/usr/bin/env bash
# Runs every fuzz target for a bounded time each (default 60 s). Needs a nightly toolchain
# and cargo-fuzz (`rustup toolchain install nightly && cargo install cargo-fuzz`). Not part of CI.
# Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER_TARGET="${1:-60}"
for target in envelope_agent envelope_viewer credentials token audit_chain usb_frames usb_control_json usb_host_session usbip_decode; do
  echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
  cargo +nightly fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048
done
echo "fuzz: all targets ran without a crash"
