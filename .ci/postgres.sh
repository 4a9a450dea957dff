#!/usr/bin/env bash
# A PostgreSQL server for the test suite (the scheduler's shared state database), from
# Debian's packages, listening on 127.0.0.1 only, with trust authentication for the local
# test user `postgres` (nothing else can reach it).
#
#   bash .ci/postgres.sh install   # apt-get install postgresql when its binaries are missing
#   bash .ci/postgres.sh start     # install if needed, initdb a data directory, start, wait
#   bash .ci/postgres.sh stop      # stop it (no-op when it is not running)
#   bash .ci/postgres.sh status    # exit 0 when it accepts connections
#
# Environment (all optional):
#   PG_PORT     TCP port on 127.0.0.1 (default 15432); the tests read the same variable
#   PG_RUN_DIR  data directory, socket and log of one server (default /tmp/connector-postgres-$PG_PORT)
#
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` user that the
# Debian package creates, in a data directory it owns.
set -euo pipefail

PG_PORT="${PG_PORT:-15432}"
RUN_DIR="${PG_RUN_DIR:-/tmp/connector-postgres-$PG_PORT}"
DATA="$RUN_DIR/data"
LOG="$RUN_DIR/server.log"

log() { echo "postgres.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bindir() { # the newest installed server's bin directory
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [[ -x "$d/postgres" ]] && echo "$d"
}

cmd_install() {
    if bindir >/dev/null; then
        log "PostgreSQL $("$(bindir)/postgres" --version | awk '{print $3}') already installed"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed; as root: apt-get install -y postgresql"
    log "apt-get install -y postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # The package's own cluster is not needed (and not started): the tests run their own.
    apt-get install -y -qq --no-install-recommends postgresql >&2
    bindir >/dev/null || die "postgresql installed but no server binary found"
}

as_owner() { # run a command as the data directory's owner
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd_status() {
    local bin
    bin=$(bindir) || return 1
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres
}

cmd_start() {
    local bin
    cmd_install
    bin=$(bindir)
    if cmd_status; then
        log "already accepting connections on 127.0.0.1:$PG_PORT"
        return 0
    fi
    mkdir -p "$RUN_DIR"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no postgres user (the Debian package creates it)"
        chown postgres: "$RUN_DIR"
    fi
    chmod 700 "$RUN_DIR"
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        log "initdb $DATA"
        as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >/dev/null
    fi
    # Loopback TCP only; the Unix socket in the run directory (not /var/run/postgresql).
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN_DIR -c max_connections=200 -c fsync=off" \
        start >&2 || { tail -n 40 "$LOG" >&2 || true; die "pg_ctl start failed"; }
    cmd_status || { tail -n 40 "$LOG" >&2 || true; die "not accepting connections"; }
    log "PostgreSQL ready on 127.0.0.1:$PG_PORT (data $DATA, log $LOG)"
}

cmd_stop() {
    local bin
    bin=$(bindir) || { log "not installed"; return 0; }
    if [[ -f "$DATA/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
        log "stopped"
    else
        log "not running"
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
