#!/bin/sh
# Runs inside the guest (copied to the work share as run.sh by scripts/qemu-usb-test.sh).
# Host binaries run via chroot into the read-only host root; /sys is bound recursively so the
# gadget's configfs UDC file is reachable for the hot-unplug check.
# debugfs (usbmon, for the serial line-settings check) before /sys is bound into the chroot;
# a tmpfs /run for systemd-udevd (the host API's hotplug check).
mount -t debugfs none /sys/kernel/debug 2>/dev/null
for m in proc dev; do mount --bind /$m /host/$m; done
mount --rbind /sys /host/sys
mount -t tmpfs tmpfs /host/run
mount -t tmpfs tmpfs /host/tmp; mkdir -p /host/tmp/share; mount --bind /share /host/tmp/share
echo "--- reach-usb guest checks"
chroot /host /tmp/share/qemu_guest; echo "GUEST_CHECKS_RC=$?"
if [ -x /share/reach ]; then
  echo "--- reach usb list / loopback open"
  chroot /host env REACH_CONFIG_DIR=/tmp/share/cfg /tmp/share/reach usb list
  chroot /host env REACH_CONFIG_DIR=/tmp/share/cfg /tmp/share/reach usb acl add --vendor-id 0525 --product-id a4a0 >/dev/null
  chroot /host env REACH_CONFIG_DIR=/tmp/share/cfg /tmp/share/reach usb enable >/dev/null
  chroot /host env REACH_CONFIG_DIR=/tmp/share/cfg /tmp/share/reach usb loopback open --vendor-id 0525; echo "REACH_LOOPBACK_RC=$?"
fi
if [ -x /share/reach ] && [ -f /share/attach.sh ]; then
  # For the printer check (session.sh): the gadget function and the consumer driver.
  for m in usb_f_printer usblp; do [ -f /share/$m.ko ] && insmod /share/$m.ko; done
  echo "--- reach usb attach (vhci-hcd, same kernel, over loopback TCP)"
  ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
  chroot /host sh /tmp/share/attach.sh; echo "ATTACH_CHECKS_RC=$?"
  echo "--- reach server + agent + reach usb remote/attach --session (guest loopback)"
  chroot /host sh /tmp/share/session.sh; echo "SESSION_CHECKS_RC=$?"
  # The bytes written through the vhci block device must be in the gadget's backing file.
  if [ -f /share/msc.sha256 ]; then
    got=$(sha256sum /tmp/msc.img | cut -d' ' -f1)
    if [ "$got" = "$(cat /share/msc.sha256)" ]; then echo "PASS usbip_block_gadget_file sha256 of the gadget's backing file matches"
    else echo "FAIL usbip_block_gadget_file: backing file sha256 $got"; fi
  fi
fi
