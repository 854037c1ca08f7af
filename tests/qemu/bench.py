#!/usr/bin/env python3
"""Issue 12's benchmark in the QEMU guest: a mass-storage gadget's disk, measured the same way
on each path. Prints `BENCH <path> …` lines (figures are not judged) or `FAIL bench_<path>: why`.

bench.py local          wait for the gadget's disk on dummy_hcd (this kernel's own USB), measure it
bench.py usbip BUSID    export BUSID through usbip-host and import it through vhci-hcd over a
                        loopback TCP socket pair (the kernel's own USB/IP, sysfs only), measure, detach
bench.py vhci           wait for the disk behind vhci-hcd (`reach usb attach`), measure it
bench.py waitlocal      wait until the gadget's disk is on dummy_hcd again

Sequential: `dd` of SIZE_MIB (env, default 32) in 1 MiB blocks with oflag=direct, then
iflag=direct. Random: 4 KiB reads at random aligned offsets with O_DIRECT (a Python loop: the
guest has no fio) for RAND_SECS (default 5) seconds or 4096 reads, whichever ends first.
Each sequential run also prints where the (single) CPU went meanwhile: `BENCH cpu …` lines with the
seconds spent by each `reach` process (server, agent, attach — user + system time of the process) and
by the kernel outside them (system, irq and softirq time in /proc/stat not charged to those
processes), from /proc — a coarse profile (10 ms ticks). With /tmp/share/PERF present
(`PERF=1 scripts/qemu-usb-test.sh`), the Reach runs are also sampled with `perf record -a` and
the hottest symbols are printed as `PERF …` lines.
"""
import glob, mmap, os, random, shutil, signal, socket, subprocess, sys, time

SIZE_MIB = int(os.environ.get("SIZE_MIB", "32"))
RAND_SECS = float(os.environ.get("RAND_SECS", "5"))
VHCI = "/sys/devices/platform/vhci_hcd.0"


