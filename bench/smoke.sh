#!/usr/bin/env bash
# CI smoke run of the benchmark harness: every workload for a couple of
# seconds against our server on a free loopback port, one `bench compare` run
# whose attempt is set aside for CPU steal and run again, and one leader kill
# in a 3-server rookeeper ensemble (`bench compare --failover-only`). Checks that the
# harness runs and reports (JSON parsed, operations counted, no errors);
# it says nothing about speed.
#
#   bash bench/smoke.sh [path/to/rookeeper]
#
# Uses target/release/rookeeper unless given a binary. Prints one line per
# workload and `bench smoke: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BIN="${1:-$REPO/target/release/rookeeper}"
if [ ! -x "$BIN" ]; then
    echo "no rookeeper binary at $BIN; run: cargo build --release --bin rookeeper" >&2
    exit 2
fi
start=$(date +%s)
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

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$TMP/zoo.cfg" <<CFG
tickTime=2000
clientPort=$PORT
clientPortAddress=127.0.0.1
dataDir=$TMP/data
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
CFG
"$BIN" server "$TMP/zoo.cfg" > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
served=0
for _ in $(seq 1 100); do
    if [ "$(python3 - "$PORT" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"srvr")
print(s.recv(64).decode(errors="replace").startswith("Zookeeper version:"))
PY
)" = True ]; then
        served=1
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ "$served" != 1 ]; then
    echo "server did not start serving:" >&2
    cat "$TMP/server.log" >&2
    exit 2
fi

COMMON=(--servers "127.0.0.1:$PORT" --duration 2 --warmup 0.5 --quiet --json)
# name|extra arguments|rows the result must have
CASES=(
    "read|--workload read --sessions 4 --depth 8 --nodes 100|getData"
    "write|--workload write --sessions 4 --depth 8 --nodes 100|setData"
    "create-delete|--workload create-delete --sessions 4 --depth 8|create,delete"
    "mixed-50|--workload mixed --read-pct 50 --sessions 4 --depth 8 --nodes 100|getData,setData"
    "zk-latencies|--workload zk-latencies --nodes 200 --watch-sessions 2 --depth 50|create,set,get,delete,create ephemeral,exists+watch,delete watched,watch event (since delete start)"
    "watch-fanout|--workload watch-fanout --watchers 20|setData,event arrived (each watcher),event seen by generator,round (all W events arrived),round seen by generator"
    "churn|--workload churn --rate 20 --sessions 8|connect,create ephemeral,close,cycle"
    "read (zookeeper-client driver)|--workload read --driver client --sessions 2 --depth 8 --nodes 100|getData"
)
passed=0
failed=0
# pass NAME SUMMARY / fail NAME OUTPUT: count a case and say how it went.
pass() {
    passed=$((passed + 1))
    echo "PASS $1: $2"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL $1; its output:"
    sed 's/^/    /' "$TMP/err.txt" "$2" | tail -40
}
for c in "${CASES[@]}"; do
    IFS='|' read -r name extra rows <<< "$c"
    # shellcheck disable=SC2086
    if timeout 60 "$BIN" bench "${COMMON[@]}" $extra > "$TMP/out.json" 2> "$TMP/err.txt" \
        && summary=$(python3 - "$TMP/out.json" "$rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = sys.argv[2].split(",")
names = [row["name"] for row in r["rows"]]
missing = [w for w in want if w not in names]
assert not missing, f"rows missing: {missing} (have {names})"
assert r["ops"] > 0, "no operations counted"
assert r["errors"] == 0, f"errors: {r['error_codes']}"
for row in r["rows"]:
    assert row["count"] > 0, f"row {row['name']} empty"
    l = row["latency_us"]
    assert 0 < l["p50"] <= l["p99"] <= l["p999"] <= l["max"], f"percentiles of {row['name']}: {l}"
print(f"{r['ops']} ops, {r['throughput']:.0f}/s, p99 {r['latency_us']['p99'] / 1000:.2f} ms")
PY
); then
        pass "$name" "$summary"
    else
        fail "$name" "$TMP/out.json"
    fi
