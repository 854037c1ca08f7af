#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suites: Debian's postgresql binaries, a data
# directory under /tmp, loopback TCP only, trust authentication, owned by an unprivileged user
# (`postgres` when run as root, else the caller). No system service is touched.
#
#   scripts/pg-cluster.sh start   -> prints the base URL (postgres://USER@127.0.0.1:PORT)
#   scripts/pg-cluster.sh stop    -> stops the cluster and removes its directory
#
# PG_PORT (default 15432: below the kernel's ephemeral range, so no outgoing connection of an
# earlier test can be holding it) and PG_DIR (default /tmp/reach-pg) can be set.
set -euo pipefail
PORT="${PG_PORT:-15432}"
DIR="${PG_DIR:-/tmp/reach-pg}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/initdb" ] || { echo "pg-cluster: PostgreSQL server binaries not found (apt install postgresql)" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then OWNER=postgres; AS=(runuser -u postgres --); else OWNER=$(id -un); AS=(); fi

case "${1:-}" in
  start)
    "$0" stop >/dev/null 2>&1 || true
    mkdir -p "$DIR"; chown "$OWNER" "$DIR"; chmod 700 "$DIR"
    "${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U "$OWNER" --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    # Tests create one database per server; fsync off: the cluster is thrown away.
    # A port still held by a socket that is closing gets a few more tries.
    for attempt in 1 2 3 4 5; do
      if "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        >/dev/null; then
        break
      fi
      if [ "$attempt" -eq 5 ] || ! grep -q "Address already in use" "$DIR/server.log"; then
        cat "$DIR/server.log" >&2; exit 1
      fi
      echo "pg-cluster: port $PORT is busy; trying again in 2 s" >&2
      sleep 2
    done
    echo "postgres://$OWNER@127.0.0.1:$PORT"
    ;;
  stop)
    if [ -d "$DIR/data" ]; then "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
