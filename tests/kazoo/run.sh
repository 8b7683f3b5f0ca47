#!/usr/bin/env bash
# Run kazoo 2.11.0's own test suite (the installed kazoo/tests package)
# against Apache ZooKeeper 3.8 (Debian package) or against rookeeper.
#
#   tests/kazoo/run.sh apache    [extra pytest args...]
#   tests/kazoo/run.sh rookeeper [extra pytest args...]
#
# Needs tests/kazoo/setup.sh to have run.  Extra args go to pytest, which runs
# with the venv's site-packages as rootdir, so node ids and paths look like
#   kazoo/tests/test_lock.py::TestSemaphore::test_basic
# e.g.  run.sh rookeeper kazoo/tests/test_lock.py -k Semaphore
# (when an arg starting with "kazoo/" is given, the default target
# kazoo/tests is dropped).
#
# Results go to $KAZOO_RESULTS (default $REPO/target/kazoo-results/<mode>):
#   junit.xml    pytest junit (xunit1: has file= attributes)
#   pytest.log   full console output
#   summary.md   per-file passed/failed/errors/skipped + failure reasons
#   passed.txt   node ids of the passing tests
#   meta.txt     mode, server version, duration, exit codes
#
# In rookeeper mode the run ends with compare.py against apache-passing.txt,
# and the script's exit status is the gate's (0 = every Apache-passing test
# passed).  With extra pytest args (a partial run) tests that were not run are
# not counted.  In apache mode the exit status is 0 when pytest ran to the end
# (test failures are expected: they are the yardstick), non-zero on a harness
# problem or timeout; KAZOO_UPDATE_BASELINE=1 also copies passed.txt over
# the baseline.  The baseline is tests/kazoo/apache-passing.txt for
# ZOOKEEPER_CLUSTER_SIZE=1 and apache-passing-cluster<N>.txt for N servers
# (KAZOO_BASELINE overrides).
#
# Server logs: kazoo deletes each server's temp dir (and its zookeeper.log)
# when a test class ends; keep_server_logs.py (a pytest plugin) appends every
# log to $RESULTS/server-logs/<tmpdir>-server<id>.log first and writes
# $RESULTS/server-logs/timeline.txt (UTC time, test, outcome, log files).
#
# Environment (defaults in brackets):
#   KAZOO_VENV            [$REPO/target/kazoo-venv]
#   KAZOO_RESULTS         [$REPO/target/kazoo-results/<mode>]
#   KAZOO_TEST_TIMEOUT    per-test timeout in s, pytest-timeout [60]
#   KAZOO_SUITE_TIMEOUT   whole-run bound in s [2400]: no test starts after it
#                         (pytest-timeout --session-timeout); hard kill of the
#                         run's process group at +120 s (SIGINT, SIGKILL +30 s)
#   KAZOO_CI              [true] exported as CI=true (kazoo's tests read CI:
#                         test_build runs only under CI; with CI set they take
#                         the server version from ZOOKEEPER_VERSION instead of
#                         asking the server with `envi`, and test_read_only
#                         sleeps 15 s first).  Set KAZOO_CI=false to unset CI.
#   ROOKEEPER_BIN         [$REPO/target/release/rookeeper, else .../debug/...]
#   ZOOKEEPER_CLUSTER_SIZE [1]   ZOOKEEPER_VERSION [3.8.0]
#                         (size N > 1: servers 1..N form one ensemble; the
#                         zoo.cfg kazoo writes has server.N lines and data/myid)
#   KAZOO_OBSERVER_START_ID [-1] servers with this id and above are observers
#                         (e.g. size 4, id 4: 3 voters and 1 observer)
#   KAZOO_BASELINE        [apache-passing.txt, or apache-passing-cluster<N>.txt]
#   KAZOO_SERVER_LOGS     [$RESULTS/server-logs] where server logs are kept;
#                         "none" keeps none
#   ZOOKEEPER_PORT_OFFSET  [20000] - server i (0-based) uses offset+10*i+0..4:
#                         +0 clientPort, +1 election, +2 leader (quorum only),
#                         +3 admin.serverPort, +4 secureClientPort.
#   ZOOKEEPER_CLASSPATH   apache mode [Debian jars: zookeeper.jar + netty-codec,
#                         netty-resolver, servlet-api, slf4j-log4j12, log4j]
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

