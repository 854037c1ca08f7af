#!/bin/sh
# Runs inside the guest's chroot of the host root after attach.sh (see run.sh): a whole Reach on
# the guest's loopback — `reach server`, `reach agent --usb-backend system` sharing the gadgets,
# a technician's `reach login` and a managed session with USB (REST) — then
#   issue 11: `reach usb remote open --session` reads the loopback gadget's descriptor and a
#             1 MiB echo comes back byte-exact;
#   issue 12: `reach usb attach --session` puts the composite gadget into this kernel through
#             vhci-hcd: 1 MiB each way through its ttyACM, `stty 115200` on it reaches the
#             gadget as SET_LINE_CODING (usbmon), 8 MiB through its block device,
#             detach; a usb_f_printer gadget (in place of the composite for a moment): usblp
#             binds behind vhci and a job written to /dev/usb/lp* arrives byte-exact at
#             /dev/g_printer0; a FIDO HID gadget: refused while no rule names it even with the
#             ACL's default at allow, then (a rule added while the agent runs) hidraw behind vhci,
#             CTAPHID_INIT round trip with a responder on the gadget's hidg; a 5 s drop of the
#             technician's connection (cutproxy.py) in the middle of a 4 MiB write to the ttyACM:
#             attach resumes, the port stays, the data arrives byte-exact; the benchmark (BENCH lines: a 32 MiB
#             mass-storage gadget locally, through the kernel's usbip, through attach); then, mid-transfer, the gadget is unplugged on the host and (after
#             re-plug) the host's agent is killed: each time attach detaches its vhci port and exits
#             1, the writer on the ttyACM is not left hanging, no task is in D state.
# Prints PASS/FAIL lines; exits non-zero on any failure.
R=/tmp/share/reach; HOST_CFG=/tmp/share/cfg; TECH=/tmp/tech; URL=http://127.0.0.1:8080
PIDS=""
stop_all() { for p in $PIDS; do kill "$p" 2>/dev/null; done; }
fail() { echo "FAIL $1"; stop_all; exit 1; }
# User processes (kernel threads have no command line) in uninterruptible sleep.
d_state() { n=0; for f in /proc/[0-9]*; do grep -qs '^State:[[:space:]]*D' $f/status \
  && [ -n "$(tr -d '\0' < $f/cmdline 2>/dev/null)" ] && n=$((n+1)); done; echo $n; }
now_ms() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}0"; }
waitfor() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do i=$((i+1)); [ $i -gt $3 ] && return 1; sleep 0.2; done; }
t0=$(date +%s)
for ids in "0525 a4a8" "0525 a4a5"; do set -- $ids
  REACH_CONFIG_DIR=$HOST_CFG $R usb acl add --vendor-id $1 --product-id $2 > /dev/null || fail "session_setup: acl"; done
REACH_ADMIN_PASSWORD=qemu-admin-password $R server --listen 127.0.0.1:8080 --data-dir /tmp/srv \
  > /tmp/server.log 2>&1 & PIDS="$PIDS $!"
i=0; until REACH_PASSWORD=qemu-admin-password $R login --server $URL --user admin --config-dir $TECH \
  > /tmp/login.log 2>&1; do i=$((i+1)); [ $i -gt 150 ] && fail "session_setup: login: $(cat /tmp/login.log) $(tail -3 /tmp/server.log)"; sleep 0.2; done
t1=$(date +%s)
set -- $(python3 /tmp/share/rest.py $TECH machine qemu-guest) || fail "session_setup: machine"
MID=$1
REACH_CONFIG_DIR=$HOST_CFG REACH_AGENT_KEY=$2 REACH_USB_PASSTHROUGH=1 \
  $R agent --server $URL --usb-backend system > /tmp/agent.log 2>&1 & AGENT=$!; PIDS="$PIDS $AGENT"
