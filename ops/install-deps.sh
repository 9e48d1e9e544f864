#!/usr/bin/env bash
# install-deps.sh: install every Debian 12 package that recsd's build, tests
# and demo need. Idempotent: when everything is installed already it checks
# with dpkg-query and returns without touching apt (fast re-runs).
#
# Runs apt as root, through sudo when invoked as another user. Installing
# postgresql, redis-server and nginx must not leave system daemons holding
# ports (5432, 6379, 80): a policy-rc.d forbids starting services during the
# install, and any daemon that still appears is stopped afterwards.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config git
    clang clang-format clang-tidy cppcheck
    libclang-rt-14-dev # libFuzzer and LeakSanitizer runtimes for clang
    libomp-dev         # OpenMP for FAISS when the fuzz build compiles C++ with clang
    # libraries
    libzmq3-dev libczmq-dev librdkafka-dev libpq-dev libhiredis-dev
    libjansson-dev libjwt-dev libcurl4-openssl-dev libopenblas-dev
    libcriterion-dev libmsgpack-dev libmicrohttpd-dev libfaiss-dev libssl-dev
    # servers the dev stack and tests run
    postgresql postgresql-contrib redis-server kcat wrk nginx-light
    # tools; the integration tests import msgpack and zmq
    curl python3 python3-msgpack python3-zmq ca-certificates procps util-linux iproute2
    nodejs npm
    # operations checks: promtool and a real Prometheus (ops/prometheus),
    # YAML for the deployment-manifest tests
    prometheus python3-yaml
    # API document checks: JSON Schema validation of live answers, and the
    # /docs page rendered in a headless browser
    python3-jsonschema chromium
    # the load test (tests/load/locustfile.py)
    python3-locust
    # CI extras: line coverage (ops/coverage.sh), shell lint and the
    # pre-commit hooks (.pre-commit-config.yaml, checked by test_ci_config)
    gcovr shellcheck pre-commit
)

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    # npm ships inside some nodejs builds (NodeSource's provides and
    # conflicts with Debian's npm): a working npm command is enough.
    if [[ "$pkg" == npm ]] && command -v npm >/dev/null 2>&1; then
        continue
    fi
    installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    log "all ${#PACKAGES[@]} packages are installed"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run as root"
    SUDO=(sudo)
fi

log "installing: ${missing[*]}"

# The system services these packages bring, by init script name.
SERVICES=(postgresql redis-server nginx prometheus)
service_running() {
    command -v service >/dev/null 2>&1 && [[ -x "/etc/init.d/$1" ]] &&
        "${SUDO[@]}" service "$1" status >/dev/null 2>&1
}
declare -A running_before=()
for s in "${SERVICES[@]}"; do
    if service_running "$s"; then running_before[$s]=1; fi
done

# Forbid service starts while installing, unless the system already has its
# own policy (e.g. a container image's), which we then leave alone.
POLICY=/usr/sbin/policy-rc.d
our_policy=0
cleanup() {
    if ((our_policy)); then
        "${SUDO[@]}" rm -f "$POLICY" || log "warning: could not remove $POLICY"
    fi
}
trap cleanup EXIT
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# written by recsd ops/install-deps.sh for the install only\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    our_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
    die "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"

# Belt and braces: stop any system service the install started anyway
# (only those that were not running before; our own throw-away servers are
# not system services and are not touched).
for s in "${SERVICES[@]}"; do
    if [[ -z "${running_before[$s]:-}" ]] && service_running "$s"; then
        log "stopping the system $s service the install started"
        "${SUDO[@]}" service "$s" stop >/dev/null 2>&1 || log "warning: could not stop $s"
    fi
done

still=()
for pkg in "${missing[@]}"; do
    if [[ "$pkg" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
    installed "$pkg" || still+=("$pkg")
done
((${#still[@]} == 0)) || die "still not installed after apt-get: ${still[*]}"
log "done"
