#!/usr/bin/env bash
# test.sh: recsd's one test command. Installs what is missing, builds a
# normal tree and an ASan+UBSan tree, starts a private dev stack (PostgreSQL,
# Redis, mock Kafka) that is always stopped and purged on exit, applies the
# migrations and runs every ctest suite against it.
#
#   ops/test.sh               both trees
#   ops/test.sh --quick       the normal tree only
#   ops/test.sh --sanitizers  the ASan+UBSan tree only (the CI sanitizer job)
#
# Environment (all optional):
#   RECSD_TEST_DEV_DIR     the private stack's state (default <repo>/var/test-stack);
#                          deliberately not RECSD_DEV_DIR, which may name your
#                          own dev stack: this one is purged at the end
#   RECSD_DEV_PG_PORT      PostgreSQL port (default 25433)
#   RECSD_DEV_REDIS_PORT   Redis port (default 26380)
#   RECSD_DEV_S3_PORT      s3rver port (default 24570)
#   RECSD_BUILD_DIR        normal tree (default <repo>/build)
#   RECSD_ASAN_BUILD_DIR   sanitizer tree (default <repo>/build-asan)
#   RECSD_TEST_JOBS        build parallelism (default: nproc)
#
# Exit status: 0 if every step and every test passed, 1 otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0      # no sanitizer tree, no fuzzing
SANITIZERS=0 # only the sanitizer tree
case "${1:-}" in
"") ;;
--quick) QUICK=1 ;;
--sanitizers) SANITIZERS=1 ;;
-h | --help)
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "usage: ops/test.sh [--quick | --sanitizers]" >&2
    exit 2
    ;;
esac

BUILD=${RECSD_BUILD_DIR:-$REPO/build}
BUILD_ASAN=${RECSD_ASAN_BUILD_DIR:-$REPO/build-asan}
JOBS=${RECSD_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
export RECSD_DEV_DIR=${RECSD_TEST_DEV_DIR:-$REPO/var/test-stack}
# Fixed ports below the kernel's ephemeral range (32768-60999): a port in it
# can be taken by any outgoing connection or bind(0) socket on the machine
# (CI once found s3rver's port held that way).
export RECSD_DEV_PG_PORT=${RECSD_DEV_PG_PORT:-25433}
export RECSD_DEV_REDIS_PORT=${RECSD_DEV_REDIS_PORT:-26380}
export RECSD_DEV_S3_PORT=${RECSD_DEV_S3_PORT:-24570}
export RECSD_BIN=$BUILD/recsd
((SANITIZERS)) && RECSD_BIN=$BUILD_ASAN/recsd
# Called through bash so that lost exec bits (a tarball checkout) do not matter.
DEVSTACK=(bash "$REPO/ops/devstack.sh")

SUMMARY=()
FAILED=0
START=$SECONDS
CHILD=0          # process group of the step running now, 0 if none
INTERRUPTED=""

step() { printf '\n==> %s\n' "$*"; }
record() { # record STATUS TEXT
    SUMMARY+=("$(printf '%-4s %s' "$1" "$2")")
    [[ "$1" == ok ]] || FAILED=1
}

print_summary() {
    printf '\n==> summary (%d s)\n' "$((SECONDS - START))"
    local line
    for line in "${SUMMARY[@]}"; do
        printf '  %s\n' "$line"
    done
    if ((FAILED)); then
        printf '  RESULT: FAILED\n'
    else
        printf '  RESULT: all passed\n'
    fi
}

# run CMD...: a step as its own process group, CHILD its id; on_signal
# stops the whole group (ctest and the test processes under it).
# shellcheck source=ops/run-group.sh
source "$REPO/ops/run-group.sh"

stop_child() {
    ((CHILD)) || return 0
    kill -TERM -- "-$CHILD" 2>/dev/null || return 0
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 -- "-$CHILD" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$CHILD" 2>/dev/null || true
}

on_signal() { # NAME STATUS
    INTERRUPTED=$1
    stop_child
    exit "$2"
}

# Runs a step that everything after it depends on: on failure, records it
# and stops (the EXIT trap still brings the stack down and prints the summary).
must() { # must TEXT CMD...
    local text=$1
    shift
    step "$text"
    if run "$@"; then
        record ok "$text"
    else
        record FAIL "$text"
        exit 1
    fi
}

STACK_STARTED=0
S3_STARTED=0
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -z "$INTERRUPTED" ]] || record FAIL "interrupted by $INTERRUPTED"
    if ((S3_STARTED)); then
        # Before the purge below, which deletes the directory s3rver uses.
        bash "$REPO/ops/s3rver.sh" stop || echo "test.sh: warning: could not stop s3rver" >&2
    fi
    if ((STACK_STARTED)); then
        step "stopping the test stack"
        "${DEVSTACK[@]}" down --purge || echo "test.sh: warning: could not bring the test stack down" >&2
    fi
    ((rc == 0)) || FAILED=1
    print_summary
    if ((FAILED)); then exit 1; fi
    exit 0
}
trap on_exit EXIT
trap 'on_signal SIGINT 130' INT
trap 'on_signal SIGTERM 143' TERM

