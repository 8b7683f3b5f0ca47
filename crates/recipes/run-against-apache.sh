#!/bin/sh
# Runs the recipes test suite against Debian's Apache ZooKeeper 3.8 instead of
# the in-process rookeeper server (see tests/common/mod.rs), showing that the
# recipes only rely on the public ZooKeeper protocol.
set -eu
cd "$(dirname "$0")"
RECIPES_SERVER=apache exec cargo test -p recipes "$@" -- --test-threads=2
