#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test Reach.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail

APT_PACKAGES=(
  pkg-config nasm              # openh264's assembly (2.5x faster encoding)
  xvfb x11-utils x11-apps xdotool  # real X server and X-side observers for media/input tests
  chromium chromium-driver     # real headless browser for the web console tests
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest from crates.io"
  cargo install --locked cargo-nextest
fi