SID=$(python3 /tmp/share/rest.py $TECH session "$MID") || fail "session_setup: $(tail -3 /tmp/agent.log)"
echo "PASS session_setup server, agent (usbfs) and session $SID with USB up in $(( $(date +%s) - t0 )) s (server + login $((t1 - t0)) s)"
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
# Line settings: `stty 115200` on the ttyACM makes cdc_acm send SET_LINE_CODING into vhci; it
# must reach the gadget through Reach (attach -> server -> agent -> usbfs). f_acm keeps the line
# coding to itself (ttyGS0's termios does not follow it), so usbmon shows it: the request on the
# vhci bus, the same request submitted on the gadget's dummy_hcd bus and completed with status 0.
linecoding() {
  [ -d /sys/kernel/debug/usb/usbmon ] || { echo "FAIL session_line_coding: no usbmon in debugfs"; return 1; }
  vbus=$(cat /sys/class/tty/${ACM#/dev/}/device/../busnum); gbus=$(cat /sys/bus/usb/devices/1-1/busnum)
  cat /sys/kernel/debug/usb/usbmon/${vbus}u > /tmp/mon_v.txt & M1=$!
  cat /sys/kernel/debug/usb/usbmon/${gbus}u > /tmp/mon_g.txt & M2=$!
  sleep 0.3
  stty -F "$ACM" 115200 2>/tmp/stty.err; speed=$(stty -F "$ACM" speed 2>/dev/null)
  want="s 21 20 0000 0000 0007 7 = 00c20100 000008"   # SET_LINE_CODING: 115200 baud, 1 stop bit, no parity, 8 bits
  i=0; until grep -q "S Co:$gbus:.*$want" /tmp/mon_g.txt && tag=$(grep "S Co:$gbus:.*$want" /tmp/mon_g.txt | tail -1 | cut -d' ' -f1) \
    && grep -q "^$tag .* C Co:$gbus:[0-9]*:0 0 7" /tmp/mon_g.txt || [ $i -gt 50 ]; do sleep 0.2; i=$((i+1)); done
  kill $M1 $M2 2>/dev/null; wait $M1 $M2 2>/dev/null
  gs=$(stty -F /dev/ttyGS0 speed 2>/dev/null)
  if grep -q "S Co:$vbus:.*$want" /tmp/mon_v.txt && [ -n "$tag" ] && grep -q "^$tag .* C Co:$gbus:[0-9]*:0 0 7" /tmp/mon_g.txt; then
    echo "PASS session_line_coding stty 115200 on $ACM (now $speed): SET_LINE_CODING 00c20100 000008 seen on vhci bus $vbus and on the gadget's bus $gbus, completed with status 0 (ttyGS0's own termios stays $gs: f_acm does not mirror it)"
  else echo "FAIL session_line_coding: vhci bus $vbus: $(grep -c ' s 21 20 ' /tmp/mon_v.txt) SET_LINE_CODING, gadget bus $gbus: $(grep ' 21 20 \|Co:' /tmp/mon_g.txt | tail -2) $(cat /tmp/stty.err)"; return 1; fi
}
linecoding || rc=1
if [ -n "$SD" ]; then python3 /tmp/share/attach_check.py block "$SD" /tmp/share/msc.sha256 session || rc=1
else echo "FAIL session_block: no block device behind vhci"; rc=1; fi
$R usb detach "$PORT" > /dev/null || rc=1
i=0; while kill -0 $AP 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if kill -0 $AP 2>/dev/null; then echo "FAIL session_detach: attach still running"; kill $AP; rc=1
else wait $AP; arc=$?
  [ $arc -eq 0 ] && echo "PASS session_detach attach exited 0: $(tail -1 /tmp/sattach.log)" \
    || { echo "FAIL session_detach: attach rc=$arc $(tail -1 /tmp/sattach.log)"; rc=1; }
fi
# The technician's connection drops for 5 s mid-transfer: attach runs through cutproxy.py (a
# forwarder that resets its sockets and refuses new ones for 5 s on SIGUSR1) with its own login;
# the kernel must not notice (same vhci port, no USB disconnect) and the data arrives byte-exact.
drop5s() {
  python3 /tmp/share/cutproxy.py 8081 8080 5 > /tmp/cutproxy.log 2>&1 & CP=$!; PIDS="$PIDS $CP"
  T2=/tmp/tech-via-proxy
  i=0; until REACH_PASSWORD=qemu-admin-password $R login --server http://127.0.0.1:8081 --user admin \
    --config-dir $T2 > /tmp/login2.log 2>&1; do i=$((i+1))
    [ $i -gt 50 ] && { echo "FAIL session_drop_5s: login through the proxy: $(cat /tmp/login2.log)"; return 1; }; sleep 0.2; done
  REACH_CONFIG_DIR=$T2 $R usb attach --session "$SID" --device 1d6b:0104 > /tmp/dattach.log 2>&1 & DP=$!; PIDS="$PIDS $DP"
  waitfor /tmp/dattach.log "nodes:" 300 || { echo "FAIL session_drop_5s: attach: $(cat /tmp/dattach.log)"; return 1; }
  DACM=$(grep "nodes:" /tmp/dattach.log | grep -o '/dev/ttyACM[0-9]*' | head -1)
  DPORT=$(grep -o 'attached as vhci port [0-9]*' /tmp/dattach.log | grep -o '[0-9]*$')
  disc0=$(dmesg | grep -c "USB disconnect")
  python3 /tmp/share/attach_check.py drop "$DACM" /dev/ttyGS0 $CP; drc=$?
  disc1=$(dmesg | grep -c "USB disconnect")
  alive=$(kill -0 $DP 2>/dev/null && echo yes)
  still=$($R usb attached | grep -c "^port $DPORT ")
  $R usb detach "$DPORT" > /dev/null; wait $DP; DP=""
  kill $CP 2>/dev/null
  if [ $drc -eq 0 ] && [ "$alive" = yes ] && [ "$disc0" = "$disc1" ] && grep -q "^resumed" /tmp/dattach.log; then
    echo "PASS session_drop_5s_kernel attach stayed on vhci port $DPORT, no USB disconnect in this kernel: $(grep -m1 'connection lost' /tmp/dattach.log) → resumed"
  else echo "FAIL session_drop_5s_kernel: check rc=$drc attach alive=$alive port listed=$still disconnects $disc0 -> $disc1: $(tail -3 /tmp/dattach.log) $(cat /tmp/cutproxy.log)"
    grep -iE "usb|viewer|resum" /tmp/agent.log | tail -12 | sed 's/^/  agent: /'; grep -iE "viewer|usb" /tmp/server.log | tail -8 | sed 's/^/  server: /'; return 1; fi
}
DP=""; drop5s || rc=1
[ -n "$DP" ] && kill $DP 2>/dev/null
# Printer: a usb_f_printer gadget takes dummy_udc.0 from the composite for this check.
printer() {
  G=/sys/kernel/config/usb_gadget/g3
  [ -d /sys/module/usb_f_printer ] && [ -d /sys/module/usblp ] \
    || { echo "FAIL session_printer: usb_f_printer/usblp not loaded (run.sh loads them from the kit's /tmp/guestk)"; return 1; }
  echo "" > /sys/kernel/config/usb_gadget/g1/UDC
  mkdir -p $G/strings/0x409 $G/configs/c.1/strings/0x409 $G/functions/printer.usb0
  echo 0x0525 > $G/idVendor; echo 0xa4a8 > $G/idProduct; echo 0x0200 > $G/bcdUSB
  echo PRN0001 > $G/strings/0x409/serialnumber; echo Printer > $G/strings/0x409/product
  echo "Test Vendor" > $G/strings/0x409/manufacturer; echo prn > $G/configs/c.1/strings/0x409/configuration
  echo "MFG:Reach;MDL:Test Printer;CLS:PRINTER;CMD:PS;" > $G/functions/printer.usb0/pnp_string
  [ -e $G/configs/c.1/printer.usb0 ] || ln -s $G/functions/printer.usb0 $G/configs/c.1/
  echo dummy_udc.0 > $G/UDC
  i=0; until grep -qs a4a8 /sys/bus/usb/devices/1-1/idProduct; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "FAIL session_printer: the printer gadget did not enumerate"; return 1; }; sleep 0.2; done
  $R usb attach --session "$SID" --device 0525:a4a8 > /tmp/pattach.log 2>&1 & PP=$!; PIDS="$PIDS $PP"
  waitfor /tmp/pattach.log "nodes:" 300 || { echo "FAIL session_printer: attach: $(cat /tmp/pattach.log)"; return 1; }
  LP=$(grep "nodes:" /tmp/pattach.log | grep -o '/dev/usb/lp[0-9]*' | head -1)
  [ -n "$LP" ] || { echo "FAIL session_printer: no /dev/usb/lp* behind vhci: $(cat /tmp/pattach.log)"; return 1; }
  head -c 262144 /dev/urandom > /tmp/job.in
  timeout 60 head -c 262144 /dev/g_printer0 > /tmp/job.out & RP=$!
  tp=$(now_ms); timeout 60 cp /tmp/job.in "$LP"; wait $RP
  ms=$(( $(now_ms) - tp ))
  PORT=$(grep -o 'attached as vhci port [0-9]*' /tmp/pattach.log | grep -o '[0-9]*$')
  $R usb detach "$PORT" > /dev/null; wait $PP; prc=$?; PP=""
  if cmp -s /tmp/job.in /tmp/job.out && [ $prc -eq 0 ]; then
    echo "PASS session_printer usblp bound to $LP behind vhci; a 256 KiB job arrived byte-exact at /dev/g_printer0 in $ms ms; detached"
  else echo "FAIL session_printer: job $(stat -c %s /tmp/job.out 2>/dev/null) of 262144 bytes, equal=$(cmp -s /tmp/job.in /tmp/job.out && echo yes), attach rc=$prc"; return 1; fi
}
PP=""; printer || rc=1
[ -n "$PP" ] && kill $PP 2>/dev/null
echo "" > /sys/kernel/config/usb_gadget/g3/UDC 2>/dev/null

# Security key: a HID gadget with the FIDO report descriptor (usage page 0xF1D0, 64-byte
# reports) and a responder on its /dev/hidg* that answers CTAPHID_INIT. Without a rule naming
# it, it is refused even with the ACL's default at allow (FIDO keys need an explicit rule); a
# rule added while the agent runs lets it through.
fido() {
  G=/sys/kernel/config/usb_gadget/g4; F=$G/functions/hid.fido
  echo "" > /sys/kernel/config/usb_gadget/g1/UDC 2>/dev/null
  mkdir -p $G/strings/0x409 $G/configs/c.1/strings/0x409 $F
  echo 0x1d6b > $G/idVendor; echo 0x0200 > $G/idProduct; echo 0x0200 > $G/bcdUSB
  echo FIDO0001 > $G/strings/0x409/serialnumber; echo "FIDO test key" > $G/strings/0x409/product
  echo "Test Vendor" > $G/strings/0x409/manufacturer; echo key > $G/configs/c.1/strings/0x409/configuration
  echo 0 > $F/protocol; echo 0 > $F/subclass; echo 64 > $F/report_length
  /usr/bin/printf '\x06\xd0\xf1\x09\x01\xa1\x01\x09\x20\x15\x00\x26\xff\x00\x75\x08\x95\x40\x81\x02\x09\x21\x15\x00\x26\xff\x00\x75\x08\x95\x40\x91\x02\xc0' > $F/report_desc
  [ -e $G/configs/c.1/hid.fido ] || ln -s $F $G/configs/c.1/
  echo dummy_udc.0 > $G/UDC
  i=0; until grep -qs 0200 /sys/bus/usb/devices/1-1/idProduct; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "FAIL session_fido: the FIDO gadget did not enumerate"; return 1; }; sleep 0.2; done
  HIDG=/dev/$(grep DEVNAME /sys/dev/char/$(cat $F/dev)/uevent | cut -d= -f2)
  REACH_CONFIG_DIR=$HOST_CFG $R usb acl default allow > /dev/null
  timeout 60 $R usb attach --session "$SID" --device 1d6b:0200 > /tmp/kdenied.log 2>&1; drc=$?
  REACH_CONFIG_DIR=$HOST_CFG $R usb acl default deny > /dev/null
  used=$($R usb attached | grep -c '^port')
  if [ $drc -ne 0 ] && [ $drc -ne 124 ] && grep -q "host denied the device" /tmp/kdenied.log && [ "$used" = 0 ]; then
    echo "PASS session_fido_denied_by_default attach refused with the ACL default at allow and no rule: $(tail -1 /tmp/kdenied.log)"
  else echo "FAIL session_fido_denied_by_default: rc=$drc ports in use=$used: $(cat /tmp/kdenied.log)"; return 1; fi
  REACH_CONFIG_DIR=$HOST_CFG $R usb acl add --vendor-id 1d6b --product-id 0200 > /dev/null || { echo "FAIL session_fido: acl add"; return 1; }
  $R usb attach --session "$SID" --device 1d6b:0200 > /tmp/kattach.log 2>&1 & KP=$!; PIDS="$PIDS $KP"
  waitfor /tmp/kattach.log "nodes:" 300 || { echo "FAIL session_fido: attach: $(cat /tmp/kattach.log)"; return 1; }
  HR=$(grep "nodes:" /tmp/kattach.log | grep -o '/dev/hidraw[0-9]*' | head -1)
  [ -n "$HR" ] || { echo "FAIL session_fido: no hidraw behind vhci: $(cat /tmp/kattach.log)"; return 1; }
  python3 /tmp/share/attach_check.py fido_responder "$HIDG" & RSP=$!
  python3 /tmp/share/attach_check.py fido_init "$HR"; frc=$?
  wait $RSP || frc=1
  PORT=$(grep -o 'attached as vhci port [0-9]*' /tmp/kattach.log | grep -o '[0-9]*$')
  $R usb detach "$PORT" > /dev/null; wait $KP || frc=1; KP=""
  return $frc
}
KP=""; fido || rc=1
[ -n "$KP" ] && kill $KP 2>/dev/null
echo "" > /sys/kernel/config/usb_gadget/g4/UDC 2>/dev/null

