#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test Reach.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  pkg-config nasm              # openh264's assembly (2.5x faster encoding)
  g++                          # openh264 is C++ built from source by the openh264 crate
  xvfb x11-utils x11-apps xdotool xclip  # real X server and X-side observers for media/input/clipboard tests
  chromium chromium-driver     # real headless browser for the web console tests
  firefox-esr                  # the second browser the console and viewer are checked in
  udev                         # systemd-udevd: the QEMU guest's hotplug check (host USB API events)
  postgresql                   # the server suites also run on PostgreSQL (scripts/pg-cluster.sh)
  nats-server                  # the bus several server instances share (cluster tests)
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

if [ ! -x "$HOME/.cargo/bin/geckodriver" ] && ! command -v geckodriver >/dev/null 2>&1; then
  echo "setup: building geckodriver (WebDriver for Firefox) from crates.io"
  cargo install --locked geckodriver
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest from crates.io"
  cargo install --locked cargo-nextest
fi

# The web console is bundled with esbuild from npm packages pinned in web/package-lock.json.
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "setup: installing web build tools (npm ci)"
  (cd web && npm ci --no-audit --no-fund)
fi
