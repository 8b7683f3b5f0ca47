#!/usr/bin/env bash
# rookeeper cli end to end: the same zkCli session through Apache's zkCli.sh
# and through `rookeeper cli` (against rookeeper and against Apache ZooKeeper
# 3.8), the interactive shell on a pseudo-terminal, and quota enforcement.
#   tests/cli/run.sh [path/to/rookeeper]    (needs tests/kazoo/setup.sh: Apache ZooKeeper, a JRE)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-$HERE/../../target/release/rookeeper}"
timeout 900 python3 "$HERE/cli_compare.py" "$BIN"
timeout 300 python3 "$HERE/interactive_test.py" "$BIN"
timeout 600 python3 "$HERE/quota_test.py" "$BIN"
