#!/usr/bin/env bash
# SIGKILL crash loop against rookeeper: every acknowledged write survives.
#   tests/crash/run.sh [path/to/rookeeper] [CYCLES] [SEED]   (default 30 cycles)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BIN="${1:-$REPO/target/release/rookeeper}"
PY="${KAZOO_VENV:-$REPO/target/kazoo-venv}/bin/python"
exec timeout 900 "$PY" "$HERE/crash_loop.py" "$BIN" "${2:-30}" ${3:+"$3"}
