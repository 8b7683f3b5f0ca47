#!/usr/bin/env bash
# Ensembles on loopback: rookeeper alone and mixed with Apache ZooKeeper 3.8.
#   tests/ensemble/run.sh [path/to/rookeeper] [scenario ...]   (needs tests/kazoo/setup.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BIN="${1:-$REPO/target/release/rookeeper}"
shift || true
PY="${KAZOO_VENV:-$REPO/target/kazoo-venv}/bin/python"
exec timeout 900 "$PY" "$HERE/ensemble_test.py" "$BIN" "$@"
