#!/usr/bin/env bash
# Real-kernel USB checks for the usbfs backend, inside the QEMU guest of shared/qemu-usb:
# loopback gadget (descriptor, 1 MiB bulk echo, many in flight), composite gadget (cdc_acm/usbhid
# detached on open, re-bound on close), hot-unplug (UDC unbound mid-transfer); then `reach usb
# attach` of the composite gadget through vhci-hcd in the same boot and the host API's hotplug
# events (tests/qemu/attach.sh); then server, agent and technician in the guest: `reach usb remote
# open --session`, `reach usb attach --session` and the mass-storage benchmark, BENCH lines
# (tests/qemu/session.sh). ~4-5 minutes.
# Needs shared/qemu-usb/setup.sh run once; scripts/test.sh runs it when the QEMU kit is present.
set -euo pipefail
cd "$(dirname "$0")/.."
QEMU_KIT="${QEMU_KIT:-../shared/qemu-usb}"
[ -d "$QEMU_KIT" ] || QEMU_KIT=/work/shared/qemu-usb
[ -f /tmp/qemu-usb/vmlinux ] || bash "$QEMU_KIT/setup.sh"
cargo build -q -p reach-usb --example qemu_guest
cargo build -q -p reach-cli
WORK=$(mktemp -d)
cp target/debug/examples/qemu_guest "$WORK/"
# REACH_BIN: another build of `reach` for the guest (e.g. target/release/reach for benchmark figures).
cp "${REACH_BIN:-target/debug/reach}" "$WORK/reach"
cp tests/qemu/attach.sh tests/qemu/attach_check.py tests/qemu/session.sh tests/qemu/rest.py \
  tests/qemu/hotplug.py tests/qemu/bench.py tests/qemu/cutproxy.py "$WORK/"
cp tests/qemu/run.sh "$WORK/run.sh"; chmod +x "$WORK/run.sh"
# PERF=1: sample the benchmark's Reach runs with perf in the guest (PERF lines in the output).
[ -n "${PERF:-}" ] && touch "$WORK/PERF"
# The printer check's modules, from the kernel setup.sh extracted (not in the kit's initramfs).
for ko in gadget/function/usb_f_printer.ko class/usblp.ko; do
  cp /tmp/guestk/lib/modules/*/kernel/drivers/usb/$ko "$WORK/" 2>/dev/null || echo "qemu-usb-test: no $ko in /tmp/guestk"
done
LOG="$WORK/guest.log"
SHARE_ROOT=1 WORK="$WORK" timeout "${TMO:-600}" "$QEMU_KIT/boot.sh" > "$LOG" 2>&1 || true
grep -aE "^(PASS|FAIL|BENCH|PERF) |GUEST_CHECKS_RC|ATTACH_CHECKS_RC|SESSION_CHECKS_RC|REACH_LOOPBACK_RC|claim [0-9]+ opened|^[0-9]+-[0-9.]+ +[0-9a-f]{4}:|^(claimed|attached as|local device|ended:|port [0-9])" "$LOG" || true
if grep -aq "GUEST_CHECKS_RC=0" "$LOG" && grep -aq "ATTACH_CHECKS_RC=0" "$LOG" && grep -aq "SESSION_CHECKS_RC=0" "$LOG" && ! grep -aq "^FAIL " "$LOG"; then
  echo "qemu-usb-test: ok"; rm -rf "$WORK"
elif ! grep -aq "GUEST_CHECKS_RC=" "$LOG"; then
  # The guest never reported: the emulated boot failed or timed out (exit 2, worth one retry).
  echo "qemu-usb-test: the guest did not report (full log: $LOG)"; tail -5 "$LOG"; exit 2
else
  echo "qemu-usb-test: FAILED (full log: $LOG)"; exit 1
fi
