#!/usr/bin/env bash
# coverage.sh: line coverage of recsd's C code by the test suite. Builds a
# gcc --coverage tree (Debug, no optimisation, so lines map to code),
# starts a private dev stack (PostgreSQL, Redis, mock Kafka, s3rver) that is
# always stopped and purged on exit, runs the unit and integration tests,
# then gcovr over lib/ proto/ supervisor/ actors/ (tests/, fuzz/ and bench/
# are not measured). Prints the line percentage per file, per directory and
# in total, writes HTML, Cobertura XML and JSON reports into
# <build>/coverage/, and fails under the threshold.
#
#   ops/coverage.sh                 build, test, report
#   ops/coverage.sh --report-only   only gcovr over the counts already in the tree
#
# Environment (all optional):
#   RECSD_COV_BUILD_DIR     the coverage tree (default <repo>/build-cov)
#   RECSD_COV_FAIL_UNDER    line threshold in percent (default 85)
#   RECSD_COV_CTEST_ARGS    extra ctest arguments, e.g. "-L unit" or "-E it.test_docs_ui"
#   RECSD_TEST_DEV_DIR      the private stack's state (default <repo>/var/cov-stack)
#   RECSD_DEV_PG_PORT       PostgreSQL port (default 25435)
#   RECSD_DEV_REDIS_PORT    Redis port (default 26382)
#   RECSD_DEV_S3_PORT       s3rver port (default 24572)
#   RECSD_TEST_JOBS         build parallelism (default: nproc)
#
# The counts: gcov writes a process's .gcda files when it exits through
# exit() or a return from main. Actors stopped by the supervisor (SIGTERM,
# the STOP command) return from their main and are counted; a process killed
# with SIGKILL (the crash tests kill actors on purpose, and the supervisor
# kills an actor that overruns its stop deadline) loses the counts of its
# lifetime. Concurrent writers of one .gcda are merged under a file lock.
#
# Exit status: 0 if the build, every test and the threshold passed; 1 if a
# step or a test failed; 2 if only the threshold was missed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPORT_ONLY=0
case "${1:-}" in
"") ;;
--report-only) REPORT_ONLY=1 ;;
-h | --help)
    sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "usage: ops/coverage.sh [--report-only]" >&2
    exit 2
    ;;
esac