# The integration tests import Debian's python3-msgpack and python3-zmq, which
# only Debian's interpreter sees; a pyenv or venv python3 earlier on PATH
# would not, so the tests are pinned to /usr/bin/python3 when it exists.
PY_ARGS=()
[[ ! -x /usr/bin/python3 ]] || PY_ARGS=(-DPYTHON3=/usr/bin/python3)

configure_and_build() { # DIR CMAKE-ARGS...
    local dir=$1
    shift
    cmake -S "$REPO" -B "$dir" "${PY_ARGS[@]}" "$@" && cmake --build "$dir" -j "$JOBS"
}

# The unit tests run $JOBS at a time (each has its own throw-away database,
# and none listens on a fixed port: half the time on 2 cores); the
# integration and tooling tests one at a time, since they share the stack and
# some of them measure latency.
run_ctest() { # TEXT DIR [ENV...]
    local text=$1 dir=$2
    shift 2
    step "$text"
    local others="unit"
    [[ -n "${CTEST_LABEL_EXCLUDE:-}" ]] && others="unit|$CTEST_LABEL_EXCLUDE"
    local rc=0
    run env RECSD_BIN="$dir/recsd" "$@" ctest --test-dir "$dir" --output-on-failure \
        -L '^unit$' -j "$JOBS" || rc=1
    run env RECSD_BIN="$dir/recsd" "$@" ctest --test-dir "$dir" --output-on-failure \
        -LE "^($others)\$" || rc=1
    if ((rc == 0)); then
        record ok "$text"
    else
        record FAIL "$text"
    fi
}

# In the foreground, not through run(): sudo may need the terminal.
step "install dependencies"
if bash "$REPO/ops/install-deps.sh"; then
    record ok "install dependencies"
else
    record FAIL "install dependencies"
    exit 1
fi
((SANITIZERS)) ||
    must "build $BUILD (RelWithDebInfo)" configure_and_build "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if ((!QUICK)); then
    must "build $BUILD_ASAN (Debug, ASan+UBSan)" configure_and_build "$BUILD_ASAN" \
        -DCMAKE_BUILD_TYPE=Debug -DRECSD_SANITIZE=ON
fi

# A stack left by an interrupted run would be reused with stale data: start
# from nothing.
step "starting the test stack in $RECSD_DEV_DIR (pg :$RECSD_DEV_PG_PORT, redis :$RECSD_DEV_REDIS_PORT)"
if ! "${DEVSTACK[@]}" down --purge; then
    record FAIL "clear the previous test stack"
    exit 1
fi
STACK_STARTED=1
if "${DEVSTACK[@]}" up; then
    record ok "test stack up"
else
    record FAIL "test stack up"
    exit 1
fi
stack_env=$("${DEVSTACK[@]}" env)
eval "$stack_env"
printf '%s\n' "$stack_env"

