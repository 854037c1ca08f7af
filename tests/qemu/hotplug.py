#!/usr/bin/env python3
"""Issue 15 in the QEMU guest: the host API's `GET /usb/events` carries the real backend's hotplug.

hotplug.py URL TOKEN_FILE UDC_FILE UDC VID PID
  The gadget on UDC_FILE must be unbound when called. Streams /usb/events, binds the gadget
  (expects `device_added` for VID:PID), unbinds it (`device_removed`), then reconnects with
  `Last-Event-ID` set to the added event's id: the stream must resume with the removed event and
  nothing at or before that id; binds again (a live `device_added` after the resumed backlog).
Prints `PASS hostapi_hotplug …` / `PASS hostapi_resume …` or `FAIL …`; exit 1 on any failure.
"""
import json, os, select, socket, sys, time

DEADLINE = 30


class Sse:
    """A minimal SSE reader over a raw socket; HTTP/1.0, so the body has no chunked framing."""

    def __init__(self, url, token, last_id=None):
        host, port = url.split("//", 1)[1].rstrip("/").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
        self.sock.sendall((f"GET /usb/events HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                           f"Accept: text/event-stream\r\n{extra}\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n")[0].decode()
        if " 200" not in status:
            raise RuntimeError(f"/usb/events answered {status}")
        self.text = ""

    def _fill(self, timeout=DEADLINE):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise TimeoutError("no data on /usb/events")
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("/usb/events closed")
        self.buf += chunk

    def next_event(self, timeout=DEADLINE):
        """The next event with an id as (id, name, data); comments and keep-alives are skipped."""
        end = time.monotonic() + timeout
        while True:
            self.text += self.buf.decode(errors="replace"); self.buf = b""
            while "\n\n" in self.text:
                block, self.text = self.text.split("\n\n", 1)
                fields = {}
                for line in block.replace("\r", "").split("\n"):
                    if ":" in line and not line.startswith(":"):
                        k, v = line.split(":", 1)
                        fields[k] = v[1:] if v.startswith(" ") else v
                if "id" in fields:
                    return int(fields["id"]), fields.get("event", "message"), json.loads(fields.get("data", "null"))
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no event in time")
            self._fill(left)


def write(path, text):
    # "\n" for an empty value: Python writes nothing at all for "".
    with open(path, "w") as f:
        f.write(text + "\n")


def hexid(v):
    return v if isinstance(v, str) else f"{v:04x}"


def wait_for(sse, name, vid, pid):
    """Events until NAME for VID:PID; returns (its id, every event seen)."""
    seen = []
    while True:
        eid, kind, data = sse.next_event()
        seen.append((eid, kind))
        dev = (data or {}).get("device") or {}
        if kind == name and hexid(dev.get("vendor_id")) == vid and hexid(dev.get("product_id")) == pid:
            return eid, dev, seen


def main():
    url, token_file, udc_file, udc, vid, pid = sys.argv[1:7]
    mode = os.stat(token_file).st_mode & 0o777
    if mode != 0o600:
        print(f"FAIL hostapi_hotplug: {token_file} has mode {mode:o}, not 600"); return 1
    with open(token_file) as f:
        token = f.read().strip()
    start = time.monotonic()
    try:
        sse = Sse(url, token)
        write(udc_file, udc)
        added, dev, _ = wait_for(sse, "device_added", vid, pid)
        write(udc_file, "")
        removed, _, _ = wait_for(sse, "device_removed", vid, pid)
        secs = time.monotonic() - start
        print(f"PASS hostapi_hotplug GET /usb/events (token file mode 600): device_added id {added} "
              f"({vid}:{pid} at {dev.get('bus_id')}) after binding {udc}, device_removed id {removed} "
              f"after unbinding, in {secs:.1f} s", flush=True)
        sse.sock.close()
    except Exception as e:  # noqa: BLE001 - any failure is the check's failure
        print(f"FAIL hostapi_hotplug: {e}"); return 1
    try:
        again = Sse(url, token, last_id=added)
        first = again.next_event()
        write(udc_file, udc)
        live, _, seen = wait_for(again, "device_added", vid, pid)
        ids = [first[0]] + [i for i, _ in seen]
        if first[0] != removed or first[1] != "device_removed" or min(ids) <= added:
            print(f"FAIL hostapi_resume: after Last-Event-ID {added} got {first[:2]} then {seen}"); return 1
        print(f"PASS hostapi_resume Last-Event-ID {added}: resumed with device_removed id {removed} "
              f"(nothing at or before {added}), then live device_added id {live} after re-binding", flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL hostapi_resume: {e}"); return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