BUILD=${RECSD_COV_BUILD_DIR:-$REPO/build-cov}
[[ "$BUILD" == /* ]] || BUILD="$PWD/$BUILD"
FAIL_UNDER=${RECSD_COV_FAIL_UNDER:-85}
JOBS=${RECSD_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
REPORT=$BUILD/coverage
export RECSD_DEV_DIR=${RECSD_TEST_DEV_DIR:-$REPO/var/cov-stack}
# Not ops/test.sh's ports (25433/26380/24570) nor the dev stack's defaults,
# so a coverage run can share a machine with either; below the ephemeral
# port range for the reason test.sh gives.
export RECSD_DEV_PG_PORT=${RECSD_DEV_PG_PORT:-25435}
export RECSD_DEV_REDIS_PORT=${RECSD_DEV_REDIS_PORT:-26382}
export RECSD_DEV_S3_PORT=${RECSD_DEV_S3_PORT:-24572}
export RECSD_BIN=$BUILD/recsd
DEVSTACK=(bash "$REPO/ops/devstack.sh")

log() { printf 'coverage: %s\n' "$*" >&2; }
step() { printf '\n==> %s\n' "$*"; }

FAILED=0
STACK_STARTED=0
S3_STARTED=0
CHILD=0
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if ((CHILD)); then
        kill -TERM -- "-$CHILD" 2>/dev/null || true
    fi
    if ((S3_STARTED)); then
        bash "$REPO/ops/s3rver.sh" stop || log "warning: could not stop s3rver"
    fi
    if ((STACK_STARTED)); then
        step "stopping the coverage stack"
        "${DEVSTACK[@]}" down --purge || log "warning: could not bring the coverage stack down"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run CMD...: a step as its own process group (ctest and everything under
# it), so that an interrupt stops the whole group.
# shellcheck source=ops/run-group.sh
source "$REPO/ops/run-group.sh"

if ! command -v gcovr >/dev/null 2>&1; then
    # A Debian package (ops/install-deps.sh lists it); installed here too so
    # that the script works on a machine set up before it was listed.
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing gcovr"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcovr >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends gcovr >/dev/null; } ||
            { log "error: could not install gcovr"; exit 1; }
    else
        log "error: gcovr not found (apt-get install gcovr)"
        exit 1
    fi
fi

if ((!REPORT_ONLY)); then
    PY_ARGS=()
    [[ ! -x /usr/bin/python3 ]] || PY_ARGS=(-DPYTHON3=/usr/bin/python3)
    step "build $BUILD (Debug, gcc --coverage)"
    mkdir -p "$BUILD"
    # Flags on the command line rather than a CMake option: the coverage
    # tree is the only one that wants them. gcc only: clang's --coverage
    # writes a gcov format of its own version that Debian's gcov rejects.
    CC=${CC:-gcc} CXX=${CXX:-g++} cmake -S "$REPO" -B "$BUILD" "${PY_ARGS[@]}" \
        -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_C_FLAGS=--coverage -DCMAKE_CXX_FLAGS=--coverage \
        -DCMAKE_EXE_LINKER_FLAGS=--coverage >"$BUILD/configure.log" 2>&1 ||
        { cat "$BUILD/configure.log" >&2; exit 1; }
    cmake --build "$BUILD" -j "$JOBS"

    # Counts from an earlier run would be added to this one's.
    find "$BUILD" -name '*.gcda' -delete

    step "starting the coverage stack in $RECSD_DEV_DIR (pg :$RECSD_DEV_PG_PORT, redis :$RECSD_DEV_REDIS_PORT, s3 :$RECSD_DEV_S3_PORT)"
    "${DEVSTACK[@]}" down --purge
    STACK_STARTED=1
    "${DEVSTACK[@]}" up
    eval "$("${DEVSTACK[@]}" env)"
    S3_STARTED=1
    bash "$REPO/ops/s3rver.sh" start
    eval "$(bash "$REPO/ops/s3rver.sh" env)"

    step "migrate"
    "$RECSD_BIN" migrate
    # The gateway's /docs tests serve these (as in ops/test.sh).
    bash "$REPO/ops/docs-assets.sh" "$BUILD/docs-assets"
    export RECSD_DOCS_DIR=$BUILD/docs-assets

    step "ctest $BUILD (every unit and integration test)"
    read -r -a extra <<<"${RECSD_COV_CTEST_ARGS:-}"
    if ! run env RECSD_BIN="$RECSD_BIN" ctest --test-dir "$BUILD" --output-on-failure \
        "${extra[@]}"; then
        log "some tests failed: the report below still counts what ran"
        FAILED=1
    fi
fi

step "gcovr: lib/ proto/ supervisor/ actors/ (threshold ${FAIL_UNDER}% of lines)"
mkdir -p "$REPORT"
cd "$REPO"
# The filters are regexes on paths relative to --root.
GCOVR=(gcovr --root "$REPO" --object-directory "$BUILD" -j "$JOBS"
    --filter '(lib|proto|supervisor|actors)/'
    --exclude '(tests|fuzz|bench)/'
    --gcov-ignore-parse-errors
    --print-summary)
gcovr_rc=0
"${GCOVR[@]}" --sort-percentage \
    --txt "$REPORT/coverage.txt" \
    --html-details "$REPORT/index.html" --html-title "recsd line coverage" \
    --xml "$REPORT/coverage.xml" --xml-pretty \
    --json-summary "$REPORT/summary.json" --json-summary-pretty \
    --fail-under-line "$FAIL_UNDER" >"$REPORT/gcovr.log" 2>&1 || gcovr_rc=$?
# gcovr 5.x: 2 = line threshold missed; anything else non-zero is an error.
if ((gcovr_rc != 0 && gcovr_rc != 2)); then
    cat "$REPORT/gcovr.log" >&2
    log "error: gcovr failed ($gcovr_rc)"
    exit 1
fi

# Per directory, from the per-file summary (gcovr 5 has no directory view).
python3 - "$REPORT/summary.json" <<'EOF'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
dirs = {}
for f in files:
    top = f["filename"].split("/")[0]
    if top == "actors":
        top = "/".join(f["filename"].split("/")[:2])
    cov, tot = dirs.get(top, (0, 0))
    dirs[top] = (cov + f["line_covered"], tot + f["line_total"])
print("\nlines covered per directory:")
for d in sorted(dirs):
    cov, tot = dirs[d]
    print(f"  {d + '/':<22} {cov:>6} / {tot:<6} {100.0 * cov / max(tot, 1):6.1f}%")
print("\nleast covered files (most uncovered lines first):")
worst = sorted(files, key=lambda f: f["line_covered"] - f["line_total"])[:15]
for f in worst:
    print(f"  {f['filename']:<40} {f['line_covered']:>5} / {f['line_total']:<5} "
          f"{f['line_percent']:5.1f}%  ({f['line_total'] - f['line_covered']} uncovered)")
EOF
echo
grep -E '^(lines|functions|branches):' "$REPORT/gcovr.log" || true
echo "reports: $REPORT/index.html  $REPORT/coverage.xml  $REPORT/coverage.txt"

if ((gcovr_rc == 2)); then
    log "FAILED: line coverage is under ${FAIL_UNDER}%"
    ((FAILED)) && exit 1
    exit 2
fi
if ((FAILED)); then
    log "FAILED: some tests failed (line coverage met ${FAIL_UNDER}%)"
    exit 1
fi
log "line coverage is at least ${FAIL_UNDER}%"
