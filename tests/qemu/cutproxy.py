#!/usr/bin/env python3
"""A TCP forwarder whose connections can be dropped for a while (the technician's network going away).

cutproxy.py LISTEN_PORT TARGET_PORT CUT_SECS: forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT.
On SIGUSR1 every open connection is shut down and reset (both peers notice at once) and new
connections are refused by closing them at once, for CUT_SECS seconds; then it forwards again.
Prints one line when a cut starts and one when it ends.
"""
import signal, socket, struct, sys, threading, time

conns, lock = set(), threading.Lock()
cut_until = 0.0


def reset(s):
    # shutdown first: a close() alone leaves the socket alive while a forwarding thread sits in
    # recv() on it, so the peer would notice nothing until it sent something itself.
    for step in (lambda: s.shutdown(socket.SHUT_RDWR),
                 lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
                 s.close):
        try:
            step()
        except OSError:
            pass


def forward(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        with lock:
            conns.discard(a)
            conns.discard(b)
        reset(a)
        reset(b)


def main():
    listen, target, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])

    def cut(*_):
        global cut_until
        cut_until = time.monotonic() + secs
        with lock:
            victims = list(conns)
            conns.clear()
        for s in victims:
            reset(s)
        print(f"cutproxy: cut {len(victims)} sockets for {secs:g} s", flush=True)
        threading.Timer(secs, lambda: print("cutproxy: forwarding again", flush=True)).start()

    signal.signal(signal.SIGUSR1, cut)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen))
    srv.listen(64)
    print(f"cutproxy: 127.0.0.1:{listen} -> 127.0.0.1:{target}", flush=True)
    while True:
        client, _ = srv.accept()
        if time.monotonic() < cut_until:
            reset(client)
            continue
        try:
            upstream = socket.create_connection(("127.0.0.1", target))
        except OSError:
            reset(client)
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            conns.update((client, upstream))
        threading.Thread(target=forward, args=(client, upstream), daemon=True).start()
        threading.Thread(target=forward, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