usage() { echo "usage: $0 apache|rookeeper [pytest args...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
MODE="$1"; shift
case "$MODE" in apache|rookeeper) ;; *) usage ;; esac

VENV="${KAZOO_VENV:-$REPO/target/kazoo-venv}"
RESULTS="${KAZOO_RESULTS:-$REPO/target/kazoo-results/$MODE}"
TEST_TIMEOUT="${KAZOO_TEST_TIMEOUT:-60}"
SUITE_TIMEOUT="${KAZOO_SUITE_TIMEOUT:-2400}"
PY="$VENV/bin/python"

log() { printf '[kazoo-run] %s\n' "$*" >&2; }

if ! "$PY" -c 'import kazoo.testing, pytest_timeout' 2>/dev/null; then
    log "kazoo venv missing or incomplete at $VENV: run tests/kazoo/setup.sh"
    exit 2
fi
SITE="$("$PY" -c 'import os, kazoo; print(os.path.dirname(os.path.dirname(kazoo.__file__)))')"

# ---------------------------------------------------------- harness env
export ZOOKEEPER_VERSION="${ZOOKEEPER_VERSION:-3.8.0}"
export ZOOKEEPER_CLUSTER_SIZE="${ZOOKEEPER_CLUSTER_SIZE:-1}"
if [ "$ZOOKEEPER_CLUSTER_SIZE" = 1 ]; then
    BASELINE="${KAZOO_BASELINE:-$HERE/apache-passing.txt}"
else
    BASELINE="${KAZOO_BASELINE:-$HERE/apache-passing-cluster$ZOOKEEPER_CLUSTER_SIZE.txt}"
fi
export ZOOKEEPER_PORT_OFFSET="${ZOOKEEPER_PORT_OFFSET:-20000}"
# These are set and cleared by individual tests (test_sasl, TestReadOnlyMode);
# a stray value would reconfigure the whole run.
unset ZOOKEEPER_JAAS_AUTH ZOOKEEPER_LOCAL_SESSION_RO
# Servers with id >= ZOOKEEPER_OBSERVER_START_ID are observers (kazoo's
# harness; -1 = none): only a deliberate KAZOO_OBSERVER_START_ID sets it.
export ZOOKEEPER_OBSERVER_START_ID="${KAZOO_OBSERVER_START_ID:--1}"
unset KRB5_TEST_ENV  # Kerberos test needs a KDC we do not set up: skip it
if [ "${KAZOO_CI:-true}" = true ]; then export CI=true; else unset CI; fi

# PATH without this directory (so apache mode never picks up the shim)
clean_path="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$HERE" | paste -sd: -)"