done
# --trace: one line per measured request, as many as the result counts.
if timeout 60 "$BIN" bench "${COMMON[@]}" --workload write --sessions 4 --depth 8 --nodes 100 \
        --trace "$TMP/trace.txt" > "$TMP/out.json" 2> "$TMP/err.txt" \
    && summary=$(python3 - "$TMP/out.json" "$TMP/trace.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
assert lines[0].startswith("# window_start_unix_us "), lines[0]
rows = [l.split() for l in lines[1:]]
count = sum(row["count"] for row in r["rows"] if row["name"] == "setData")
assert len(rows) == count, f"{len(rows)} traced, {count} counted"
sends = [int(x[1]) for x in rows]
assert sends == sorted(sends), "not in send order"
assert all(0 <= s < 2_000_000 and int(x[2]) > 0 and x[3] == "setData" and 0 <= int(x[0]) < 4
           for s, x in zip(sends, rows)), "a line out of range"
print(f"{len(rows)} requests traced")
PY
); then
    pass "write (traced)" "$summary"
else
    fail "write (traced)" "$TMP/out.json"
fi
# bench compare on a standalone server of ours, with a steal limit no run can
# meet: the run is set aside once, run again, and the report lists both (~5 s).
if timeout 90 "$BIN" bench compare --kinds rookeeper --workloads write --rounds 1 --duration 1 \
        --warmup 0.5 --nodes 100 --sessions 4 --depth 8 --max-steal=-1 --steal-retries 1 --steal-wait 0 \
        --no-resources --workdir "$TMP/cmp" --out "$TMP/report" --name steal > "$TMP/out.txt" 2> "$TMP/err.txt" \
    && summary=$(python3 - "$TMP/report/steal/runs.json" "$TMP/report/steal.md" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
assert len(runs) == 1, f"{len(runs)} runs"
r = runs[0]
assert r["error"] is None, r["error"]
assert len(r["set_aside"]) == 1, f"{len(r['set_aside'])} attempts set aside"
for x in r["set_aside"] + [r["result"]]:
    assert x["steal_pct"] is not None and x["steal_pct"] >= 0, x["steal_pct"]
    assert x["ops"] > 0 and x["errors"] == 0, x
md = open(sys.argv[2]).read()
assert "### Runs set aside for CPU steal" in md, "no set-aside section in the report"
assert "| set aside |" in md and "| kept (retries used up) |" in md, "attempts not listed"
print(f"1 attempt set aside (steal {r['set_aside'][0]['steal_pct']:.1f}%), kept attempt {r['result']['ops']} ops")
PY
); then
    pass "compare steal retry" "$summary"
else
    fail "compare steal retry" "$TMP/out.txt"
fi
# A 3-server rookeeper ensemble: kill its leader once, check that a write
# got through the survivors and that the report and runs.json say so (~5 s).
if timeout 90 "$BIN" bench compare --ensemble --failover-only --failovers 1 --kinds rookeeper \
        --no-resources --workdir "$TMP/ens" --out "$TMP/report" --name smoke > "$TMP/out.txt" 2> "$TMP/err.txt" \
    && summary=$(python3 - "$TMP/report/smoke/runs.json" "$TMP/report/smoke.md" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["failovers"]
assert len(f) == 1, f"{len(f)} failover samples"
s = f[0]
assert s["error"] is None, s["error"]
assert s["write_ms"] is not None and s["write_ms"] > 0, s
assert s["new_leader"] not in (None, s["killed"]), s
assert s["rejoin_secs"] is not None, s
assert "## Failover" in open(sys.argv[2]).read(), "no failover section in the report"
print(f"leader {s['killed']} killed, write after {s['write_ms']:.0f} ms, new leader {s['new_leader']}")
PY
); then
    pass "ensemble failover" "$summary"
else
    fail "ensemble failover" "$TMP/out.txt"
fi
echo "bench smoke: $passed passed, $failed failed ($(($(date +%s) - start))s total)"
[ "$failed" -eq 0 ]
