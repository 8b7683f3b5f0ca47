#!/usr/bin/env bash
# Fuzzes the jute codec: runs every cargo-fuzz target (or the ones named) for
# N seconds each and exits non-zero if any of them finds a crash, a timeout
# or an oversized allocation.
#
#   fuzz/run.sh            # every target, 30 s each
#   fuzz/run.sh 300        # every target, 5 min each
#   fuzz/run.sh 60 request txn
#
# cargo fuzz needs nightly-only rustc flags (-Zsanitizer=address, ...).
# RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain, so no nightly is
# needed. Set FUZZ_TOOLCHAIN=nightly to use a real nightly instead.
#
# The committed seeds in fuzz/corpus/<target> are only read; what libFuzzer
# discovers goes to fuzz/corpus-work/<target> (git-ignored), crash inputs to
# fuzz/artifacts/<target>/. Reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

secs="${1:-30}"
if [ "$#" -gt 0 ]; then shift; fi
all_targets=(request txn connect frame)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [seconds] [target...]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    toolchain=("+${FUZZ_TOOLCHAIN}")
else
    export RUSTC_BOOTSTRAP=1
fi

echo "== building fuzz targets" >&2
nice cargo "${toolchain[@]}" fuzz build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus-work/$t" "fuzz/corpus/$t"
    echo "== fuzzing $t for ${secs}s" >&2
    # -malloc_limit_mb: any single allocation that large is a decoder bug
    # (inputs are at most 4 KiB). -timeout: a slow input counts as a failure.
    if ! nice cargo "${toolchain[@]}" fuzz run "$t" \
        "fuzz/corpus-work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=10 \
        -rss_limit_mb=1024 -malloc_limit_mb=64 -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "== all targets ran ${secs}s without a crash: ${targets[*]}" >&2
