#!/usr/bin/env python3
"""Data checks for `reach usb attach` inside the QEMU guest (run by attach.sh).

serial ACM GS [PREFIX]: 1 MiB ttyACM (vhci side) -> ttyGS0 (gadget side), then 1 MiB back, byte-exact.
block DEV SUMFILE [PREFIX]: 8 MiB written through the block device and read back (page cache dropped);
  the sha256 goes to SUMFILE so run.sh can compare it with the gadget's backing file.
fido_responder HIDG: plays a security key on the gadget side: answers one CTAPHID_INIT.
fido_init HIDRAW: sends CTAPHID_INIT through the hidraw node and checks the answer echoes the nonce.
drop ACM GS PROXY_PID: 4 MiB ttyACM -> ttyGS0; after the first 256 KiB arrived, SIGUSR1 to the
  cutproxy.py carrying attach's connection (a 5 s drop); the rest must arrive byte-exact after RESUME.
Check names start with PREFIX (default `usbip`; session.sh uses `session`).
Prints `PASS <name> …` or `FAIL <name>: why`; exit status 1 on any failure.
"""
import hashlib, os, select, signal, sys, threading, time, tty

MIB = 1024 * 1024
DEADLINE = 120


def open_raw(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def pipe(name, src, dst, data, on_progress=None):
    """Writes data to fd src (in a thread) and reads it from fd dst; returns (ok, message).
    on_progress(bytes_received) is called after every read."""
    def writer():
        view = memoryview(data)
        while view:
            n = os.write(src, view[:16384])
            view = view[n:]
    t = threading.Thread(target=writer, daemon=True)
    start = time.monotonic()
    t.start()
    got = bytearray()
    while len(got) < len(data):
        left = DEADLINE - (time.monotonic() - start)
        if left <= 0:
            return False, f"{name}: timed out with {len(got)} of {len(data)} bytes"
        ready, _, _ = select.select([dst], [], [], left)
        if ready:
            got += os.read(dst, 65536)
            if on_progress:
                on_progress(len(got))
    secs = time.monotonic() - start
    if bytes(got) != data:
        bad = next(i for i in range(len(data)) if got[i] != data[i])
        return False, f"{name}: data differs at byte {bad}"
    return True, f"{name} {len(data)} bytes byte-exact in {secs:.1f} s ({len(data) / secs / 1024:.0f} KiB/s)"


def serial(acm, gs, prefix):
    a, g = open_raw(acm), open_raw(gs)
    ok = True
    for name, src, dst in [(prefix + "_serial_to_gadget", a, g), (prefix + "_serial_from_gadget", g, a)]:
        passed, msg = pipe(name, src, dst, os.urandom(MIB))
        print(("PASS " if passed else "FAIL ") + msg, flush=True)
        ok &= passed
    return ok


def block(dev, sumfile, prefix):
    data = os.urandom(8 * MIB)
    start = time.monotonic()
    fd = os.open(dev, os.O_RDWR)
    size = os.lseek(fd, 0, os.SEEK_END)
    if size != len(data):
        print(f"FAIL {prefix}_block: {dev} has {size} bytes, expected {len(data)}", flush=True)
        return False
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:MIB]):]
    os.fsync(fd)
    os.close(fd)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    fd = os.open(dev, os.O_RDONLY)
    back = bytearray()
    while len(back) < len(data):
        chunk = os.read(fd, MIB)
        if not chunk:
            break
        back += chunk
    os.close(fd)
    secs = time.monotonic() - start
    want, got = hashlib.sha256(data).hexdigest(), hashlib.sha256(back).hexdigest()
    with open(sumfile, "w") as f:
        f.write(want + "\n")
    if want != got:
        print(f"FAIL {prefix}_block: read back sha256 {got} != written {want}", flush=True)
        return False
    print(f"PASS {prefix}_block 8 MiB written and read back through {dev}, sha256 {want[:16]}… in {secs:.1f} s", flush=True)
    return True


def drop(acm, gs, proxy_pid):
    """A 5 s drop of the technician's connection in the middle of a 4 MiB write."""
    a, g = open_raw(acm), open_raw(gs)
    at = []

    def cut_once(received):
        if not at and received >= 256 * 1024:
            at.append(received)
            os.kill(int(proxy_pid), signal.SIGUSR1)

    data = os.urandom(4 * MIB)
    passed, msg = pipe("session_drop_5s", a, g, data, cut_once)
    if passed and not at:
        passed, msg = False, "session_drop_5s: the transfer ended before the cut"
    if passed and at[0] >= len(data):
        passed, msg = False, "session_drop_5s: the cut came after the last byte"
    if passed:
        msg += f"; the connection was cut for 5 s after {at[0] // 1024} KiB had arrived"
    print(("PASS " if passed else "FAIL ") + msg, flush=True)
    return passed


CTAPHID_INIT = 0x86
BROADCAST = b"\xff\xff\xff\xff"


def fido_responder(hidg):
    fd = os.open(hidg, os.O_RDWR)
    start = time.monotonic()
    while time.monotonic() - start < DEADLINE:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        req = os.read(fd, 64)
        if req[:4] == BROADCAST and req[4] == CTAPHID_INIT:
            nonce = req[7:15]
            body = nonce + b"\x01\x02\x03\x04" + bytes([2, 1, 0, 0, 0])
            reply = BROADCAST + bytes([CTAPHID_INIT, 0, len(body)]) + body
            os.write(fd, reply.ljust(64, b"\0"))
            return True
    print("FAIL session_fido: the responder saw no CTAPHID_INIT", flush=True)
    return False


def fido_init(hidraw):
    fd = os.open(hidraw, os.O_RDWR)
    nonce = os.urandom(8)
    req = BROADCAST + bytes([CTAPHID_INIT, 0, 8]) + nonce
    start = time.monotonic()
    os.write(fd, b"\0" + req.ljust(64, b"\0"))  # report number 0, then the 64-byte report
    ready, _, _ = select.select([fd], [], [], 30)
    if not ready:
        print(f"FAIL session_fido: no CTAPHID_INIT answer on {hidraw}", flush=True)
        return False
    reply = os.read(fd, 64)
    ms = (time.monotonic() - start) * 1000
    if reply[:5] == BROADCAST + bytes([CTAPHID_INIT]) and reply[7:15] == nonce:
        cid = reply[15:19].hex()
        print(f"PASS session_fido CTAPHID_INIT round trip through {hidraw} in {ms:.0f} ms: nonce echoed, channel {cid}", flush=True)
        return True
    print(f"FAIL session_fido: answer {reply[:20].hex()} does not echo nonce {nonce.hex()}", flush=True)
    return False


if __name__ == "__main__":
    if sys.argv[1] in ("fido_responder", "fido_init"):
        sys.exit(0 if globals()[sys.argv[1]](sys.argv[2]) else 1)
    what, prefix = sys.argv[1], (sys.argv[4] if len(sys.argv) > 4 else "usbip")
    if what == "drop":
        sys.exit(0 if drop(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    check = serial if what == "serial" else block
    ok = check(sys.argv[2], sys.argv[3], prefix)
    sys.exit(0 if ok else 1)
