#!/usr/bin/env bash
# Apache ZooKeeper 3.8 and rookeeper on one dataDir, both directions.
#   tests/interop/run.sh [path/to/rookeeper]    (needs tests/kazoo/setup.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BIN="${1:-$REPO/target/release/rookeeper}"
PY="${KAZOO_VENV:-$REPO/target/kazoo-venv}/bin/python"
exec timeout 600 "$PY" "$HERE/storage_interop.py" "$BIN"
