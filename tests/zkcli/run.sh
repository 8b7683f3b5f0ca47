#!/usr/bin/env bash
# Apache ZooKeeper's own zkCli.sh (Debian package) against rookeeper.
#   tests/zkcli/run.sh [path/to/rookeeper]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-$HERE/../../target/release/rookeeper}"
exec python3 "$HERE/zkcli_test.py" "$BIN"
