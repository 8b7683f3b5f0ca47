#!/usr/bin/env bash
# deploy/ checked without Docker or systemd as init: the compose ensemble run
# from the image's entrypoint and CMD, the systemd unit verified and run.
#   tests/deploy/run.sh [path/to/rookeeper]   (needs python3-yaml, from tests/kazoo/setup.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-$HERE/../../target/release/rookeeper}"
timeout 600 python3 "$HERE/deploy_test.py" "$BIN"