# Issue 12's benchmark: a 32 MiB mass-storage gadget (in place of the composite for a moment),
# (a) on this kernel's own USB, (b) through the kernel's usbip-host <-> vhci-hcd over loopback TCP,
# (c) through `reach usb attach --session`. BENCH lines; only a failed measurement fails.
bench() {
  G=/sys/kernel/config/usb_gadget/g5; F=$G/functions/mass_storage.bench
  echo "" > /sys/kernel/config/usb_gadget/g1/UDC 2>/dev/null
  mkdir -p $G/strings/0x409 $G/configs/c.1/strings/0x409 $F
  echo 0x0525 > $G/idVendor; echo 0xa4a5 > $G/idProduct; echo 0x0200 > $G/bcdUSB
  echo BENCH0001 > $G/strings/0x409/serialnumber; echo "Bench disk" > $G/strings/0x409/product
  echo "Test Vendor" > $G/strings/0x409/manufacturer; echo msc > $G/configs/c.1/strings/0x409/configuration
  dd if=/dev/zero of=/tmp/bench.img bs=1M count=32 status=none
  echo /tmp/bench.img > $F/lun.0/file
  [ -e $G/configs/c.1/mass_storage.bench ] || ln -s $F $G/configs/c.1/
  echo dummy_udc.0 > $G/UDC
  export RAND_SECS=3
  python3 /tmp/share/bench.py local || return 1
  python3 /tmp/share/bench.py usbip 1-1 || return 1
  # A fresh enumeration, so the device is back with its ordinary drivers for the agent.
  echo "" > $G/UDC
  i=0; while [ -e /sys/bus/usb/devices/1-1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  echo dummy_udc.0 > $G/UDC
  python3 /tmp/share/bench.py waitlocal || return 1
  $R usb attach --session "$SID" --device 0525:a4a5 > /tmp/battach.log 2>&1 & BP=$!; PIDS="$PIDS $BP"
  waitfor /tmp/battach.log "nodes:" 300 || { echo "FAIL bench_reach_attach: attach: $(cat /tmp/battach.log)"; return 1; }
  python3 /tmp/share/bench.py vhci; brc=$?
  PORT=$(grep -o 'attached as vhci port [0-9]*' /tmp/battach.log | grep -o '[0-9]*$')
  $R usb detach "$PORT" > /dev/null; wait $BP || brc=1; BP=""
  return $brc
}
tb=$(date +%s); BP=""; bench || rc=1
[ -n "$BP" ] && kill $BP 2>/dev/null
echo "" > /sys/kernel/config/usb_gadget/g5/UDC 2>/dev/null; rm -f /tmp/bench.img /tmp/bench.src
echo "BENCH took $(( $(date +%s) - tb )) s of guest time"

echo dummy_udc.0 > /sys/kernel/config/usb_gadget/g1/UDC
# The composite is back on dummy_udc.0 once it has enumerated again.
i=0; until grep -qs 0104 /sys/bus/usb/devices/1-1/idProduct || [ $i -gt 100 ]; do sleep 0.2; i=$((i+1)); done

# Faults while a write to the ttyACM is in flight (nobody reads ttyGS0, so bulk OUT URBs stay
# pending on the gadget): ACTION happens, then attach must detach its port and exit 1 with
# EXPECT in its log, the writer must end, and no process may be left in D state.
fault() { name=$1 action=$2 expect=$3 log=/tmp/$1.log
  $R usb attach --session "$SID" --device 1d6b:0104 > $log 2>&1 & AP=$!; PIDS="$PIDS $AP"
  waitfor $log "nodes:" 300 || { echo "FAIL $name: attach: $(cat $log)"; kill $AP; return 1; }
  ACM=$(grep "nodes:" $log | grep -o '/dev/ttyACM[0-9]*' | head -1)
  head -c 4194304 /dev/urandom > "$ACM" 2>/dev/null & WP=$!
  sleep 1
  eval "$action"; tk=$(now_ms)
  i=0; while kill -0 $AP 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
  if kill -0 $AP 2>/dev/null; then
    echo "FAIL $name: attach still running $(tail -2 $log)"; kill $AP $WP 2>/dev/null; return 1; fi
  wait $AP; arc=$?; gone_ms=$(( $(now_ms) - tk ))
  i=0; while kill -0 $WP 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
  used=$($R usb attached | grep -c '^port'); dstate=$(d_state)
  if [ $arc -ne 0 ] && [ "$used" = 0 ] && ! kill -0 $WP 2>/dev/null && [ "$dstate" = 0 ] \
    && grep -q "$expect" $log; then
    echo "PASS $name attach exited $arc within ${gone_ms} ms, vhci port freed, writer ended, no task in D state: $(tail -1 $log)"
  else echo "FAIL $name: rc=$arc ports in use=$used writer alive=$(kill -0 $WP 2>/dev/null && echo yes) D-state=$dstate: $(tail -2 $log)"
    kill $WP 2>/dev/null; return 1; fi
}
UDC1=/sys/kernel/config/usb_gadget/g1/UDC
fault session_host_unplug 'echo "" > $UDC1' "the Reach claim ended: no device" || rc=1
echo dummy_udc.0 > $UDC1
i=0; until grep -qs 0104 /sys/bus/usb/devices/1-1/idProduct || [ $i -gt 100 ]; do sleep 0.2; i=$((i+1)); done
fault session_agent_killed 'kill -9 $AGENT' "connection to the host ended: the host.s agent went offline" || rc=1
stop_all
exit $rc
