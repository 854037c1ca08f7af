#!/bin/sh
# Runs inside the guest's chroot of the host root after attach.sh (see run.sh): a whole Reach on
# the guest's loopback — `reach server`, `reach agent --usb-backend system` sharing the gadgets,
# a technician's `reach login` and a managed session with USB (REST) — then
#   issue 11: `reach usb remote open --session` reads the loopback gadget's descriptor and a
#             1 MiB echo comes back byte-exact;
#   issue 12: `reach usb attach --session` puts the composite gadget into this kernel through
#             vhci-hcd: 1 MiB each way through its ttyACM, 8 MiB through its block device,
#             detach; then the agent is killed while attached: the vhci port is freed, attach exits.
# Prints PASS/FAIL lines; exits non-zero on any failure.
R=/tmp/share/reach; HOST_CFG=/tmp/share/cfg; TECH=/tmp/tech; URL=http://127.0.0.1:8080
PIDS=""
stop_all() { for p in $PIDS; do kill "$p" 2>/dev/null; done; }
fail() { echo "FAIL $1"; stop_all; exit 1; }
waitfor() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do i=$((i+1)); [ $i -gt $3 ] && return 1; sleep 0.2; done; }
t0=$(date +%s)
REACH_ADMIN_PASSWORD=qemu-admin-password $R server --listen 127.0.0.1:8080 --data-dir /tmp/srv \
  > /tmp/server.log 2>&1 & PIDS="$PIDS $!"
i=0; until REACH_PASSWORD=qemu-admin-password $R login --server $URL --user admin --config-dir $TECH \
  > /tmp/login.log 2>&1; do i=$((i+1)); [ $i -gt 150 ] && fail "session_setup: login: $(cat /tmp/login.log) $(tail -3 /tmp/server.log)"; sleep 0.2; done
set -- $(python3 /tmp/share/rest.py $TECH machine qemu-guest) || fail "session_setup: machine"
MID=$1
REACH_CONFIG_DIR=$HOST_CFG REACH_AGENT_KEY=$2 REACH_USB_PASSTHROUGH=1 \
  $R agent --server $URL --usb-backend system > /tmp/agent.log 2>&1 & AGENT=$!; PIDS="$PIDS $AGENT"
SID=$(python3 /tmp/share/rest.py $TECH session "$MID") || fail "session_setup: $(tail -3 /tmp/agent.log)"
echo "PASS session_setup server, agent (usbfs) and session $SID with USB up in $(( $(date +%s) - t0 )) s"
export REACH_CONFIG_DIR=$TECH
rc=0

# issue 11: a remote device through the session, descriptor and 1 MiB echo.
if $R usb remote open --session "$SID" --vendor-id 0525 --product-id a4a0 --echo 1048576 > /tmp/open.log 2>&1; then
  echo "PASS session_remote_open $(grep -o 'device descriptor: [0-9a-f]*' /tmp/open.log | cut -c1-44)…; $(grep echo: /tmp/open.log)"
else echo "FAIL session_remote_open: $(cat /tmp/open.log)"; rc=1; fi

# issue 12: attach through the session.
$R usb attach --session "$SID" --device 1d6b:0104 > /tmp/sattach.log 2>&1 & AP=$!; PIDS="$PIDS $AP"
waitfor /tmp/sattach.log "nodes:" 300 || fail "session_attach: $(cat /tmp/sattach.log)"
cat /tmp/sattach.log
ACM=$(grep "nodes:" /tmp/sattach.log | grep -o '/dev/ttyACM[0-9]*' | head -1)
i=0; SD=""; while [ -z "$SD" ] && [ $i -lt 150 ]; do
  SD=$($R usb attached | grep -o '/dev/sd[a-z]*' | head -1); [ -z "$SD" ] && sleep 0.2; i=$((i+1)); done
PORT=$(grep -o 'attached as vhci port [0-9]*' /tmp/sattach.log | grep -o '[0-9]*$')
[ -n "$ACM" ] && readlink -f /sys/class/tty/${ACM#/dev/}/device | grep -q vhci_hcd \
  || fail "session_attach: no ttyACM behind vhci ($ACM)"
echo "PASS session_attach 1d6b:0104 through session $SID on vhci port $PORT: $ACM $SD"
python3 /tmp/share/attach_check.py serial "$ACM" /dev/ttyGS0 session || rc=1
if [ -n "$SD" ]; then python3 /tmp/share/attach_check.py block "$SD" /tmp/share/msc.sha256 session || rc=1
else echo "FAIL session_block: no block device behind vhci"; rc=1; fi
$R usb detach "$PORT" > /dev/null || rc=1
i=0; while kill -0 $AP 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if kill -0 $AP 2>/dev/null; then echo "FAIL session_detach: attach still running"; kill $AP; rc=1
else wait $AP; arc=$?
  [ $arc -eq 0 ] && echo "PASS session_detach attach exited 0: $(tail -1 /tmp/sattach.log)" \
    || { echo "FAIL session_detach: attach rc=$arc $(tail -1 /tmp/sattach.log)"; rc=1; }
fi
stop_all
exit $rc