# s3rver (npm) for the s3:// artifact backend's tests.
S3_STARTED=1
if bash "$REPO/ops/s3rver.sh" start; then
    record ok "s3rver up"
else
    record FAIL "s3rver up"
    exit 1
fi
s3_env=$(bash "$REPO/ops/s3rver.sh" env)
eval "$s3_env"
printf '%s\n' "$s3_env"

must "migrate" "$RECSD_BIN" migrate
# Swagger UI and ReDoc (npm packages, pinned) and the OpenAPI document,
# served by the gateway under test from RECSD_DOCS_DIR.
DOCS_DIR=$(dirname "$RECSD_BIN")/docs-assets
must "documentation assets" bash "$REPO/ops/docs-assets.sh" "$DOCS_DIR"
export RECSD_DOCS_DIR=$DOCS_DIR

((SANITIZERS)) || run_ctest "ctest $BUILD" "$BUILD"
if ((!QUICK)); then
    # Without the "tooling" tests (CMakeLists.txt): they check documents,
    # rules and manifests, not C code, and ran with the normal build.
    CTEST_LABEL_EXCLUDE=tooling run_ctest "ctest $BUILD_ASAN (sanitizers)" "$BUILD_ASAN" \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

# The msgpack decoder's libFuzzer target, when clang is here: a short run on
# a scratch corpus seeded from fuzz/corpus (which it must not grow).
if ((!QUICK && !SANITIZERS)) && command -v clang >/dev/null; then
    BUILD_FUZZ=${RECSD_FUZZ_BUILD_DIR:-$REPO/build-fuzz}
    fuzz_proto() {
        CC=clang CXX=clang++ cmake -S "$REPO" -B "$BUILD_FUZZ" -DCMAKE_BUILD_TYPE=Debug \
            "${PY_ARGS[@]}" -DRECSD_FUZZ=ON >/dev/null || return 1
        cmake --build "$BUILD_FUZZ" -j "$JOBS" --target fuzz_proto_decode fuzz_auth_token \
            fuzz_request || return 1
        local scratch rc=0 target
        # The msgpack decoder from the committed corpus; token handling
        # (bearer tokens, API keys, signed claims) from its own seeds.
        for target in fuzz_proto_decode fuzz_auth_token fuzz_request; do
            scratch=$(mktemp -d)
            local seeds=()
            [[ "$target" == fuzz_proto_decode ]] && seeds=("$REPO/fuzz/corpus")
            [[ "$target" == fuzz_request ]] && seeds=("$REPO/fuzz/corpus_request")
            # A crashing input is kept in the build dir (artifact_prefix).
            "$BUILD_FUZZ/$target" -max_total_time="${RECSD_FUZZ_SECONDS:-20}" -timeout=5 \
                -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD_FUZZ/" \
                "$scratch" "${seeds[@]}" >"$BUILD_FUZZ/$target.log" 2>&1 || rc=1
            tail -n 6 "$BUILD_FUZZ/$target.log"
            rm -rf "$scratch"
        done
        return "$rc"
    }
    step "fuzz proto_decode, auth tokens, request validation for ${RECSD_FUZZ_SECONDS:-20} s each (clang, libFuzzer + ASan/UBSan)"
    if run fuzz_proto; then
        record ok "fuzz proto_decode, auth tokens, request validation"
    else
        record FAIL "fuzz proto_decode, auth tokens, request validation"
    fi
fi

# Static analysis (ops/lint.sh: clang-format check, cppcheck, clang-tidy;
# about 1.5 min on 2 cores) in every full run: findings piled up once while
# only the GitHub lint job looked for them.
if ((!QUICK && !SANITIZERS)); then
    step "lint: clang-format, cppcheck, clang-tidy"
    if run bash "$REPO/ops/lint.sh"; then
        record ok "lint: clang-format, cppcheck, clang-tidy"
    else
        record FAIL "lint: clang-format, cppcheck, clang-tidy"
    fi
fi
