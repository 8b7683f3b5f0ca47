#!/bin/sh
# Runs the recipes test suite against Debian's Apache ZooKeeper 3.8 instead of
# the in-process rookeeper server (see tests/common/mod.rs), showing that the
# recipes only rely on the public ZooKeeper protocol.
set -eu
cd "$(dirname "$0")"
# CI runs this after tests/kazoo/setup.sh: the kazoo Lock interop test must
# find the venv (not skip), against our server here and Apache below.
export KAZOO_REQUIRED=1
# Selected with --workspace and --test rather than -p recipes: `-p` resolves
# dependencies' features for this crate alone and so builds a second copy of
# most of the workspace (a gigabyte of target/ on a CI disk).
tests=""
for t in tests/*.rs; do tests="$tests --test $(basename "$t" .rs)"; done
cargo test --workspace --test kazoo_interop
# shellcheck disable=SC2086
RECIPES_SERVER=apache exec cargo test --workspace $tests "$@" -- --test-threads=2