def find_disk(bus, timeout=30):
    """The sd* disk of SIZE_MIB whose sysfs path goes through BUS (dummy_hcd or vhci_hcd)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for b in glob.glob("/sys/class/block/sd*"):
            if b[-1].isdigit() or bus not in os.path.realpath(b):
                continue
            name = os.path.basename(b)
            if int(open(b + "/size").read()) * 512 == SIZE_MIB << 20 and os.path.exists("/dev/" + name):
                return "/dev/" + name
        time.sleep(0.2)
    raise TimeoutError(f"no {SIZE_MIB} MiB disk behind {bus}")


TICK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot():
    """CPU ticks so far: per `reach` role (server/agent/attach), the kernel's system+irq+softirq,
    and the total."""
    snap = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            cmd = open(stat[:-4] + "cmdline", "rb").read().split(b"\0")
            if not cmd[0].endswith(b"/reach") or len(cmd) < 2:
                continue
            role = cmd[1].decode()
            f = open(stat).read().rsplit(")", 1)[1].split()
            snap[role] = snap.get(role, 0) + int(f[11]) + int(f[12])  # utime + stime
            snap[role + "_sys"] = snap.get(role + "_sys", 0) + int(f[12])
        except (OSError, IndexError, ValueError):
            continue
    cpu = [int(x) for x in open("/proc/stat").readline().split()[1:8]]
    snap["kernel"] = cpu[2] + cpu[5] + cpu[6]  # system + irq + softirq
    snap["total"] = sum(cpu)
    snap["idle"] = cpu[3] + cpu[4]
    return snap


def cpu_report(name, phase, before, after):
    d = {k: (after.get(k, 0) - before.get(k, 0)) / TICK for k in after}
    roles = [r for r in ("server", "agent", "usb") if r in d]
    sys_in_reach = sum(d.get(r + "_sys", 0) for r in roles)
    label = {"server": "reach server", "agent": "reach agent", "usb": "reach usb attach"}
    parts = [f"{label[r]} {d[r]:.2f} s" for r in roles]
    parts.append(f"kernel outside reach {max(d['kernel'] - sys_in_reach, 0):.2f} s")
    busy = d["total"] - d["idle"]
    print(f"BENCH cpu {name} {phase}: busy {busy:.2f} s of {d['total']:.2f} s; " + ", ".join(parts), flush=True)


def dd(args):
    """MB/s (10^6 bytes) of one dd run, timed around the process."""
    start = time.monotonic()
    r = subprocess.run(["dd", "bs=1M", f"count={SIZE_MIB}", "status=none"] + args,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"dd {' '.join(args)}: {r.stderr.strip()}")
    return (SIZE_MIB << 20) / (time.monotonic() - start) / 1e6


def random_reads(dev):
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf, blocks, n = mmap.mmap(-1, 4096), (SIZE_MIB << 20) // 4096, 0
    rng = random.Random(12)
    start = time.monotonic()
    while n < 4096 and time.monotonic() - start < RAND_SECS:
        if os.preadv(fd, [buf], rng.randrange(blocks) * 4096) != 4096:
            raise RuntimeError("short 4 KiB read")
        n += 1
    secs = time.monotonic() - start
    os.close(fd)
    return n / secs, n


def perf_start(name):
    if name != "reach_attach" or not os.path.exists("/tmp/share/PERF") or not shutil.which("perf"):
        return None
    return subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "-a", "-o", "/tmp/perf.data"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_stop(p):
    if p is None:
        return
    p.send_signal(signal.SIGINT)
    p.wait()
    r = subprocess.run(["perf", "report", "-i", "/tmp/perf.data", "--stdio", "--sort", "comm,dso,sym",
                        "--percent-limit", "0.5"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.strip() and not line.startswith("#"):
            print("PERF " + line.rstrip()[:160], flush=True)


def measure(name, dev):
    # Write from a file in tmpfs, so /dev/urandom's cost is not in the figure.
    src = "/tmp/bench.src"
    if not os.path.exists(src):
        with open(src, "wb") as f:
            f.write(os.urandom(SIZE_MIB << 20))
    perf = perf_start(name)
    before = cpu_snapshot()
    write = dd([f"if={src}", f"of={dev}", "oflag=direct", "conv=fsync"])
    middle = cpu_snapshot()
    read = dd([f"if={dev}", "of=/dev/null", "iflag=direct"])
    after = cpu_snapshot()
    perf_stop(perf)
    cpu_report(name, "seq write", before, middle)
    cpu_report(name, "seq read", middle, after)
    iops, n = random_reads(dev)
    print(f"BENCH {name} {dev}: seq write {write:.1f} MB/s, seq read {read:.1f} MB/s "
          f"({SIZE_MIB} MiB, 1 MiB blocks, O_DIRECT); 4 KiB random read {iops:.0f} IOPS "
          f"({n} reads, O_DIRECT, one at a time)", flush=True)


def free_hs_port():
    for line in open(VHCI + "/status").read().splitlines()[1:]:
        f = line.split()
        if f[0] == "hs" and f[2] == "004":  # VDEV_ST_NULL: free
            return int(f[1])
    raise RuntimeError("no free high-speed vhci port")


def usbip(busid):
    """The kernel's own USB/IP: usbip-host exports BUSID, vhci-hcd imports it over loopback TCP."""
    d = f"/sys/bus/usb/devices/{busid}"
    devid = (int(open(d + "/busnum").read()) << 16) | int(open(d + "/devnum").read())
    open("/sys/bus/usb/drivers/usbip-host/match_busid", "w").write(f"add {busid}")
    if os.path.exists(d + "/driver"):
        open(d + "/driver/unbind", "w").write(busid)
    open("/sys/bus/usb/drivers/usbip-host/bind", "w").write(busid)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    cli = socket.create_connection(ls.getsockname())
    srv, _ = ls.accept()
    open(d + "/usbip_sockfd", "w").write(str(srv.fileno()))
    port = free_hs_port()
    open(VHCI + "/attach", "w").write(f"{port} {cli.fileno()} {devid} 3")  # 3: USB_SPEED_HIGH
    try:
        measure("usbip_kernel", find_disk("vhci_hcd"))
    finally:
        open(VHCI + "/detach", "w").write(str(port))
        end = time.monotonic() + 10
        while time.monotonic() < end and not any(
                l.split()[1] == f"{port:04d}" and l.split()[2] == "004" for l in open(VHCI + "/status").read().splitlines()[1:]):
            time.sleep(0.1)
        if os.path.exists(d + "/driver"):
            open("/sys/bus/usb/drivers/usbip-host/unbind", "w").write(busid)
        open("/sys/bus/usb/drivers/usbip-host/match_busid", "w").write(f"del {busid}")


def main():
    what = sys.argv[1]
    try:
        if what == "local":
            measure("local", find_disk("dummy_hcd"))
        elif what == "waitlocal":  # the gadget's disk is back on dummy_hcd (usb-storage bound)
            find_disk("dummy_hcd")
        elif what == "usbip":
            usbip(sys.argv[2])
        else:
            measure("reach_attach", find_disk("vhci_hcd"))
    except Exception as e:  # noqa: BLE001 - a failed measurement fails the run
        print(f"FAIL bench_{what}: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
