#!/usr/bin/env python3
"""REST steps of tests/qemu/session.sh with the technician's stored login (`reach login`).

rest.py CONFIG_DIR machine NAME   -> prints "MACHINE_ID AGENT_KEY" (a new managed machine)
rest.py CONFIG_DIR session ID     -> waits until the machine's agent is online with USB, creates
                                     a managed session with usb: true, prints its id
"""
import json, sys, time, urllib.request


def call(login, method, path, body=None):
    req = urllib.request.Request(login["server"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + login["token"],
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def main():
    login = json.load(open(sys.argv[1] + "/login.json"))
    what, arg = sys.argv[2], sys.argv[3]
    if what == "machine":
        m = call(login, "POST", "/api/machines", {"name": arg})
        k = call(login, "POST", f"/api/machines/{m['id']}/keys", {})
        print(m["id"], k["key"])
        return 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = call(login, "GET", f"/api/machines/{arg}")
        if m.get("online") and m.get("capabilities", {}).get("supports_usb"):
            s = call(login, "POST", "/api/sessions", {"machine_id": arg, "usb": True})
            print(s["id"])
            return 0
        time.sleep(0.2)
    print(f"machine {arg} not online with USB: {m}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
