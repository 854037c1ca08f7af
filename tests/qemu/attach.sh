#!/bin/sh
# Runs inside the guest's chroot of the host root (see run.sh): `reach usb serve` on loopback
# shares the composite gadget 1d6b:0104 (usbfs backend); `reach usb attach --via tcp://…` puts
# it into the same kernel through vhci-hcd; then serial and block data checks, detach. First,
# the same serve's host API (issue 15): hotplug events over SSE and Last-Event-ID resume.
# Prints PASS/FAIL lines; exits non-zero on any failure.
R=/tmp/share/reach; export REACH_CONFIG_DIR=/tmp/share/cfg
fail() { echo "FAIL $1"; [ -n "$AP" ] && kill "$AP" 2>/dev/null; [ -n "$SP" ] && kill "$SP" 2>/dev/null; exit 1; }
waitfor() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do i=$((i+1)); [ $i -gt $3 ] && return 1; sleep 0.2; done; }
$R usb acl add --vendor-id 1d6b --product-id 0104 >/dev/null || fail "usbip_setup: acl add"
$R usb enable >/dev/null || fail "usbip_setup: enable"
$R usb serve --listen 127.0.0.1:7300 --api 127.0.0.1:9939 > /tmp/serve.log 2>&1 & SP=$!
waitfor /tmp/serve.log "serving the USB API" 150 || fail "usbip_serve: $(cat /tmp/serve.log)"
rc=0
# Issue 15: the host API's SSE stream carries the real backend's hotplug (nusb's watch, which
# listens to udev's netlink group: systemd-udevd from the host root runs for this check only, as
# udevd does on a real machine). The loopback gadget (dummy_udc.1) is not in use by these checks.
/lib/systemd/systemd-udevd --resolve-names=never > /tmp/udevd.log 2>&1 & UP=$!
# Its uevent socket is bound with its control socket; a uevent before that would be lost.
i=0; while [ ! -S /run/udev/control ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; sleep 1
UDC2=/sys/kernel/config/usb_gadget/g2/UDC
grep -q "USB API token (shown once): rua_" /tmp/serve.log && [ "$(grep -o 'rua_[0-9a-f]*' /tmp/serve.log)" = "$(cat $REACH_CONFIG_DIR/usb-api-token)" ] \
  || { echo "FAIL hostapi_token: the token printed on first start is not the one stored"; rc=1; }
echo "" > $UDC2
python3 /tmp/share/hotplug.py http://127.0.0.1:9939 $REACH_CONFIG_DIR/usb-api-token $UDC2 dummy_udc.1 0525 a4a0 || { rc=1; echo "udevd: $(tail -3 /tmp/udevd.log)"; }
kill $UP 2>/dev/null; wait $UP 2>/dev/null
grep -qs dummy_udc.1 $UDC2 || echo dummy_udc.1 > $UDC2
i=0; until grep -qs a4a0 /sys/bus/usb/devices/2-1/idProduct || [ $i -gt 100 ]; do sleep 0.2; i=$((i+1)); done
$R usb attach --via tcp://127.0.0.1:7300 --device 1d6b:0104 > /tmp/attach.log 2>&1 & AP=$!
waitfor /tmp/attach.log "nodes:" 300 || fail "usbip_attach: $(cat /tmp/attach.log)"
cat /tmp/attach.log
ACM=$(grep "nodes:" /tmp/attach.log | grep -o '/dev/ttyACM[0-9]*' | head -1)
# usb-storage scans after a settle delay: wait for the block device through `reach usb attached`.
i=0; SD=""; while [ -z "$SD" ] && [ $i -lt 150 ]; do
  SD=$($R usb attached | grep -o '/dev/sd[a-z]*' | head -1); [ -z "$SD" ] && sleep 0.2; i=$((i+1)); done
PORT=$(grep -o 'attached as vhci port [0-9]*' /tmp/attach.log | grep -o '[0-9]*$')
[ -n "$ACM" ] || fail "usbip_attach: no ttyACM behind vhci"
readlink -f /sys/class/tty/${ACM#/dev/}/device | grep -q vhci_hcd || fail "usbip_attach: $ACM is not behind vhci"
[ -z "$SD" ] || readlink -f /sys/class/block/${SD#/dev/} | grep -q vhci_hcd || fail "usbip_attach: $SD is not behind vhci"
echo "PASS usbip_attach 1d6b:0104 on vhci port $PORT: $ACM $SD"
$R usb attached
python3 /tmp/share/attach_check.py serial "$ACM" /dev/ttyGS0 || rc=1
if [ -n "$SD" ]; then
  python3 /tmp/share/attach_check.py block "$SD" /tmp/share/msc.sha256 || rc=1
else
  echo "FAIL usbip_block: no block device behind vhci"; rc=1
fi
$R usb detach "$PORT" || rc=1
i=0; while kill -0 $AP 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if kill -0 $AP 2>/dev/null; then echo "FAIL usbip_detach: attach still running"; kill $AP; rc=1
else wait $AP; arc=$?; tail -1 /tmp/attach.log
  [ $arc -eq 0 ] && echo "PASS usbip_detach attach exited 0" || { echo "FAIL usbip_detach: attach rc=$arc"; rc=1; }
fi
# Unplug on the host side while attached: the claim ends, attach detaches its vhci port itself.
UDC=/sys/kernel/config/usb_gadget/g1/UDC
$R usb attach --via tcp://127.0.0.1:7300 --device 1d6b:0104 > /tmp/attach2.log 2>&1 & AP=$!
if waitfor /tmp/attach2.log "nodes:" 300; then
  echo "" > $UDC
  i=0; while kill -0 $AP 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
  if kill -0 $AP 2>/dev/null; then echo "FAIL usbip_host_unplug: attach still running"; kill $AP; rc=1
  else wait $AP; arc=$?; used=$($R usb attached | grep -c '^port')
    if [ $arc -ne 0 ] && [ "$used" = 0 ] && grep -q "claim ended" /tmp/attach2.log; then
      echo "PASS usbip_host_unplug attach exited $arc, vhci port freed: $(tail -1 /tmp/attach2.log)"
    else echo "FAIL usbip_host_unplug: rc=$arc ports in use=$used: $(tail -2 /tmp/attach2.log)"; rc=1; fi
  fi
  echo dummy_udc.0 > $UDC
else
  echo "FAIL usbip_host_unplug: second attach: $(cat /tmp/attach2.log)"; kill $AP 2>/dev/null; rc=1
fi
# The host API still answers after the claims above.
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat $REACH_CONFIG_DIR/usb-api-token)" http://127.0.0.1:9939/usb/passthrough)
[ "$code" = 200 ] && echo "PASS hostapi_after_claims GET /usb/passthrough answers 200 after the claims above" \
  || { echo "FAIL hostapi_after_claims: GET /usb/passthrough -> $code"; rc=1; }
kill $SP 2>/dev/null
exit $rc
