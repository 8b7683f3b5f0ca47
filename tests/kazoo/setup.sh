#!/usr/bin/env bash
# Idempotent installer for the kazoo compatibility harness.
#
#   tests/kazoo/setup.sh
#
# Installs, on a fresh Debian 12 (bookworm) machine, as root:
#   * Debian's `zookeeper` package (Apache ZooKeeper 3.8.0, package version
#     3.8.0-11+deb12u2 at the time of writing) -- the yardstick server, and
#     zkCli.sh at /usr/share/zookeeper/bin/zkCli.sh.  It pulls default-jre.
#   * a Python venv at $KAZOO_VENV (default $REPO/target/kazoo-venv) with the
#     pinned packages of tests/kazoo/requirements.txt (kazoo==2.11.0, pytest,
#     pytest-timeout, pyOpenSSL<24, pyjks, objgraph, pure-sasl, gevent,
#     eventlet, ...).
#
# Environment:
#   KAZOO_VENV        venv path           (default $REPO/target/kazoo-venv)
#   PYTHON            interpreter for venv (default python3; CPython 3.11)
#   KAZOO_SKIP_APT=1  do not touch apt (e.g. zookeeper not wanted/needed)
#
# Re-running is cheap: apt is skipped when zookeeper is already installed, and
# pip is skipped when the venv's stamp matches requirements.txt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${KAZOO_VENV:-$REPO/target/kazoo-venv}"
PYTHON="${PYTHON:-python3}"
REQS="$HERE/requirements.txt"

log() { printf '[kazoo-setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- apt part
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

if [ "${KAZOO_SKIP_APT:-0}" != 1 ]; then
    need=()
    pkg_installed zookeeper || need+=(zookeeper)
    # tests/deploy parses deploy/docker-compose.yml.
    pkg_installed python3-yaml || need+=(python3-yaml)
    # twofish (a pyjks dependency) only ships an sdist: needs a C compiler.
    command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
    # tests/ensemble makes its quorum TLS certificates with openssl.
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    if [ "${#need[@]}" -gt 0 ]; then
        apt_install "${need[@]}"
    fi
    zkver="$(dpkg-query -W -f='${Version}' zookeeper)"
    log "zookeeper (Debian) $zkver installed"
    case "$zkver" in
        3.8.*) ;;
        *) log "WARNING: expected a 3.8.x zookeeper package, got $zkver" ;;
    esac
    [ -x /usr/share/zookeeper/bin/zkCli.sh ] || log "WARNING: zkCli.sh missing"
fi

# ---------------------------------------------------------------- venv part
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 8)' 2>/dev/null; then
    log "ERROR: $PYTHON is not a usable Python 3.8+"
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.kazoo-requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$VENV/bin/python" -c 'import kazoo.testing, pytest, pytest_timeout' 2>/dev/null; then
    log "venv up to date ($VENV)"
else
    log "installing pinned requirements into $VENV"
    # --timeout/--retries: bounded even if the registry is slow.
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        --timeout 60 --retries 3 -r "$REQS"
    "$VENV/bin/python" -c 'import kazoo.testing, kazoo.tests, OpenSSL, jks, objgraph, pytest_timeout, puresasl, gevent, eventlet'
    echo "$want" > "$stamp"
fi
log "kazoo $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kazoo"))') ready in $VENV"
