#!/bin/sh
# Runs the recipes test suite against Debian's Apache ZooKeeper 3.8 instead of
# the in-process rookeeper server (see tests/common/mod.rs), showing that the
# recipes only rely on the public ZooKeeper protocol.
set -eu
cd "$(dirname "$0")"
# CI runs this after tests/kazoo/setup.sh: the kazoo Lock interop test must
# find the venv (not skip), against our server here and Apache below.
export KAZOO_REQUIRED=1
cargo test -p recipes --test kazoo_interop
RECIPES_SERVER=apache exec cargo test -p recipes "$@" -- --test-threads=2
