#!/usr/bin/env bash
# The whole test suite: lint, unit/property/integration tests, a short fuzz
# run, Apache's zkCli.sh against our server, Apache and rookeeper sharing a
# dataDir in both directions, and kazoo's own test suite (every test that
# passes on Apache ZooKeeper 3.8 must pass on ours).
# Installs what it needs on a fresh Debian machine (apt: zookeeper, a JRE;
# pip: kazoo and its test deps in a venv under target/).
#
#   bash scripts/test-all.sh            # everything
#   SKIP_KAZOO=1 SKIP_FUZZ=1 bash scripts/test-all.sh   # just the Rust side
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
step() { printf '\n=== %s\n' "$*"; }
start=$(date +%s)
# Disk is the one resource a build can exhaust silently (a link dies with
# SIGBUS): show what there is, before and after the biggest build.
disk() { df -h . | awk 'NR==2 {print "disk: " $4 " free of " $2}'; }
disk

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, property and integration tests)"
cargo test --workspace
disk

step "release build"
cargo build --release --bin rookeeper

step "recipe examples (the seed documents' scenarios) against our server"
bash scripts/examples-smoke.sh

step "benchmark harness smoke run (every workload ~2 s against our server; not a speed test)"
bash bench/smoke.sh "$REPO/target/release/rookeeper"

if [ "${SKIP_FUZZ:-0}" != 1 ] && [ -x fuzz/run.sh ]; then
    step "fuzz (short run of every decoder target)"
    FUZZ_SECONDS="${FUZZ_SECONDS:-20}" fuzz/run.sh
fi

if [ "${SKIP_KAZOO:-0}" != 1 ]; then
    step "install Apache ZooKeeper 3.8 and kazoo's test environment"
    bash tests/kazoo/setup.sh

    step "recipe tests against Apache ZooKeeper 3.8 (the recipes are server-agnostic)"
    bash crates/recipes/run-against-apache.sh

    step "Apache zkCli.sh against rookeeper"
    bash tests/zkcli/run.sh "$REPO/target/release/rookeeper"

    step "rookeeper cli: same output as zkCli.sh (vs rookeeper and Apache), interactive on a pty, quota enforcement"
    bash tests/cli/run.sh "$REPO/target/release/rookeeper"

    step "deploy/: the compose ensemble from the image's entrypoint and CMD, the systemd unit"
    bash tests/deploy/run.sh "$REPO/target/release/rookeeper"

    step "Apache ZooKeeper 3.8 and rookeeper on one dataDir, both directions"
    bash tests/interop/run.sh "$REPO/target/release/rookeeper"

    step "ensembles: 3 and 5 rookeeper servers, mixed with Apache ZooKeeper 3.8 (leader on either side), rolling replacement"
    bash tests/ensemble/run.sh "$REPO/target/release/rookeeper"

    step "SIGKILL crash loop: every acknowledged write survives (30 kills)"
    bash tests/crash/run.sh "$REPO/target/release/rookeeper" "${CRASH_CYCLES:-30}"

    step "kazoo 2.11.0 test suite against rookeeper"
    ROOKEEPER_BIN="$REPO/target/release/rookeeper" bash tests/kazoo/run.sh rookeeper

    step "kazoo 2.11.0 test suite against a 3-server rookeeper ensemble (gate: tests/kazoo/apache-passing-cluster3.txt)"
    ZOOKEEPER_CLUSTER_SIZE=3 ROOKEEPER_BIN="$REPO/target/release/rookeeper" bash tests/kazoo/run.sh rookeeper
fi

echo "all tests passed in $(( $(date +%s) - start ))s"
