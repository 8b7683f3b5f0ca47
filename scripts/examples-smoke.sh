#!/usr/bin/env bash
# Runs the recipes crate's scenario examples (crates/recipes/examples) end to
# end against a real rookeeper server on a free loopback port.
#
#   bash scripts/examples-smoke.sh
#
# Uses target/release/rookeeper, or target/debug/rookeeper if there is no
# release build (build one with `cargo build --release --bin rookeeper`).
# Prints one line per example and `examples: N passed, M failed`; exits
# non-zero if any example failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
EXAMPLES=(master_election distributed_lock service_discovery master_worker)
start=$(date +%s)

# --workspace, not -p recipes: the same feature set as `cargo test
# --workspace`, so its build is reused rather than repeated.
cargo build -q --workspace --examples

BIN="$REPO/target/release/rookeeper"
[ -x "$BIN" ] || BIN="$REPO/target/debug/rookeeper"
if [ ! -x "$BIN" ]; then
    echo "no rookeeper binary; run: cargo build --release --bin rookeeper" >&2
    exit 2
fi

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
cat > "$TMP/zoo.cfg" <<CFG
tickTime=2000
clientPort=$PORT
clientPortAddress=127.0.0.1
dataDir=$TMP/data
admin.enableServer=false
CFG
"$BIN" server "$TMP/zoo.cfg" > "$TMP/server.log" 2>&1 &
SERVER_PID=$!

# Wait for the port to accept connections.
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server exited at startup:" >&2
        cat "$TMP/server.log" >&2
        exit 2
    fi
    sleep 0.1
done

passed=0
failed=0
for ex in "${EXAMPLES[@]}"; do
    t0=$(date +%s.%N)
    if timeout 60 "$REPO/target/debug/examples/$ex" --server "127.0.0.1:$PORT" \
        > "$TMP/$ex.log" 2>&1; then
        rc=0
    else
        rc=$?
    fi
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $ex (${secs}s): $(tail -n 1 "$TMP/$ex.log")"
    else
        failed=$((failed + 1))
        echo "FAIL $ex (exit $rc, ${secs}s); its output:"
        sed 's/^/    /' "$TMP/$ex.log"
    fi
done

echo "examples: $passed passed, $failed failed ($(($(date +%s) - start))s total)"
[ "$failed" -eq 0 ]
