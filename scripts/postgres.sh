#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `eval "$(scripts/postgres.sh start DIR)"`
# initialises a cluster in DIR (trust auth, loopback only, a free port, no
# fsync), starts it as a non-root user and prints the exports the tests read
# (DISPATCH_TEST_POSTGRES_URL, PG_TEST_DIR, PG_TEST_BIN);
# `scripts/postgres.sh stop DIR` stops it, `restart DIR` starts it again on
# the same port (the outage tests). Needs Debian's postgresql package.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop|restart DIR}
dir=${2:?usage: postgres.sh start|stop|restart DIR}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "PostgreSQL not found: apt-get install postgresql" >&2; exit 1; }

# PostgreSQL refuses to run as root: run it as the package's own user, from
# a directory that user may enter.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd "$dir" && runuser -u postgres -- "$@"); else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    # A free port below Linux's ephemeral range (32768+): a port from that
    # range was taken by some client's connection while the outage test had
    # its server stopped, and `restart` could not bind it again.
    port=$(python3 -c '
import random, socket
for _ in range(500):
    port = random.randint(20000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
')
    echo "$port" >"$dir/port"
    as_owner "$bin/initdb" -A trust -U postgres --no-locale -E UTF8 -D "$dir/data" >"$dir/initdb.log"
    "$0" restart "$dir"
    echo "export DISPATCH_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export PG_TEST_DIR=$dir PG_TEST_BIN=$bin"
    ;;
  restart)
    port=$(cat "$dir/port")
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c max_connections=300" \
      start >/dev/null
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: postgres.sh start|stop|restart DIR" >&2; exit 2 ;;
esac
