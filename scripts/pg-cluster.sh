#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on a loopback port.
#
#   scripts/pg-cluster.sh start DIR   initdb in DIR (when new), start the
#                                     server on a free 127.0.0.1 port; prints
#                                     the DSN and writes it to DIR/dsn
#   scripts/pg-cluster.sh stop DIR    stop that server by the PID in
#                                     DIR/data/postmaster.pid
#
# Installs the Debian package postgresql when missing (idempotent). The
# cluster trusts connections from loopback (no password), runs as the
# `postgres` user when started by root (the server refuses root), and keeps
# everything under DIR: data, socket, log. PG_FAST=1 turns fsync off (tests
# only; never for a benchmark). PG_SYNCHRONOUS_COMMIT=off keeps fsync but
# acknowledges a commit before its WAL is flushed (the durability of
# SQLite's synchronous=NORMAL: a server crash may lose the last commits,
# never corrupts). PG_PORT picks the port.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

find_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_pg() {
  find_bin >/dev/null && return 0
  local SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
  # No service start from the package scripts (no init system here).
  local policy_rc=/usr/sbin/policy-rc.d own=
  if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy_rc" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy_rc"
    own=1
  fi
  set +e
  "${SUDO[@]}" apt-get update -q >/dev/null &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null
  local rc=$?
  set -e
  [ -z "$own" ] || "${SUDO[@]}" rm -f "$policy_rc"
  [ "$rc" -eq 0 ] || { echo "apt-get install postgresql failed (exit $rc)" >&2; exit "$rc"; }
}

# Runs a server binary as the owner of DIR (postgres when we are root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
  start)
    install_pg
    bin=$(find_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$dir"
      runuser -u postgres -- test -w "$dir" ||
        { echo "pg-cluster: the postgres user cannot reach $dir (check the modes of its parents)" >&2; exit 1; }
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=${PG_PORT:-$(free_port)}
    opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c shared_buffers=128MB"
    [ -z "${PG_FAST:-}" ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ -z "${PG_SYNCHRONOUS_COMMIT:-}" ] || opts="$opts -c synchronous_commit=$PG_SYNCHRONOUS_COMMIT"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    dsn="host=127.0.0.1 port=$port user=postgres dbname=postgres"
    echo "$dsn" >"$dir/dsn"
    echo "$dsn"
    ;;
  stop)
    pidfile="$dir/data/postmaster.pid"
    [ -f "$pidfile" ] || exit 0
    pid=$(head -n 1 "$pidfile")
    # SIGINT: the "fast" shutdown (rolls back sessions, checkpoints, exits).
    kill -INT "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || exit 0
      sleep 0.1
    done
    echo "postgres (pid $pid) did not stop; sending SIGQUIT" >&2
    kill -QUIT "$pid" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