if [ "$MODE" = apache ]; then
    unset ZOOKEEPER_PATH
    # Debian layout: /usr/share/java/zookeeper.jar carries a manifest
    # Class-Path with most of its deps (jute, netty-handler/transport, jetty,
    # slf4j-api, ...) but NOT netty-codec/netty-resolver (without them the
    # NettyServerCnxnFactory the harness configures accepts TCP connections
    # and then drops every one: NoClassDefFoundError ByteToMessageDecoder),
    # nor servlet-api (Jetty admin server on admin.serverPort), nor an slf4j
    # binding (slf4j-log4j12 + log4j 1.2 make the harness's log4j.properties
    # take effect, so <work>/zookeeper.log gets written).
    # (ZOOKEEPER_PATH=/usr/share/java would glob every jar there: don't.)
    J=/usr/share/java
    export ZOOKEEPER_CLASSPATH="${ZOOKEEPER_CLASSPATH:-$J/zookeeper.jar:$J/netty-codec.jar:$J/netty-resolver.jar:$J/servlet-api.jar:$J/slf4j-log4j12.jar:$J/log4j-1.2.jar}"
    for j in ${ZOOKEEPER_CLASSPATH//:/ }; do
        [ -e "$j" ] || { log "missing $j: run tests/kazoo/setup.sh"; exit 2; }
    done
    command -v java >/dev/null 2>&1 || { log "no java on PATH"; exit 2; }
    export PATH="$clean_path"
    SERVER_DESC="Apache ZooKeeper (Debian zookeeper $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?'))"
else
    if [ -z "${ROOKEEPER_BIN:-}" ]; then
        for b in "$REPO/target/release/rookeeper" "$REPO/target/debug/rookeeper"; do
            if [ -x "$b" ]; then ROOKEEPER_BIN="$b"; break; fi
        done
    fi
    if [ -z "${ROOKEEPER_BIN:-}" ] || [ ! -x "$ROOKEEPER_BIN" ]; then
        log "no rookeeper binary (set ROOKEEPER_BIN or cargo build --release)"
        exit 2
    fi
    ROOKEEPER_BIN="$(cd "$(dirname "$ROOKEEPER_BIN")" && pwd)/$(basename "$ROOKEEPER_BIN")"
    export ROOKEEPER_BIN
    export REAL_JAVA="${REAL_JAVA:-/usr/bin/java}"
    # The harness needs some classpath string to build its argv; unused.
    unset ZOOKEEPER_PATH
    export ZOOKEEPER_CLASSPATH="rookeeper-shim-ignores-the-classpath"
    export PATH="$HERE:$clean_path"
    SERVER_DESC="rookeeper ($ROOKEEPER_BIN)"
fi

# ---------------------------------------------------------- port check
if ! "$PY" - "$ZOOKEEPER_PORT_OFFSET" "$ZOOKEEPER_CLUSTER_SIZE" <<'EOF'
import socket, sys
off, size = int(sys.argv[1]), int(sys.argv[2])
busy = []
for i in range(size):
    for d in range(5):
        p = off + 10 * i + d
        s = socket.socket()
        # like the servers do; otherwise TIME_WAIT leftovers look busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            busy.append(p)
        finally:
            s.close()
if busy:
    print("[kazoo-run] ports in use: %s (a leftover server? set ZOOKEEPER_PORT_OFFSET)" % busy, file=sys.stderr)
    sys.exit(1)
EOF
then
    exit 2
fi

# ---------------------------------------------------------- run pytest
mkdir -p "$RESULTS"
rm -f "$RESULTS/junit.xml" "$RESULTS/summary.md" "$RESULTS/passed.txt"
plugin_args=()
SERVER_LOGS="${KAZOO_SERVER_LOGS:-$RESULTS/server-logs}"
if [ "$SERVER_LOGS" != none ]; then
    rm -rf "$SERVER_LOGS"
    mkdir -p "$SERVER_LOGS"
    export KAZOO_SERVER_LOGS="$SERVER_LOGS"
    export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
    plugin_args=(-p keep_server_logs)
fi

targets=(kazoo/tests)
for a in "$@"; do
    case "$a" in kazoo/*) targets=(); break ;; esac
done

log "mode=$MODE server=$SERVER_DESC cluster_size=$ZOOKEEPER_CLUSTER_SIZE"
log "results in $RESULTS; per-test timeout ${TEST_TIMEOUT}s, suite timeout ${SUITE_TIMEOUT}s"

start=$(date +%s)
cd "$SITE" || exit 2
# Two bounds: pytest-timeout's --session-timeout stops starting new tests
# after SUITE_TIMEOUT (the running one still has its per-test timeout) and
# still writes junit.xml; the outer `timeout` is the backstop: it puts itself
# and pytest (and the servers pytest spawns) in a new process group and sends
# the whole group SIGINT (pytest then still writes junit.xml) 120 s later,
# SIGKILL 30 s after that.
timeout -s INT -k 30 "$((SUITE_TIMEOUT + 120))" \
    "$PY" -m pytest -c "$HERE/pytest.ini" --rootdir="$SITE" \
        -p no:cacheprovider "${plugin_args[@]}" \
        --timeout="$TEST_TIMEOUT" --session-timeout="$SUITE_TIMEOUT" \
        --junitxml="$RESULTS/junit.xml" \
        -v -rfEs --color=no \
        "${targets[@]}" "$@" </dev/null \
    > >(tee "$RESULTS/pytest.log") 2>&1 &
tpid=$!
trap 'kill -TERM -- -"$tpid" 2>/dev/null; exit 130' INT TERM
wait "$tpid"
rc=$?
trap - INT TERM
# Anything of that group still alive (an orphaned server) goes now.
kill -TERM -- -"$tpid" 2>/dev/null && sleep 1 && kill -KILL -- -"$tpid" 2>/dev/null
end=$(date +%s)
cd "$REPO" || exit 2

{
    echo "mode: $MODE"
    echo "server: $SERVER_DESC"
    echo "kazoo: $("$PY" -c 'import importlib.metadata as m; print(m.version("kazoo"))')"
    echo "pytest exit code: $rc"
    echo "duration_s: $((end - start))"
    echo "date: $(date -u +%FT%TZ)"
    echo "pytest args: ${targets[*]} $*"
    echo "cluster size: $ZOOKEEPER_CLUSTER_SIZE (observers from id $ZOOKEEPER_OBSERVER_START_ID)"
} > "$RESULTS/meta.txt"

if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    log "SUITE TIMEOUT: pytest killed after $((SUITE_TIMEOUT + 120))s (rc=$rc)"
elif grep -q "session-timeout: .* exceeded" "$RESULTS/pytest.log" 2>/dev/null; then
    log "SUITE TIMEOUT: session stopped after ${SUITE_TIMEOUT}s; remaining tests not run"
    rc=3
fi
if [ ! -s "$RESULTS/junit.xml" ]; then
    log "no junit.xml produced (pytest rc=$rc)"
    echo "0 passed, 1 failed"
    exit 2
fi

"$PY" "$HERE/compare.py" --summary "$RESULTS/junit.xml" > "$RESULTS/summary.md"
"$PY" "$HERE/compare.py" --list-passed "$RESULTS/junit.xml" > "$RESULTS/passed.txt"
log "summary ($((end - start)) s):"
head -n -1 "$RESULTS/summary.md" | sed -e '/^Failed \/ errored tests:/,$d' -e '/^Skipped tests:/,$d' >&2

if [ "$MODE" = apache ]; then
    if [ "${KAZOO_UPDATE_BASELINE:-0}" = 1 ]; then
        # A header saying how the list was made (compare.py skips '#').
        sizevar=""
        [ "$ZOOKEEPER_CLUSTER_SIZE" = 1 ] || sizevar="ZOOKEEPER_CLUSTER_SIZE=$ZOOKEEPER_CLUSTER_SIZE "
        {
            echo "# kazoo $("$PY" -c 'import importlib.metadata as m; print(m.version("kazoo"))') tests that pass against $SERVER_DESC"
            echo "# with $ZOOKEEPER_CLUSTER_SIZE server(s): the yardstick for \`${sizevar}tests/kazoo/run.sh rookeeper\`."
            echo "# Produced by \`${sizevar}KAZOO_UPDATE_BASELINE=1 tests/kazoo/run.sh apache\` on $(date -u +%F)"
            echo "# (CI=${CI:-unset}, per-test timeout ${TEST_TIMEOUT} s): $(tail -n 1 "$RESULTS/summary.md"), $((end - start)) s."
            cat "$RESULTS/passed.txt"
        } > "$BASELINE.tmp" && mv "$BASELINE.tmp" "$BASELINE"
        log "updated $BASELINE ($(grep -vc '^#' "$BASELINE") tests)"
    fi
    tail -n 1 "$RESULTS/summary.md"
    case "$rc" in 0|1) exit 0 ;; *) exit "$rc" ;; esac
fi

gate_args=()
[ $# -gt 0 ] && gate_args+=(--ignore-missing)
"$PY" "$HERE/compare.py" "${gate_args[@]}" "$RESULTS/junit.xml" "$BASELINE"
grc=$?
# In an ensemble every member checks each txn's digest from the leader
# against its own tree: a mismatch anywhere in the suite is a replica that
# diverged (or a wrong prediction by our leader), whatever the tests saw.
if [ "$SERVER_LOGS" != none ] && [ "$ZOOKEEPER_CLUSTER_SIZE" != 1 ]; then
    diverged=$(grep -l "digest mismatch" "$SERVER_LOGS"/*.log 2>/dev/null)
    if [ -n "$diverged" ]; then
        log "digest mismatch in: $(echo "$diverged" | tr '\n' ' ')"
        grc=1
    else
        log "no digest mismatch in $(ls "$SERVER_LOGS"/*.log 2>/dev/null | wc -l) server logs"
    fi
fi
case "$rc" in 0|1) exit "$grc" ;; *) [ "$grc" = 0 ] && exit "$rc"; exit "$grc" ;; esac
