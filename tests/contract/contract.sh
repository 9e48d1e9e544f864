#!/usr/bin/env bash
# contract.sh: install the pinned Pact toolchain for the contract tests and
# run the consumer side. The provider side needs a running recsd and is run
# by tests/integration/test_contract.py.
#
#   tests/contract/contract.sh install     npm ci into the node dir (if stale)
#   tests/contract/contract.sh consumer    run the consumer tests, writing
#                                          the pact to PACT_DIR (default:
#                                          tests/contract/pacts/, committed)
#
# The node dir is RECSD_CONTRACT_NODE_DIR, by default <repo>/build/contract-node:
# node_modules never lands in the source tree. package-lock.json pins every
# package (the Pact core's native library comes from the npm package
# @pact-foundation/pact-core-linux-x64-glibc; nothing is downloaded from
# elsewhere). A stamp with the lock file's hash makes `install` a no-op
# when nothing changed.
#
# Versions (package.json): @pact-foundation/pact 16.0.2 with its core pinned
# to 17.0.0 by an override. Newer pairs were tried and refused: pact 17 needs
# Node 22 (Debian 12 has 20); pact 16.3-16.5 (core 19) have a mock-server race
# that fails a consumer test under CPU load with "request was expected but
# not received" although it was answered (pact-core-mock-server issue 13;
# seen here); core 18 and 17.1 lack the other platforms' packages on the
# registry this project uses, which makes `npm ci` refuse the lock file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
node_dir="${RECSD_CONTRACT_NODE_DIR:-$repo/build/contract-node}"

log() { printf 'contract: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

install() {
    command -v node >/dev/null 2>&1 || die "node is not installed (ops/install-deps.sh installs nodejs)"
    command -v npm >/dev/null 2>&1 || die "npm is not installed (ops/install-deps.sh installs npm)"
    mkdir -p "$node_dir"
    local want have
    want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
    # One installer at a time (two test trees may share the dir).
    exec 9>"$node_dir/.lock"
    flock 9
    have="$(cat "$node_dir/.installed" 2>/dev/null || true)"
    if [[ "$have" == "$want" && -d "$node_dir/node_modules/@pact-foundation/pact" ]]; then
        return 0
    fi
    log "npm ci into $node_dir"
    local started=$SECONDS
    cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
    rm -f "$node_dir/.installed"
    # No lifecycle scripts: the Pact packages need none (the native library
    # is a prebuilt in an npm package), and none may fetch anything.
    (cd "$node_dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2 ||
        die "npm ci failed"
    echo "$want" >"$node_dir/.installed"
    log "installed in $((SECONDS - started)) s"
}

case "${1:-}" in
install)
    install
    ;;
consumer)
    install
    export NODE_PATH="$node_dir/node_modules"
    export PACT_DIR="${PACT_DIR:-$here/pacts}"
    mkdir -p "$PACT_DIR"
    # Pact merges into an existing file: start from none, so an interaction
    # removed from the tests leaves the pact too.
    rm -f "$PACT_DIR/streaming-api-gateway-recsd.json"
    cd "$here"
    node --test consumer/*.test.js
    ;;
*)
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
